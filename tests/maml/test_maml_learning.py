"""Finn et al. 2017's sanity check on 2D navigation (PointNav, the goal hidden from the policy):
one inner step from the MAML initialization improves the return on held-out goals well beyond
the same step from a policy trained jointly on all goals (inner_steps 0, the same code and env
steps), paired over the same goals and keys, and beyond doing nothing (return exactly 0)."""

from __future__ import annotations

import jax
import numpy as np
import pytest

from wildrobot.specs import MamlSpec
from wildrobot.workers.maml import algorithm as alg
from wildrobot.workers.maml.train import make_maml_trainer

ITERATIONS = 40
HELD_OUT_GOALS = 32


def toy_spec(inner_steps: int) -> MamlSpec:
    # bench/maml_toy.py's settings (docs/maml.md), fewer iterations.
    return MamlSpec(
        task="PointNav",
        num_iterations=ITERATIONS,
        tasks_per_batch=20,
        episodes_per_task=20,
        episode_length=10,
        inner_steps=inner_steps,
        inner_lr=0.1,
        first_order=False,
        outer_learning_rate=1e-3,
        gae_lambda=1.0,
        normalize_observations=False,
        policy_hidden_sizes=(64, 64),
        value_hidden_sizes=(64, 64),
    )


def paired_interval(d: np.ndarray) -> tuple[float, float, float]:
    """Mean and 95% t-interval of paired differences."""
    mean = float(d.mean())
    half = 2.04 * float(d.std(ddof=1)) / float(np.sqrt(len(d)))  # t(0.975, 31)
    return round(mean, 3), round(mean - half, 3), round(mean + half, 3)


def train_and_adapt(inner_steps: int) -> dict[str, np.ndarray]:
    spec = toy_spec(inner_steps)
    trainer = make_maml_trainer(spec)
    state = alg.init_state(spec, trainer.model, trainer.optimizer)
    for _ in range(ITERATIONS):
        state, metrics = trainer.iteration_fn(state)
    if inner_steps == 0:
        assert float(metrics["maml/inner_grad_norm"]) == 0.0
    evaluate = alg.make_adaptation_eval(
        trainer.model, trainer.family, 20, spec.episode_length, spec, inner_steps=1
    )
    # Held-out goals: a key stream training never drew from; the same goals and keys for both.
    goals = jax.vmap(trainer.family.sample)(
        jax.random.split(jax.random.PRNGKey(2**31 - 7), HELD_OUT_GOALS)
    )
    out = evaluate(state.params, state.normalizer, goals, jax.random.PRNGKey(99), spec.inner_lr)
    return {k: np.asarray(v) for k, v in out.items()}


@pytest.mark.slow  # two 40-iteration trainings: ~1-2 min on a loaded 2-core machine
def test_one_step_from_maml_beats_one_step_from_joint_training() -> None:
    maml, joint = train_and_adapt(1), train_and_adapt(0)
    versus_joint = paired_interval(maml["post"] - joint["post"])
    gain_versus_joint = paired_interval(
        (maml["post"] - maml["pre"]) - (joint["post"] - joint["pre"])
    )
    versus_nothing = paired_interval(maml["post"])  # doing nothing returns exactly 0
    print(
        f"maml pre {maml['pre'].mean():.3f} post {maml['post'].mean():.3f}; "
        f"joint pre {joint['pre'].mean():.3f} post {joint['post'].mean():.3f}; "
        f"post maml - joint {versus_joint}; gain maml - joint {gain_versus_joint}; "
        f"maml post - nothing {versus_nothing}"
    )
    # Returns are progress towards a goal 1 away (at most 1).
    assert versus_joint[1] > 0.15, versus_joint
    assert gain_versus_joint[1] > 0.15, gain_versus_joint
    assert versus_nothing[1] > 0.15, versus_nothing
