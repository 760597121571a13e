"""Physics sanity of the WildRobot MJCF against shared/WILDROBOT.md, and of the env on MJX."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import mujoco
import numpy as np
import pytest

from wildrobot.envs import registry
from wildrobot.envs.wildrobot import base, constants


@pytest.fixture(scope="module")
def model() -> mujoco.MjModel:
    return mujoco.MjModel.from_xml_path(str(constants.XML_PATH))


def test_total_mass_matches_facts_sheet(model: mujoco.MjModel) -> None:
    assert abs(model.body_mass.sum() - constants.TOTAL_MASS_KG) <= 0.02 * constants.TOTAL_MASS_KG


def test_joints_and_servos_match_facts_sheet(model: mujoco.MjModel) -> None:
    assert model.nu == 17 and set(constants.JOINT_RANGES) == set(constants.JOINT_NAMES)
    for index, name in enumerate(constants.ACTUATOR_NAMES):
        actuator = model.actuator(index)
        assert actuator.name == name
        joint = model.joint(int(actuator.trnid[0]))
        assert joint.name == name
        np.testing.assert_allclose(joint.range, constants.JOINT_RANGES[name], atol=1e-6)
        np.testing.assert_allclose(actuator.ctrlrange, constants.JOINT_RANGES[name], atol=1e-6)
        np.testing.assert_allclose(
            actuator.forcerange, (-constants.SERVO_FORCE_LIMIT, constants.SERVO_FORCE_LIMIT)
        )
        assert actuator.forcelimited[0] and joint.limited[0]
        np.testing.assert_allclose(actuator.gainprm[0], constants.SERVO_KP)
        np.testing.assert_allclose(
            actuator.biasprm[:3], (0, -constants.SERVO_KP, -constants.SERVO_KV)
        )
        dof = int(joint.dofadr[0])
        assert model.dof_damping[dof] == pytest.approx(constants.JOINT_DAMPING)
        assert model.dof_armature[dof] == pytest.approx(constants.JOINT_ARMATURE)
        assert model.dof_frictionloss[dof] == pytest.approx(constants.JOINT_FRICTIONLOSS)


def test_only_foot_floor_contact_pairs(model: mujoco.MjModel) -> None:
    assert not model.geom_contype.any() and not model.geom_conaffinity.any()
    floor = model.geom(constants.FLOOR_GEOM).id
    pads = {model.geom(name).id for pair in constants.FOOT_PAD_GEOMS for name in pair}
    pairs = {
        frozenset((int(a), int(b))) for a, b in zip(model.pair_geom1, model.pair_geom2, strict=True)
    }
    assert pairs == {frozenset((pad, floor)) for pad in pads}


def test_home_keyframe_stands_for_five_seconds_in_native_mujoco(model: mujoco.MjModel) -> None:
    data = mujoco.MjData(model)
    mujoco.mj_resetDataKeyframe(model, data, model.key(constants.HOME_KEYFRAME).id)
    start = data.qpos[2]
    assert start == pytest.approx(constants.STANDING_HEIGHT, abs=0.01)
    mujoco.mj_step(model, data, nstep=int(5.0 / model.opt.timestep))
    assert abs(data.qpos[2] - start) < 0.02
    assert data.xmat[model.body(constants.TORSO_BODY).id][8] > np.cos(0.1)  # tilt < 0.1 rad


def test_imu_readings_match_mujoco_sensors(model: mujoco.MjModel) -> None:
    data = mujoco.MjData(model)
    mujoco.mj_resetDataKeyframe(model, data, model.key(constants.HOME_KEYFRAME).id)
    data.qvel[:] = np.random.default_rng(0).uniform(-1.0, 1.0, model.nv)
    mujoco.mj_forward(model, data)
    imu = model.site(constants.IMU_SITE).id
    pelvis_site = model.site(constants.PELVIS_SITE).id
    torso = model.body(constants.TORSO_BODY).id
    pelvis = model.body(constants.ROOT_BODY).id
    gyro = base.imu_gyro(
        jnp.asarray(data.site_xmat[imu].reshape(3, 3)), jnp.asarray(data.cvel[torso])
    )
    linvel = base.local_linvel(
        jnp.asarray(data.site_xmat[pelvis_site].reshape(3, 3)),
        jnp.asarray(data.site_xpos[pelvis_site]),
        jnp.asarray(data.cvel[pelvis]),
        jnp.asarray(data.subtree_com[model.body_rootid[pelvis]]),
    )
    np.testing.assert_allclose(gyro, data.sensor(constants.GYRO_SENSOR).data, atol=1e-5)
    np.testing.assert_allclose(linvel, data.sensor(constants.LOCAL_LINVEL_SENSOR).data, atol=1e-5)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["WildRobotStand"])
def test_env_stands_for_five_seconds_with_zero_action(name: str) -> None:
    env = registry.make(
        name,
        config_overrides={
            "push.enable": False,
            "noise.level": 0.0,
            "init.joint_noise": 0.0,
            "init.base_vel_noise": 0.0,
        },
    )
    num_steps = int(5.0 / env.dt)

    @jax.jit
    def rollout(rng: jax.Array):
        state = env.reset(rng)

        def body(state, _):
            state = env.step(state, jnp.zeros(env.action_size))
            return state, (state.pipeline_state.qpos[2], state.done)

        return state.pipeline_state.qpos[2], jax.lax.scan(body, state, None, length=num_steps)[1]

    start, (heights, done) = rollout(jax.random.PRNGKey(0))
    assert not bool(done.any())
    assert float(jnp.max(jnp.abs(heights - start))) < 0.03
