"""The AMP discriminator's per-frame features: ONE function for reference clips and policy rollouts.

The commonest way AMP fails in practice is a feature mismatch between the two sides (contacts
computed from forces on one side and absent on the other, velocities normalized on one side only,
a different joint order). So the features are a pure function of a simulator state's `qpos` and
`qvel` alone: `make_feature_fn` runs `mjx.kinematics` itself and reads nothing else (no contact
forces, no sensors, no env info). A replayed clip frame and a physics state with the same
(qpos, qvel) give the same features by construction. Recomputing kinematics also matters on the
policy side: after `mjx.step` the poses (`xpos`, `site_xpos`, ...) belong to the qpos *before* the
last integration, one physics substep behind `qpos` itself.

Frames (all rotations about world z only):
    heading frame: the world frame turned by the pelvis's yaw (the heading of the pelvis x axis in
    the floor plane), origin at the pelvis. Velocities and feet positions are expressed in it so
    that the features do not depend on where the robot is or which way it faces.

Columns, in order (F = 52; `feature_names` names each one):
    root_height              1  m      pelvis origin height above the floor plane.
    root_linvel_{x,y,z}      3  m/s    pelvis linear velocity (qvel[0:3], world) in the heading frame.
    root_angvel_{x,y,z}      3  rad/s  pelvis angular velocity (qvel[3:6], pelvis frame) rotated to
                                       the world and then into the heading frame.
    gravity_{x,y,z}          3  1      world down direction (0, 0, -1) in the pelvis frame.
    jpos_<joint>            17  rad    joint angle minus its home-keyframe angle, joints in
                                       `constants.JOINT_NAMES` (actuator) order: waist, left leg,
                                       right leg, left arm, right arm -- NOT the MJCF qpos order.
    jvel_<joint>            17  rad/s  joint rate, same order.
    {left,right}_foot_{x,y,z} 6 m      foot site position minus the pelvis origin, in the heading
                                       frame (left foot first).
    {left,right}_contact     2  0/1    1.0 when the foot's lowest pad point (heel and toe capsules,
                                       exact lowest point of a tilted capsule) is less than
                                       CONTACT_HEIGHT above the floor plane, else 0.0. Geometric,
                                       so a kinematic replay (no contact forces) gets it too.
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp
import mujoco
from brax.envs.base import Env
from mujoco import mjx

from wildrobot.envs.wildrobot import constants

# A pad point within this height (m) of the floor counts as touching it. Looser than the env's
# reward-side 4 mm so that small differences in contact softness between a kinematic replay
# (pads can sit a few mm in or above the floor) and the simulator do not flip the flag.
CONTACT_HEIGHT = 0.01

FeatureFn = Callable[[mjx.Data], jax.Array]


def feature_names(env: Env) -> tuple[str, ...]:
    """The name of every feature column, in `make_feature_fn`'s order ([F])."""
    del env  # the layout is the robot's, fixed by constants; kept for a symmetric API
    xyz = ("x", "y", "z")
    sides = ("left", "right")
    return (
        "root_height",
        *(f"root_linvel_{a}" for a in xyz),
        *(f"root_angvel_{a}" for a in xyz),
        *(f"gravity_{a}" for a in xyz),
        *(f"jpos_{j}" for j in constants.JOINT_NAMES),
        *(f"jvel_{j}" for j in constants.JOINT_NAMES),
        *(f"{s}_foot_{a}" for s in sides for a in xyz),
        *(f"{s}_contact" for s in sides),
    )


def num_features(env: Env) -> int:
    """F, the length of one frame's feature vector."""
    return len(feature_names(env))


