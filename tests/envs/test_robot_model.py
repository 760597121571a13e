"""Action delay, servo backlash and IMU latency do what docs/environments.md says.

They are per-episode values in the state's info, so one compiled step serves every setting.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from wildrobot.envs import registry
from wildrobot.envs.wildrobot import constants
from wildrobot.envs.wildrobot.base import observation_slice

pytestmark = pytest.mark.slow  # one MJX compile, ~1 min on a 2-core CPU

QUIET = {
    "push.enable": False,
    "noise.level": 0.0,
    "init.joint_noise": 0.0,
    "init.base_vel_noise": 0.0,
}
KNEE = constants.JOINT_NAMES.index("left_knee_pitch")


@functools.cache
def _env_and_steps():
    env = registry.make("WildRobotStand", config_overrides=QUIET)

    @jax.jit
    def two_steps(delay, backlash, imu_lag, action):
        state = env.reset(jax.random.PRNGKey(0))
        info = {
            **state.info,
            "action_substeps": delay,
            "backlash": jnp.full(constants.NUM_ACTUATORS, backlash),
            "imu_lag": imu_lag,
        }
        state = state.replace(info=info)
        first = env.step(state, action)
        second = env.step(first, action)
        return state, first, second

    return env, two_steps


def _run(delay=5, backlash=0.0, imu_lag=0.0, knee=0.0):
    env, two_steps = _env_and_steps()
    action = jnp.zeros(env.action_size).at[KNEE].set(knee)
    return jax.device_get(two_steps(jnp.int32(delay), backlash, imu_lag, action))


def _joints(state) -> np.ndarray:
    env, _ = _env_and_steps()
    return np.asarray(state.pipeline_state.qpos)[np.asarray(env.joint_qpos_addresses)]


def test_a_full_control_step_of_delay_holds_the_old_targets() -> None:
    _, still_1, still_2 = _run(delay=5, knee=0.0)
    _, bent_1, bent_2 = _run(delay=5, knee=1.0)
    # Five 4 ms substeps of delay = one control step: the new knee target has not acted yet.
    np.testing.assert_array_equal(_joints(bent_1), _joints(still_1))
    assert _joints(bent_2)[KNEE] - _joints(still_2)[KNEE] > 0.01
    # With less delay it acts within the first step.
    _, early_1, _ = _run(delay=1, knee=1.0)
    assert _joints(early_1)[KNEE] - _joints(still_1)[KNEE] > 0.005


def test_backlash_is_a_dead_band_on_the_servo_error() -> None:
    env, _ = _env_and_steps()
    band = 0.05
    _, first, _ = _run(backlash=band)
    measured = np.asarray(first.pipeline_state.qpos)[np.asarray(env.joint_qpos_addresses)]
    measured = measured - np.asarray(
        env.sys.actuator_biasprm[:, 0] / env.sys.actuator_gainprm[:, 0]
    )
    target = np.asarray(env.home_ctrl)
    error = target - measured
    # ctrl sent in the last substep: measured + sign(e) * max(|e| - band, 0) (same substep's
    # measurement, so compare loosely: within one substep of motion).
    expected = measured + np.sign(error) * np.maximum(np.abs(error) - band, 0.0)
    np.testing.assert_allclose(np.asarray(first.pipeline_state.ctrl), expected, atol=2e-3)
    # Inside the band the servo holds nothing: the joints sag further under gravity than without.
    _, _, loose = _run(backlash=band)
    _, _, tight = _run(backlash=0.0)
    assert np.abs(_joints(loose) - target).sum() > np.abs(_joints(tight) - target).sum() + 0.01


def test_imu_latency_interpolates_towards_the_previous_reading() -> None:
    gyro = observation_slice("gyro")
    reset, fresh, _ = _run(imu_lag=0.0, knee=1.0)
    _, lagged, _ = _run(imu_lag=1.0, knee=1.0)
    _, half, _ = _run(imu_lag=0.5, knee=1.0)
    previous = np.asarray(reset.info["imu_prev"])[3:]
    np.testing.assert_allclose(lagged.obs[gyro], previous, atol=1e-6)
    np.testing.assert_allclose(half.obs[gyro], 0.5 * (fresh.obs[gyro] + previous), atol=1e-6)
    assert np.abs(fresh.obs[gyro] - previous).max() > 1e-3  # the reading did change
