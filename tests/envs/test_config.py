"""Config, reward-term bookkeeping, overrides and domain randomization of the WildRobot envs."""

from __future__ import annotations

import inspect

import jax
import numpy as np
import pytest

from wildrobot import task_settings
from wildrobot.envs import registry
from wildrobot.envs.wildrobot import base, constants, randomization, rewards, walk

TASKS = ("WildRobotStand", "WildRobotWalk")
REWARD_FUNCTIONS = {
    name
    for name, fn in inspect.getmembers(rewards, inspect.isfunction)
    if fn.__module__ == rewards.__name__
}


@pytest.mark.parametrize("name", sorted(TASKS))
def test_reward_weights_match_term_functions(name: str) -> None:
    env = registry.make(name)
    config = env.default_config()
    assert set(config.reward_weights) == set(env.REWARD_TERMS)
    assert set(env.REWARD_TERMS) <= REWARD_FUNCTIONS
    state = jax.eval_shape(env.reset, jax.random.PRNGKey(0))  # traces, never compiles
    assert set(state.metrics) == {f"reward/{term}" for term in env.REWARD_TERMS}


def test_default_config_is_fresh() -> None:
    first = walk.WildRobotWalk.default_config()
    first.reward_weights.tracking_lin_vel = 123.0
    assert walk.WildRobotWalk.default_config().reward_weights.tracking_lin_vel != 123.0


def test_config_overrides_and_unknown_keys() -> None:
    env = registry.make(
        "WildRobotWalk", config_overrides={"reward_weights.feet_slip": -0.5, "push.enable": False}
    )
    assert env.config.reward_weights.feet_slip == -0.5 and env.config.push.enable is False
    with pytest.raises(ValueError, match="no_such.key: not a setting of WildRobotWalk"):
        registry.make("WildRobotWalk", config_overrides={"no_such.key": 1.0})
    with pytest.raises(ValueError):
        registry.make("WildRobotStand", config_overrides={"ctrl_dt": 0.021})


def test_randomization_stays_within_declared_ranges() -> None:
    env = registry.make("WildRobotStand")
    ranges = env.config.randomization
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


@pytest.mark.parametrize("name", registry.registered_envs())
def test_env_configs_are_the_task_settings(name: str) -> None:
    """Every config key of every registered env is a declared setting, and the reverse."""
    config = registry.make(name).config
    flat = base.flatten_config(config)
    assert set(flat) == set(task_settings.SETTINGS[name])
    for key, value in flat.items():
        assert task_settings.SETTINGS[name][key].check(key, value) == value


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (
            {"push.magnitde": (1.0, 2.0)},
            "push.magnitde: not a setting of WildRobotWalk \\(did you mean 'push.magnitude'",
        ),
        ({"push.enable": 1}, "push.enable: must be true or false"),
        ({"push.duration_steps": 2.5}, "push.duration_steps: must be an integer"),
        ({"action_scale": 2.0}, r"action_scale: 2 is outside \[0, 1.5\]"),
        ({"action_scale": float("nan")}, "action_scale: must be finite"),
        ({"push.magnitude": (5.0, 1.0)}, "push.magnitude: min 5 is above max 1"),
        ({"push.magnitude": 3.0}, r"push.magnitude: must be a range \[min, max\]"),
        ({"sim_dt": 0.003}, "ctrl_dt: 0.02 is not a whole multiple of sim_dt 0.003"),
        (
            {"latency.action_substeps": (0, 11)},
            "latency.action_substeps: 11 substeps is more than two",
        ),
    ],
)
def test_overrides_are_checked_against_the_settings(overrides: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        task_settings.validate_overrides("WildRobotWalk", overrides)


def test_valid_overrides_come_back_in_the_settings_types() -> None:
    checked = task_settings.validate_overrides(
        "WildRobotWalk",
        {"push.interval_steps": [20.0, 60.0], "push.magnitude": [1, 2], "sim_dt": 0.002},
    )
    assert checked == {
        "push.interval_steps": (20, 60),
        "push.magnitude": (1.0, 2.0),
        "sim_dt": 0.002,
    }
    assert type(checked["push.interval_steps"][0]) is int
    assert task_settings.num_substeps("WildRobotWalk", checked) == 10