def make_feature_fn(env: Env) -> FeatureFn:
    """A pure, unbatched fn: mjx.Data of `env`'s model -> features [F] (float32).

    Reads only `data.qpos` and `data.qvel` (kinematics is recomputed inside), so it can be
    jitted and vmapped over frames or worlds. `env` is the unwrapped WildRobot env; its model's
    kinematic fields are the same in every domain-randomized world (randomization changes
    friction, masses, gains), so the nominal model is used.
    """
    m = env.unwrapped.mj_model
    sys = env.unwrapped.sys

    def name2id(kind: mujoco.mjtObj, name: str) -> int:
        index = mujoco.mj_name2id(m, kind, name)
        if index < 0:
            raise ValueError(f"{name!r} not found in the env's model")
        return index

    joint_ids = [name2id(mujoco.mjtObj.mjOBJ_JOINT, n) for n in constants.JOINT_NAMES]
    qpos_adr = jnp.asarray([m.jnt_qposadr[j] for j in joint_ids])
    qvel_adr = jnp.asarray([m.jnt_dofadr[j] for j in joint_ids])
    home_qpos = m.key_qpos[name2id(mujoco.mjtObj.mjOBJ_KEY, constants.HOME_KEYFRAME)]
    home_joint_pos = jnp.asarray(home_qpos[[int(a) for a in qpos_adr]])
    pelvis = name2id(mujoco.mjtObj.mjOBJ_BODY, constants.ROOT_BODY)
    root_joint = int(m.body_jntadr[pelvis])
    if root_joint < 0 or m.jnt_type[root_joint] != mujoco.mjtJoint.mjJNT_FREE:
        raise ValueError(f"{constants.ROOT_BODY!r} is not the free-joint root body")
    root_dof = int(m.jnt_dofadr[root_joint])
    foot_sites = jnp.asarray([name2id(mujoco.mjtObj.mjOBJ_SITE, n) for n in constants.FEET_SITES])
    pad_ids = [
        [name2id(mujoco.mjtObj.mjOBJ_GEOM, n) for n in pads] for pads in constants.FOOT_PAD_GEOMS
    ]
    for pad in sum(pad_ids, []):
        if m.geom_type[pad] != mujoco.mjtGeom.mjGEOM_CAPSULE:
            raise ValueError(f"foot pad geom {m.geom(pad).name!r} is not a capsule")
    pads = jnp.asarray(pad_ids)  # [2 feet, 2 pads]
    pad_radius = jnp.asarray(m.geom_size[pad_ids, 0])
    pad_half_length = jnp.asarray(m.geom_size[pad_ids, 1])
    floor = name2id(mujoco.mjtObj.mjOBJ_GEOM, constants.FLOOR_GEOM)

    def feature_fn(data: mjx.Data) -> jax.Array:
        d = mjx.kinematics(sys, data)
        rot = d.xmat[pelvis]  # pelvis frame -> world
        root = d.xpos[pelvis]
        floor_z = d.geom_xpos[floor, 2]
        heading = _yaw_rotation(jnp.arctan2(rot[1, 0], rot[0, 0]))  # heading frame -> world
        qvel_root = d.qvel[root_dof : root_dof + 6]
        linvel = heading.T @ qvel_root[:3]
        angvel = heading.T @ (rot @ qvel_root[3:])
        gravity = -rot[2]  # R^T (0, 0, -1)
        feet = (d.site_xpos[foot_sites] - root) @ heading  # rows: heading.T @ (p - root)
        # Lowest point of a capsule: centre - radius - half-length * |axis_z| (axis = local z).
        pad_axis_z = d.geom_xmat[pads][..., 2, 2]
        pad_bottom = d.geom_xpos[pads][..., 2] - pad_radius - pad_half_length * jnp.abs(pad_axis_z)
        contact = jnp.min(pad_bottom, axis=-1) - floor_z < CONTACT_HEIGHT
        return jnp.concatenate(
            [
                (root[2] - floor_z)[None],
                linvel,
                angvel,
                gravity,
                d.qpos[qpos_adr] - home_joint_pos,
                d.qvel[qvel_adr],
                feet.reshape(-1),
                contact.astype(jnp.float32),
            ]
        ).astype(jnp.float32)

    return feature_fn


def _yaw_rotation(yaw: jax.Array) -> jax.Array:
    """Rotation matrix [3, 3] of `yaw` (rad) about world z."""
    c, s = jnp.cos(yaw), jnp.sin(yaw)
    zero, one = jnp.zeros_like(yaw), jnp.ones_like(yaw)
    return jnp.array([[c, -s, zero], [s, c, zero], [zero, zero, one]])
