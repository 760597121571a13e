"""Floating-base inverse dynamics of a whole trial on MuJoCo MJX, in pure JAX.

    M(q) qdd + c(q, qd) - passive(q, qd) = S^T tau + sum_k J_k^T F_k

Per frame the generalized force M qdd + c - passive is computed with MJX's smooth pipeline
(kinematics, com_pos, com_vel, passive, rne with accelerations, plus armature), and the measured
foot wrenches are subtracted through the foot Jacobians (mjx.inverse would not subtract them).
The first six rows are the floating-base residual, the rest are joint torques.

Frames are MuJoCo Euler steps: qvel_t = (q_t - q_{t-1}) / h and qacc_t = (v_{t+1} - v_t) / h,
MuJoCo's INVDISCRETE convention, including the implicit damping term h B qacc of its Euler
integrator. Once qvel and qacc are known the frames are independent, so the trial is processed
by `lax.scan` over blocks of frames with `vmap` inside a block: memory stays bounded for long
trials and a block is wide enough to vectorize on a CPU.

Everything is a pure function of arrays: jit it, vmap it over trials, differentiate it with
respect to the kinematics, the forces or the body masses.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import mujoco
import numpy as np
from flax import struct
from mujoco import mjx
from mujoco.mjx._src import passive as mjx_passive
from mujoco.mjx._src import smooth as mjx_smooth

from wildrobot import dynamics_inputs

from . import filters


@dataclasses.dataclass(frozen=True)
class Foot:
    """A foot that ground-reaction wrenches act on.

    name: label used in outputs ("left"); body: the MJCF body the wrench is applied to;
    ankle_joint: the joint whose anchor is the ankle centre for ankle moments.
    """

    name: str
    body: str
    ankle_joint: str


@dataclasses.dataclass(frozen=True)
class Config:
    """Options, checked by wildrobot.dynamics_inputs.validate_options (the one rule every entry
    point uses). smooth_window, smooth_forces and block_size are static (changing one
    recompiles); cop_threshold is a traced argument of the compiled function (no recompile).

    smooth_window: samples of the centered moving average applied to the kinematics (1: off;
      odd, at most MAX_SMOOTH_WINDOW). smooth_forces: apply the same window to grf, cop and
      free_moment, so kinematics and forces see the same cutoff. cop_threshold: normal force (N,
      finite, in [0, 1000]) below which a foot counts as unloaded: its COP is reported as NaN
      and `cop_valid` is False. block_size: frames per scan step.
    """

    smooth_window: int = 1
    smooth_forces: bool = True
    cop_threshold: float = 5.0
    block_size: int = 256

    def __post_init__(self) -> None:
        dynamics_inputs.validate_options(
            self.smooth_window, self.cop_threshold, self.smooth_forces
        )
        if self.block_size < 1:
            raise ValueError(f"block_size must be >= 1, got {self.block_size}")


@struct.dataclass
class Trial:
    """One trial (add a leading batch axis and vmap for many).

    qpos: [T, nq] root position (m, world), root quaternion (w, x, y, z), joint angles (rad) in
      model order. grf: [T, F, 3] force of the ground on each foot (N, world frame).
    cop: [T, F, 3] point of application (m, world). free_moment: [T, F, 3] moment about the COP
      (N m, world; usually only z), or None for zero. qvel: [T, nv] and qacc: [T, nv] in MuJoCo's
      conventions (root linear velocity in world, angular in the root frame), or None to take
      discrete differences of qpos.
    """

    qpos: jax.Array
    grf: jax.Array
    cop: jax.Array
    free_moment: jax.Array | None = None
    qvel: jax.Array | None = None
    qacc: jax.Array | None = None


@struct.dataclass
class Result:
    """Per-frame outputs, [T, ...].

    joint_torque: [T, nu] (N m) in actuator order, named by DynamicsModel.joint_names.
    residual_force: [T, 3] (N, world) and residual_moment: [T, 3] (N m, world, about the root
      body origin): what the feet do not explain; zero for consistent data.
    ankle_moment: [T, F, 3] (N m, world): (cop - ankle) x grf + free_moment.
    cop: [T, F, 3] the COP used, NaN where the foot is unloaded; cop_valid: [T, F].
    cop_outside: [T, F] a loaded foot's COP lies outside the box around the foot's geoms (in the
      foot frame) by more than COP_SUPPORT_MARGIN_M: implausible input (wrong units, swapped
      feet, a wrong origin); its torques are computed but should not be trusted.
    valid: [T] False at the ends, where differences or smoothing lack neighbours, and on padding.
    qfrc: [T, nv] the full generalized force (MuJoCo's qfrc_inverse minus sum J^T F).
    """

    joint_torque: jax.Array
    residual_force: jax.Array
    residual_moment: jax.Array
    ankle_moment: jax.Array
    cop: jax.Array
    cop_valid: jax.Array
    valid: jax.Array
    qfrc: jax.Array
    cop_outside: jax.Array


class DynamicsModel:
    """Static description of the robot for inverse dynamics: the MJX model and ids by name.

    The model must have one free root joint followed by hinge or slide joints, and actuators
    with joint transmissions. Its integrator is taken to be Euler (see module docstring).
    """

    def __init__(self, mj_model: mujoco.MjModel, feet: Sequence[Foot]) -> None:
        model = _copy_model(mj_model)
        model.opt.integrator = mujoco.mjtIntegrator.mjINT_EULER
        model.opt.enableflags |= mujoco.mjtEnableBit.mjENBL_INVDISCRETE
        # Contacts are given as measured wrenches, never inferred; joint friction and limit forces
        # are part of the net joint torque, so no constraint is solved for (mj_inverse would).
        model.opt.disableflags |= mujoco.mjtDisableBit.mjDSBL_CONSTRAINT
        del mj_model
        jnt_type = np.asarray(model.jnt_type)
        if model.njnt < 1 or jnt_type[0] != mujoco.mjtJoint.mjJNT_FREE:
            raise ValueError("the first joint must be the free root joint")
        allowed = {int(mujoco.mjtJoint.mjJNT_HINGE), int(mujoco.mjtJoint.mjJNT_SLIDE)}
        if any(int(t) not in allowed for t in jnt_type[1:]):
            raise ValueError("joints after the root must be hinge or slide joints")
        if np.any(model.actuator_trntype != mujoco.mjtTrn.mjTRN_JOINT):
            raise ValueError("every actuator must drive a joint")
        self.mj_model = model
        joint_ids = np.asarray(model.actuator_trnid[:, 0])
        self.actuator_names = tuple(
            _name(model, mujoco.mjtObj.mjOBJ_ACTUATOR, i) for i in range(model.nu)
        )
        self.joint_names = tuple(_name(model, mujoco.mjtObj.mjOBJ_JOINT, j) for j in joint_ids)
        self.actuator_dofs = np.asarray(model.jnt_dofadr[joint_ids], dtype=np.int32)
        self.feet = tuple(feet)
        self.foot_names = tuple(f.name for f in self.feet)
        self.foot_body_ids = np.array(
            [_id(model, mujoco.mjtObj.mjOBJ_BODY, f.body) for f in self.feet], np.int32
        )
        self.ankle_joint_ids = np.array(
            [_id(model, mujoco.mjtObj.mjOBJ_JOINT, f.ankle_joint) for f in self.feet], np.int32
        )
        self.root_body_id = int(model.jnt_bodyid[0])
        self.foot_root_ids = np.asarray(model.body_rootid[self.foot_body_ids], np.int32)
        # foot_dof_mask[k, v]: dof v moves foot k (v lies on the chain from the world to it).
        self.foot_dof_mask = np.zeros((len(self.feet), model.nv), bool)
        for k, body in enumerate(self.foot_body_ids):
            while body > 0:
                dofs = np.nonzero(model.dof_bodyid == body)[0]
                self.foot_dof_mask[k, dofs] = True
                body = model.body_parentid[body]
        self.foot_support = np.stack([_support_box(model, b) for b in self.foot_body_ids])
        self.body_names = tuple(
            _name(model, mujoco.mjtObj.mjOBJ_BODY, i) for i in range(model.nbody)
        )
        eulerdamp = not model.opt.disableflags & mujoco.mjtDisableBit.mjDSBL_EULERDAMP
        self.euler_damping = bool(eulerdamp and np.any(model.dof_damping > 0))
        self._mjx: dict[str, tuple[mjx.Model, mjx.Data]] = {}

    @property
    def nq(self) -> int:
        return self.mj_model.nq

    @property
    def nv(self) -> int:
        return self.mj_model.nv

    @property
    def nu(self) -> int:
        return self.mj_model.nu

    @property
    def total_mass(self) -> float:
        return float(np.sum(self.mj_model.body_mass))

    def mjx(self, dtype: Any = jnp.float32) -> tuple[mjx.Model, mjx.Data]:
        """The MJX model and a blank MJX data in `dtype` (float64 needs jax.enable_x64)."""
        key = jnp.dtype(dtype).name
        if key not in self._mjx:
            # Built eagerly even when first asked for inside a trace, so the cache holds arrays.
            with jax.enable_x64(key == "float64"), jax.ensure_compile_time_eval():
                m = mjx.put_model(self.mj_model)
                d = mjx.make_data(m)
                self._mjx[key] = (m, d)
        return self._mjx[key]


def _copy_model(model: mujoco.MjModel) -> mujoco.MjModel:
    import copy

    return copy.deepcopy(model)


def _support_box(model: mujoco.MjModel, body: int) -> np.ndarray:
    """[2, 3] (lower, upper) corners, in the body frame, of the box around the body's geoms."""
    corners = []
    for g in np.nonzero(model.geom_bodyid == body)[0]:
        center, half = model.geom_aabb[g, :3], model.geom_aabb[g, 3:]
        rot = np.zeros(9)
        mujoco.mju_quat2Mat(rot, model.geom_quat[g])
        signs = np.array(np.meshgrid([-1, 1], [-1, 1], [-1, 1])).reshape(3, -1).T
        local = center + signs * half  # [8, 3] in the geom frame
        corners.append(model.geom_pos[g] + local @ rot.reshape(3, 3).T)
    if not corners:
        raise ValueError(f"foot body {body} has no geoms to define its support")
    points = np.concatenate(corners)
    return np.stack([points.min(axis=0), points.max(axis=0)])


def _name(model: mujoco.MjModel, obj: mujoco.mjtObj, index: int) -> str:
    return mujoco.mj_id2name(model, obj, int(index)) or f"{obj.name[6:].lower()}{index}"


def _id(model: mujoco.MjModel, obj: mujoco.mjtObj, name: str) -> int:
    index = mujoco.mj_name2id(model, obj, name)
    if index < 0:
        raise ValueError(f"no {obj.name[6:].lower()} named {name!r} in the model")
    return index


def _frame(
    model: DynamicsModel,
    m: mjx.Model,
    d: mjx.Data,
    h: jax.Array,
    qpos: jax.Array,
    qvel: jax.Array,
    qacc: jax.Array,
    grf: jax.Array,
    cop: jax.Array,
    moment: jax.Array,
) -> tuple[jax.Array, jax.Array, jax.Array]:
    """One frame -> (qfrc [nv], root rotation [3, 3], ankle anchors [F, 3], cop outside [F])."""
    d = d.replace(qpos=qpos, qvel=qvel, qacc=qacc)
    d = mjx_smooth.kinematics(m, d)
    d = mjx_smooth.com_pos(m, d)
    d = mjx_smooth.com_vel(m, d)
    d = mjx_passive.passive(m, d)
    d = mjx_smooth.rne(m, d, flg_acc=True)
    # rne with accelerations is M qacc + c without armature; mj_inverse's M includes it.
    qfrc = d.qfrc_bias + m.dof_armature * qacc - d.qfrc_passive
    if model.euler_damping:
        # Euler integrates damping implicitly: (M + h B) qacc_discrete = forces at v_t.
        qfrc = qfrc + h * m.dof_damping * qacc
    # J^T F through the foot Jacobians (mjx.support.jac, with its dof mask built once in numpy).
    root_com = d.subtree_com[jnp.asarray(model.foot_root_ids)]  # [F, 3]
    ang, lin = d.cdof[:, :3], d.cdof[:, 3:]  # [nv, 3]
    lever = cop - root_com  # [F, 3]
    # jacp_v . F = (lin_v + ang_v x lever) . F = lin_v . F + ang_v . (lever x F)
    foot_moment = jnp.cross(lever, grf) + moment  # [F, 3]
    external = grf @ lin.T + foot_moment @ ang.T  # [F, nv]
    qfrc = qfrc - jnp.sum(external * jnp.asarray(model.foot_dof_mask, qfrc.dtype), axis=0)
    # The COP in each foot's frame, against the box around its geoms (plus the margin).
    feet = jnp.asarray(model.foot_body_ids)
    local = jnp.einsum("fji,fj->fi", d.xmat[feet], cop - d.xpos[feet])  # R^T (cop - x)
    box = jnp.asarray(model.foot_support, qfrc.dtype)  # [F, 2, 3]
    margin = dynamics_inputs.COP_SUPPORT_MARGIN_M
    outside = jnp.any((local < box[:, 0] - margin) | (local > box[:, 1] + margin), axis=-1)
    return (
        qfrc,
        d.xmat[model.root_body_id],
        d.xanchor[jnp.asarray(model.ankle_joint_ids)],
        outside,
    )


def inverse_dynamics(
    model: DynamicsModel,
    trial: Trial,
    rate_hz: jax.Array | float,
    *,
    config: Config | None = None,
    length: jax.Array | int | None = None,
    body_mass: jax.Array | None = None,
    cop_threshold: jax.Array | float | None = None,
) -> Result:
    """Inverse dynamics of one trial; pure in (trial, rate_hz, length, body_mass, cop_threshold).

    No validation here (it may run under a trace): make_inverse_fn and runner.run_trial check
    concrete inputs with wildrobot.dynamics_inputs.validate first.

    trial: arrays [T, ...] (see Trial); the dtype of trial.qpos picks the MJX model's dtype.
    rate_hz: sampling rate (frames per second). length: the number of real frames when the
    arrays are padded to T (default T). body_mass: [nbody] to override the model's masses (a
    mass fit differentiates through it). cop_threshold: overrides config.cop_threshold
    (traced). Returns Result with arrays [T, ...].
    """
    config = config or Config()
    dtype = trial.qpos.dtype
    m, d0 = model.mjx(dtype)
    if body_mass is not None:
        m = m.replace(body_mass=jnp.asarray(body_mass, dtype))
    num_frames = trial.qpos.shape[0]
    length = jnp.asarray(num_frames if length is None else length, jnp.int32)
    h = (1.0 / jnp.asarray(rate_hz, dtype)).astype(dtype)
    window = config.smooth_window

    qpos = trial.qpos.at[:, 3:7].set(filters.align_quaternions(trial.qpos[:, 3:7]))
    free_moment = jnp.zeros_like(trial.grf) if trial.free_moment is None else trial.free_moment
    grf, cop = trial.grf, trial.cop
    qvel, qacc = trial.qvel, trial.qacc
    if window > 1:
        qpos = filters.moving_average(qpos, window, length)
        quat = qpos[:, 3:7] / jnp.linalg.norm(qpos[:, 3:7], axis=-1, keepdims=True)
        qpos = qpos.at[:, 3:7].set(quat)
        qvel = None if qvel is None else filters.moving_average(qvel, window, length)
        qacc = None if qacc is None else filters.moving_average(qacc, window, length)
        if config.smooth_forces:
            grf, cop, free_moment = (
                filters.moving_average(x, window, length) for x in (grf, cop, free_moment)
            )
    first = 0
    if qvel is None:
        qvel = filters.discrete_velocity(qpos, h, length)
        first = 1
    last = 0
    if qacc is None:
        qacc = filters.discrete_acceleration(qvel, h, length, first)
        last = 1

    block = min(config.block_size, num_frames)
    num_blocks = -(-num_frames // block)
    pad = num_blocks * block - num_frames

    def blocks(x: jax.Array) -> jax.Array:
        x = jnp.concatenate([x, jnp.repeat(x[-1:], pad, axis=0)]) if pad else x
        return x.reshape((num_blocks, block) + x.shape[1:])

    frame_fn = jax.vmap(lambda *args: _frame(model, m, d0, h, *args))

    def step(carry: None, xs: tuple[jax.Array, ...]) -> tuple[None, tuple[jax.Array, ...]]:
        return carry, frame_fn(*xs)

    xs = tuple(blocks(x) for x in (qpos, qvel, qacc, grf, cop, free_moment))
    _, (qfrc, root_mat, ankle, outside) = jax.lax.scan(step, None, xs)
    qfrc, root_mat, ankle, outside = (
        x.reshape((-1,) + x.shape[2:])[:num_frames] for x in (qfrc, root_mat, ankle, outside)
    )

    t = jnp.arange(num_frames)
    half = window // 2
    valid = (t >= first + half) & (t <= length - 1 - last - half)
    threshold = config.cop_threshold if cop_threshold is None else cop_threshold
    cop_valid = grf[..., 2] > jnp.asarray(threshold, dtype)
    real = (t < length)[:, None]
    ankle_moment = jnp.cross(cop - ankle, grf) + free_moment
    return Result(
        joint_torque=qfrc[:, model.actuator_dofs],
        residual_force=qfrc[:, :3],
        residual_moment=jnp.einsum("tij,tj->ti", root_mat, qfrc[:, 3:6]),
        ankle_moment=ankle_moment,
        cop=jnp.where(cop_valid[..., None], cop, jnp.nan),
        cop_valid=cop_valid,
        valid=valid,
        qfrc=qfrc,
        cop_outside=outside & cop_valid & real,
    )


def make_inverse_fn(model: DynamicsModel, config: Config | None = None) -> Callable[..., Result]:
    """A jitted `fn(trial, rate_hz, length=None, body_mass=None, cop_threshold=None) -> Result`.

    Concrete inputs are validated first with wildrobot.dynamics_inputs.validate (the rule the
    RPC, the jobs, the SDK and the CLI use): shapes, dtypes, NaN/Inf, unit root quaternions, the
    rate in [10, 10000] Hz, at least 3 frames; a TrialError names the input. Under a trace (vmap,
    grad with respect to the trial) values cannot be checked, only shapes. Compiles once per
    (shape, dtype) of the trial; cop_threshold is traced (a new value never recompiles). vmap it
    over trials with `jax.vmap(fn, in_axes=(0, None, 0))`.
    """
    config = config or Config()

    def fn(
        trial: Trial,
        rate_hz: jax.Array | float,
        length: jax.Array | int | None = None,
        body_mass: jax.Array | None = None,
        cop_threshold: jax.Array | float | None = None,
    ) -> Result:
        threshold = config.cop_threshold if cop_threshold is None else cop_threshold
        return inverse_dynamics(
            model,
            trial,
            rate_hz,
            config=config,
            length=length,
            body_mass=body_mass,
            cop_threshold=threshold,
        )

    jitted = jax.jit(fn)

    def checked(
        trial: Trial,
        rate_hz: jax.Array | float,
        length: jax.Array | int | None = None,
        body_mass: jax.Array | None = None,
        cop_threshold: jax.Array | float | None = None,
    ) -> Result:
        check_inputs(model, trial, rate_hz, length, cop_threshold)
        threshold = config.cop_threshold if cop_threshold is None else cop_threshold
        return jitted(trial, rate_hz, length, body_mass, threshold)

    checked.jitted = jitted  # type: ignore[attr-defined] - the compiled function, for AOT use
    return checked


def _concrete(x: Any) -> bool:
    return x is not None and not isinstance(x, jax.core.Tracer)


def check_inputs(
    model: DynamicsModel,
    trial: Trial,
    rate_hz: Any,
    length: Any = None,
    cop_threshold: Any = None,
) -> None:
    """Validates what is concrete (see make_inverse_fn); raises TrialError naming the input."""
    fields = {k: getattr(trial, k) for k in dynamics_inputs.ARRAYS}
    if all(_concrete(v) or v is None for v in fields.values()) and _concrete(rate_hz):
        host = {k: np.asarray(v) for k, v in fields.items() if v is not None}
        rate = np.asarray(rate_hz)
        if rate.size != 1:
            raise dynamics_inputs.TrialError("rate_hz", "must be one number")
        data = dynamics_inputs.TrialData(rate_hz=float(rate.ravel()[0]), **host)
        if _concrete(length):
            real = int(np.asarray(length))
            if not 3 <= real <= data.num_frames:
                raise dynamics_inputs.TrialError(
                    "length", f"{real} is outside [3, {data.num_frames}] (the padded frames)"
                )
            cut = {k: v[:real] for k, v in data.arrays().items()}
            data = dataclasses.replace(data, **cut)
        dynamics_inputs.validate(
            data,
            nq=model.nq,
            nv=model.nv,
            foot_names=model.foot_names,
            limits=dynamics_inputs.Limits(max_frames=2**62),
        )
    else:  # under a trace: shapes only
        num_frames = np.shape(trial.qpos)[0]
        num_feet = len(model.foot_names)
        shapes = {
            "qpos": (num_frames, model.nq),
            "grf": (num_frames, num_feet, 3),
            "cop": (num_frames, num_feet, 3),
            "free_moment": (num_frames, num_feet, 3),
            "qvel": (num_frames, model.nv),
            "qacc": (num_frames, model.nv),
        }
        for name, value in fields.items():
            if value is not None and tuple(np.shape(value)) != shapes[name]:
                raise dynamics_inputs.TrialError(
                    name, f"shape {list(np.shape(value))}, expected {list(shapes[name])}"
                )
    if _concrete(cop_threshold):
        dynamics_inputs.validate_options(cop_threshold=float(np.asarray(cop_threshold)))
