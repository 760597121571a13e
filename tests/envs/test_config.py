"""Config, reward-term bookkeeping, overrides and domain randomization of the WildRobot envs."""

from __future__ import annotations

import inspect

import jax
import numpy as np
import pytest

from wildrobot.envs import registry
from wildrobot.envs.wildrobot import constants, randomization, rewards, stand, walk

TASKS = {"WildRobotStand": stand, "WildRobotWalk": walk}
REWARD_FUNCTIONS = {
    name
    for name, fn in inspect.getmembers(rewards, inspect.isfunction)
    if fn.__module__ == rewards.__name__
}


@pytest.mark.parametrize("name", sorted(TASKS))
def test_reward_weights_match_term_functions(name: str) -> None:
    module = TASKS[name]
    config = module.default_config()
    env = registry.make(name)
    assert set(config.reward_weights) == set(env.REWARD_TERMS)
    assert set(env.REWARD_TERMS) <= REWARD_FUNCTIONS
    state = jax.eval_shape(env.reset, jax.random.PRNGKey(0))  # traces, never compiles
    assert set(state.metrics) == {f"reward/{term}" for term in env.REWARD_TERMS}


def test_default_config_is_fresh() -> None:
    first = walk.default_config()
    first.reward_weights.tracking_lin_vel = 123.0
    assert walk.default_config().reward_weights.tracking_lin_vel != 123.0


def test_config_overrides_and_unknown_keys() -> None:
    env = registry.make(
        "WildRobotWalk", config_overrides={"reward_weights.feet_slip": -0.5, "push.enable": False}
    )
    assert env.config.reward_weights.feet_slip == -0.5 and env.config.push.enable is False
    with pytest.raises((KeyError, AttributeError)):
        registry.make("WildRobotWalk", config_overrides={"no_such.key": 1.0})
    with pytest.raises(ValueError):
        registry.make("WildRobotStand", config_overrides={"ctrl_dt": 0.021})


def test_randomization_stays_within_declared_ranges() -> None:
    env = registry.make("WildRobotStand")
    ranges = randomization.default_config()
    model = env.sys
    num_worlds = 64
    batched, in_axes = env.randomization_fn()(
        model, jax.random.split(jax.random.PRNGKey(0), num_worlds)
    )

    for field in randomization.RANDOMIZED_FIELDS:
        assert getattr(in_axes, field) == 0
        assert getattr(batched, field).shape == (num_worlds, *np.shape(getattr(model, field)))
    assert in_axes.body_pos is None and batched.body_pos.shape == np.shape(model.body_pos)

    friction = np.asarray(batched.pair_friction)[:, :, :2]
    assert friction.min() >= ranges.floor_friction[0] and friction.max() <= ranges.floor_friction[1]
    assert np.ptp(friction[:, 0, 0]) > 0.1  # it does vary between worlds

    mass_ratio = np.asarray(batched.body_mass)[:, 1:] / np.asarray(model.body_mass)[1:]
    assert mass_ratio.min() >= ranges.mass_scale[0] - 1e-6
    assert mass_ratio.max() <= ranges.mass_scale[1] + 1e-6
    inertia_ratio = np.asarray(batched.body_inertia)[:, 1:] / np.asarray(model.body_inertia)[1:]
    np.testing.assert_allclose(inertia_ratio, np.repeat(mass_ratio[..., None], 3, -1), rtol=1e-5)

    kp = np.asarray(batched.actuator_gainprm)[:, :, 0]
    assert kp.min() >= constants.SERVO_KP * ranges.kp_scale[0] - 1e-4
    assert kp.max() <= constants.SERVO_KP * ranges.kp_scale[1] + 1e-4
    biasprm = np.asarray(batched.actuator_biasprm)
    np.testing.assert_allclose(biasprm[:, :, 1], -kp, rtol=1e-6)
    offset = -biasprm[:, :, 0] / kp
    assert np.abs(offset).max() <= ranges.joint_offset + 1e-6

    loss = np.asarray(batched.dof_frictionloss)[:, 6:] / constants.JOINT_FRICTIONLOSS
    assert loss.min() >= ranges.frictionloss_scale[0] - 1e-5
    assert loss.max() <= ranges.frictionloss_scale[1] + 1e-5
    assert not np.asarray(batched.dof_frictionloss)[:, :6].any()
