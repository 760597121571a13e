"""Task families: PointNav's goals and reward; WildRobot dynamics draws within the training
ranges of the task's config, held (model and latency) for every env of the task."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from wildrobot.envs import registry
from wildrobot.workers.maml.tasks import DynamicsTasks, PointNavTasks


def test_point_nav_goal_hidden_and_reward_is_progress() -> None:
    family = PointNavTasks()
    goals = jax.vmap(family.sample)(jax.random.split(jax.random.PRNGKey(0), 64))
    np.testing.assert_allclose(np.linalg.norm(goals, axis=1), 1.0, rtol=1e-5)
    goal = jnp.array([0.0, 1.0])
    state = family.reset(goal, jax.random.PRNGKey(1))
    assert state.obs.shape == (2,)  # the position only: the goal is not observed
    towards = family.step(goal, state, jnp.array([0.0, 1.0]))
    away = family.step(goal, state, jnp.array([0.0, -1.0]))
    assert float(towards.reward) == pytest.approx(0.1, abs=1e-6)
    assert float(away.reward) == pytest.approx(-0.1, abs=1e-6)
    still = family.step(goal, state, jnp.zeros(2))
    assert float(still.reward) == 0.0  # doing nothing returns exactly 0


def test_dynamics_tasks_draw_within_training_ranges_and_hold_for_the_batch() -> None:
    env = registry.make("WildRobotStand")
    family = DynamicsTasks(env)
    cfg = env.config
    tasks = jax.vmap(family.sample)(jax.random.split(jax.random.PRNGKey(0), 256))
    for name, bounds in (
        ("floor_friction", cfg.randomization.floor_friction),
        ("mass_scale", cfg.randomization.mass_scale),
        ("kp_scale", cfg.randomization.kp_scale),
        ("action_substeps", cfg.latency.action_substeps),
    ):
        values = np.asarray(getattr(tasks, name))
        assert values.min() >= bounds[0] and values.max() <= bounds[1], name
        assert values.min() < values.max(), name  # it varies across tasks
    with pytest.raises(ValueError, match="ranges: unknown field 'gravity'"):
        DynamicsTasks(env, {"gravity": (1.0, 2.0)})
    task = jax.tree.map(lambda x: x[0], tasks)
    # Every env of a task starts with the task's latency (the env alone would draw its own).
    states = jax.jit(jax.vmap(family.reset, in_axes=(None, 0)))(
        task, jax.random.split(jax.random.PRNGKey(1), 8)
    )
    np.testing.assert_array_equal(
        np.asarray(states.info["action_substeps"]), int(task.action_substeps)
    )
