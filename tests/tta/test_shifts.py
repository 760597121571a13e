"""The shift suite: neutral by default, ladders as documented, names as the spec's."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from wildrobot import specs
from wildrobot.envs import registry
from wildrobot.workers.tta import adapters, evaluate, shifts


@pytest.fixture(scope="module")
def env():
    return registry.make("WildRobotStand")


def _one(env, name, severity, seed=0):
    params = shifts.shift_params(
        name, env.config, severity, jax.random.split(jax.random.PRNGKey(seed), 2)
    )
    return jax.tree.map(lambda x: x[0], params)


def test_names_are_the_specs():
    assert tuple(shifts.SHIFTS) == specs.TTA_SHIFTS
    assert evaluate.METHODS == specs.TTA_METHODS
    assert set(adapters.ADAPTERS) == {"none", "obs_norm", "tent", "sysid", "maml"}


def test_clean_leaves_the_model_as_trained(env):
    model = shifts.apply_to_model(env, _one(env, "clean", 0))
    for field in (*shifts.MODEL_FIELDS,):
        np.testing.assert_array_equal(getattr(model, field), getattr(env.sys, field), err_msg=field)
    np.testing.assert_array_equal(model.opt.gravity, env.sys.opt.gravity)


def test_each_shift_changes_what_it_says(env):
    def model(name, level):
        return shifts.apply_to_model(env, _one(env, name, level))

    g = model("gravity", 5)
    np.testing.assert_allclose(g.opt.gravity[2], -9.81 * 1.75, rtol=1e-6)
    f = model("friction", 5)
    assert float(f.geom_friction[env.floor_geom_id, 0]) == pytest.approx(0.06)
    assert np.allclose(np.asarray(f.pair_friction)[:, :2], 0.06)
    m = model("mass", 3)
    np.testing.assert_allclose(m.body_mass[1:], env.sys.body_mass[1:] * 1.4, rtol=1e-6)
    assert float(m.body_mass[0]) == float(env.sys.body_mass[0])  # the world
    offset = np.asarray(m.body_ipos[env.torso_body_id] - env.sys.body_ipos[env.torso_body_id])
    assert np.linalg.norm(offset) == pytest.approx(0.02, rel=1e-5) and offset[2] == 0.0
    k = model("kp", 2)
    np.testing.assert_allclose(
        k.actuator_gainprm[:, 0], env.sys.actuator_gainprm[:, 0] * 0.75, rtol=1e-6
    )
    np.testing.assert_allclose(
        k.actuator_biasprm[:, 1], env.sys.actuator_biasprm[:, 1] * 0.75, rtol=1e-6
    )
    assert int(_one(env, "latency", 5).action_substeps) == 10
    top = env.config.push.magnitude[1]
    assert float(_one(env, "push", 2).push_magnitude) == pytest.approx(1.5 * top)
    imu = _one(env, "imu", 4)
    assert float(jnp.linalg.norm(imu.gyro_bias)) == pytest.approx(0.2, rel=1e-5)
    assert float(imu.imu_noise) == 9.0


def test_severity_ladders_get_harsher():
    for name, levels in shifts.LADDERS.items():
        assert len(levels) == 5, name
        increasing = name not in ("friction", "kp")
        steps = np.diff(levels)
        assert (steps > 0).all() if increasing else (steps < 0).all(), name


def test_unknown_shift_and_severity_are_refused(env):
    keys = jax.random.split(jax.random.PRNGKey(0), 2)
    with pytest.raises(ValueError, match="unknown shift 'wind'; known: gravity"):
        shifts.shift_params("wind", env.config, 1, keys)
    with pytest.raises(ValueError, match="severity must be one of"):
        shifts.shift_params("kp", env.config, 6, keys)
