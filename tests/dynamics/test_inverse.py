"""Inverse dynamics against simulated WildRobot motion with known torques, and MuJoCo's C code."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import mujoco
import numpy as np
import pytest

from wildrobot.envs.dynamics import Config, Trial, TrialData, generate, make_inverse_fn
from wildrobot.envs.dynamics.inverse import DynamicsModel

GRAVITY = 9.81


def _trial(data: TrialData, dtype, with_derivatives: bool = False, grf: bool = True) -> Trial:
    arr = lambda x: jnp.asarray(x, dtype)  # noqa: E731
    return Trial(
        qpos=arr(data.qpos),
        grf=arr(data.grf if grf else np.zeros_like(data.grf)),
        cop=arr(data.cop),
        free_moment=arr(data.free_moment if grf else np.zeros_like(data.grf)),
        qvel=arr(data.qvel) if with_derivatives else None,
        qacc=arr(data.qacc) if with_derivatives else None,
    )


def test_float64_recovers_applied_torques_and_root_residual_vanishes(model, sim_trial) -> None:
    with jax.enable_x64(True):
        fn = make_inverse_fn(model, Config(block_size=64))
        out = jax.device_get(fn(_trial(sim_trial, jnp.float64), sim_trial.rate_hz))
    valid = out.valid
    assert valid.sum() == sim_trial.num_frames - 2  # differences lose the two end frames
    truth = sim_trial.truth["joint_torque"]
    assert np.abs(out.joint_torque - truth)[valid].max() < 1e-8
    assert np.abs(out.residual_force)[valid].max() < 1e-8
    assert np.abs(out.residual_moment)[valid].max() < 1e-8
    # Sanity: the motion is not trivial and the feet carry the robot.
    assert np.abs(truth).max() > 0.1
    assert np.allclose(sim_trial.grf[..., 2].sum(-1).mean(), model.total_mass * GRAVITY, rtol=0.05)


@pytest.mark.slow
def test_frictionless_torques_equal_the_actuator_forces(model) -> None:
    data = generate.simulate_trial(40, seed=5, frictionloss=False)
    with jax.enable_x64(True):
        out = jax.device_get(make_inverse_fn(model)(_trial(data, jnp.float64), data.rate_hz))
    err = np.abs(out.joint_torque - data.truth["actuator_force"])[out.valid]
    assert err.max() < 1e-8


def test_float32_with_given_derivatives(model, sim_trial) -> None:
    out = jax.device_get(
        make_inverse_fn(model)(_trial(sim_trial, jnp.float32, True), sim_trial.rate_hz)
    )
    assert out.joint_torque.dtype == np.float32
    assert np.abs(out.joint_torque - sim_trial.truth["joint_torque"]).max() < 1e-4 * 5
    assert np.abs(out.residual_force).max() < 1e-3


@pytest.mark.slow
def test_without_grf_the_vertical_residual_is_body_weight(model, sim_trial) -> None:
    with jax.enable_x64(True):
        out = jax.device_get(
            make_inverse_fn(model)(_trial(sim_trial, jnp.float64, grf=False), sim_trial.rate_hz)
        )
    weight = model.total_mass * GRAVITY
    # The vertical residual is weight plus m * (vertical CoM acceleration): small for swaying.
    vertical = out.residual_force[out.valid, 2]
    assert abs(vertical.mean() - weight) < 0.02 * weight


def test_agrees_with_mujoco_c_mj_inverse(model, sim_trial) -> None:
    """Frame by frame against mj_inverse (same model: constraints off, Euler, INVDISCRETE)."""
    with jax.enable_x64(True):
        out = jax.device_get(
            make_inverse_fn(model)(_trial(sim_trial, jnp.float64, True), sim_trial.rate_hz)
        )
    m = model.mj_model
    d = mujoco.MjData(m)
    for t in range(0, sim_trial.num_frames, 7):
        d.qpos[:], d.qvel[:], d.qacc[:] = sim_trial.qpos[t], sim_trial.qvel[t], sim_trial.qacc[t]
        mujoco.mj_inverse(m, d)
        floor = np.zeros(m.nv)
        for k, body in enumerate(model.foot_body_ids):
            mujoco.mj_applyFT(
                m,
                d,
                sim_trial.grf[t, k],
                sim_trial.free_moment[t, k],
                sim_trial.cop[t, k],
                int(body),
                floor,
            )
        np.testing.assert_allclose(out.qfrc[t], d.qfrc_inverse - floor, atol=1e-9)


@pytest.mark.slow
def test_vmap_equals_python_loop(model) -> None:
    trials = [generate.simulate_trial(30, seed=s) for s in (1, 2)]
    fn = make_inverse_fn(model, Config(block_size=16))
    batch = jax.tree.map(lambda *x: jnp.stack(x), *[_trial(t, jnp.float32) for t in trials])
    lengths = jnp.array([30, 25])
    batched = jax.device_get(jax.vmap(fn, in_axes=(0, None, 0))(batch, 250.0, lengths))
    for i, (trial, length) in enumerate(zip(trials, (30, 25), strict=True)):
        single = jax.device_get(fn(_trial(trial, jnp.float32), 250.0, length))
        np.testing.assert_allclose(batched.joint_torque[i], single.joint_torque, atol=1e-5)
        np.testing.assert_array_equal(batched.valid[i], single.valid)


@pytest.mark.slow
def test_padding_does_not_change_real_frames(model, sim_trial) -> None:
    """A trial padded to a longer bucket (with length given) gives the same frames."""
    fn = make_inverse_fn(model, Config(smooth_window=5))
    short = _trial(sim_trial, jnp.float32)
    padded = jax.tree.map(lambda x: jnp.concatenate([x, jnp.repeat(x[-1:] * 0 + 1, 20, 0)]), short)
    a = jax.device_get(fn(short, sim_trial.rate_hz))
    b = jax.device_get(fn(padded, sim_trial.rate_hz, sim_trial.num_frames))
    n = sim_trial.num_frames
    np.testing.assert_allclose(b.joint_torque[:n], a.joint_torque, atol=1e-4)
    np.testing.assert_array_equal(b.valid[:n], a.valid)
    assert not b.valid[n:].any()


@pytest.mark.slow
def test_gradient_is_finite_and_matches_finite_differences(model, sim_trial) -> None:
    num = 12
    with jax.enable_x64(True):
        trial = jax.tree.map(lambda x: x[:num], _trial(sim_trial, jnp.float64))
        fn = make_inverse_fn(model)
        masses = jnp.asarray(model.mj_model.body_mass)

        def loss(qpos, body_mass):
            out = fn(trial.replace(qpos=qpos), sim_trial.rate_hz, None, body_mass)
            return jnp.sum(jnp.where(out.valid[:, None], out.joint_torque, 0.0) ** 2)

        g_q, g_m = jax.grad(loss, argnums=(0, 1))(trial.qpos, masses)
        assert np.isfinite(g_q).all() and np.isfinite(g_m).all()
        eps = 1e-6
        for frame, col in ((5, 0), (5, 2), (6, 10), (4, 15)):
            bump = jnp.zeros_like(trial.qpos).at[frame, col].set(eps)
            fd = (loss(trial.qpos + bump, masses) - loss(trial.qpos - bump, masses)) / (2 * eps)
            assert fd == pytest.approx(float(g_q[frame, col]), rel=1e-4, abs=1e-6)
        for body in (1, 4, 10):
            bump = jnp.zeros_like(masses).at[body].set(eps)
            fd = (loss(trial.qpos, masses + bump) - loss(trial.qpos, masses - bump)) / (2 * eps)
            assert fd == pytest.approx(float(g_m[body]), rel=1e-5, abs=1e-6)


@pytest.mark.slow
def test_smoothing_reduces_noise_error(model) -> None:
    """METHODS.md: qpos noise 1e-4 at 500 Hz -> errors shrink ~10x with an 11-sample average."""
    data = generate.simulate_trial(400, seed=7, timestep=0.002, amplitude=0.05)
    noisy = np.random.default_rng(0).normal(0.0, 1e-4, data.qpos.shape)
    noisy[:, 3:7] = 0.0  # keep the root quaternion unit; noise on positions and joints
    qpos = data.qpos + noisy
    errors = {}
    for window in (1, 11):
        with jax.enable_x64(True):
            fn = make_inverse_fn(model, Config(smooth_window=window))
            trial = _trial(data, jnp.float64).replace(qpos=jnp.asarray(qpos))
            out = jax.device_get(fn(trial, data.rate_hz))
        err = (out.joint_torque - data.truth["joint_torque"])[out.valid]
        errors[window] = float(np.sqrt(np.mean(err**2)))
    assert errors[1] > 0.05  # raw second differences amplify the noise by 1/h^2
    assert errors[11] < errors[1] / 5


@pytest.mark.slow
def test_cop_is_masked_for_unloaded_feet(model, sim_trial) -> None:
    grf = sim_trial.grf.copy()
    grf[:10, 0] = 0.0  # left foot unloaded for 10 frames
    trial = _trial(sim_trial, jnp.float32).replace(grf=jnp.asarray(grf, jnp.float32))
    out = jax.device_get(make_inverse_fn(model, Config(cop_threshold=2.0))(trial, 250.0))
    np.testing.assert_array_equal(out.cop_valid, grf[..., 2] > 2.0)
    assert not out.cop_valid[:10, 0].any()
    assert np.isnan(out.cop[~out.cop_valid]).all() and np.isfinite(out.cop[out.cop_valid]).all()
    # Ankle moment of a loaded foot: (cop - ankle) x grf + free moment; ankle is below the knee.
    assert np.isfinite(out.ankle_moment).all()


def test_model_checks_structure() -> None:
    xml = "<mujoco><worldbody><body><joint type='hinge'/><geom size='0.1'/></body></worldbody></mujoco>"
    with pytest.raises(ValueError, match="free root"):
        DynamicsModel(mujoco.MjModel.from_xml_string(xml), ())
