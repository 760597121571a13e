"""Play an IK trajectory in native MuJoCo and record what the robot physically did.

The robot's own position servos (the MJCF's actuators) track the IK joint targets at 50 Hz while a
"help" wrench on the pelvis, a PD toward the planned pelvis pose (a virtual harness), catches what
the pattern gets wrong. The help force measures how far the clip is from something the robot can do
unaided: the clip is kept only if it is small (see HELP_MEAN_BOUND, HELP_MAX_BOUND).

Servo lag and sag under load are removed by iterative learning control: after each rollout the
targets are moved by the tracking error (target += gain * (ik - realized)), so the realized joints
come close to the IK and the harness need not hold up a sagging robot.

Recorded at the control rate: qpos after each control step. Measured per rollout: help force
(|F| / (m g), mean and max) and torque (N m), foot slip (horizontal speed of a sole centre while its
foot carries > STANCE_FORCE of normal force), floor penetration (deepest contact), and joint-limit
violations (frames x joints outside the MJCF range).
"""

from __future__ import annotations

from dataclasses import dataclass

import mujoco
import numpy as np

from ..wildrobot import constants
from .format import load_model
from .library import quat_conj, quat_mul, quat_to_rotvec

HELP_MEAN_BOUND = 0.10  # mean |help force| / (m g)
HELP_MAX_BOUND = 0.30  # max |help force| / (m g)
STANCE_FORCE = 5.0  # N of normal force for a foot to count as in stance


@dataclass(frozen=True)
class RealizeConfig:
    """Simulation and harness settings. Gains: N/m, N s/m, N m/rad, N m s/rad."""

    sim_dt: float = 0.002
    control_dt: float = 0.02
    help_kp: float = 1000.0
    help_kd: float = 60.0
    help_rot_kp: float = 20.0
    help_rot_kd: float = 1.0
    ilc_passes: int = 6
    ilc_gain: float = 0.7
    ilc_lead: int = 2  # frames: a target acts on later frames, so it is corrected by a later error


@dataclass(frozen=True)
class Realization:
    """A recorded rollout, per control frame (N frames at the control rate).

    qpos [N, 24]; help_force [N, 3] (N, world) and help_torque [N, 3] (N m), the harness wrench
    averaged over the step into each frame (frame 0: zeros); slip [N, 2] horizontal speed (m/s)
    of each sole centre, NaN when that foot carries <= STANCE_FORCE; penetration [N] (m) deepest
    contact; tracking_error [N, 17] IK minus realized joints (JOINT_NAMES order); weight m g (N).
    """

    qpos: np.ndarray
    help_force: np.ndarray
    help_torque: np.ndarray
    slip: np.ndarray
    penetration: np.ndarray
    tracking_error: np.ndarray
    weight: float

    def figures(self, start: int = 1, stop: int | None = None) -> dict[str, float]:
        """Validity figures over frames [start, stop): fractions of m g, N m, mm/s, mm, counts."""
        sl = slice(start, stop)
        force = np.linalg.norm(self.help_force[sl], axis=1) / self.weight
        torque = np.linalg.norm(self.help_torque[sl], axis=1)
        slip = self.slip[sl][np.isfinite(self.slip[sl])]
        slip = slip if slip.size else np.zeros(1)
        return {
            "help_force_mean": float(force.mean()),
            "help_force_max": float(force.max()),
            "help_torque_mean": float(torque.mean()),
            "help_torque_max": float(torque.max()),
            "sim_slip_speed_mean_mm_s": 1000.0 * float(slip.mean()),
            "sim_slip_speed_max_mm_s": 1000.0 * float(slip.max()),
            "sim_penetration_max_mm": 1000.0 * float(self.penetration[sl].max()),
            "sim_joint_limit_violations": limit_violations(self.qpos[sl]),
            "joint_tracking_rms_rad": float(np.sqrt(np.mean(self.tracking_error[sl] ** 2))),
        }


class _Sim:
    """The MJCF with the realization's timestep, and ids looked up once."""

    def __init__(self, cfg: RealizeConfig):
        self.model = mujoco.MjModel.from_xml_path(str(constants.XML_PATH))
        self.model.opt.timestep = cfg.sim_dt
        self.data = mujoco.MjData(self.model)
        m = self.model
        self.pelvis = m.body(constants.ROOT_BODY).id
        self.sites = [m.site(n).id for n in constants.FEET_SITES]
        self.pad_geoms = [{m.geom(g).id for g in pads} for pads in constants.FOOT_PAD_GEOMS]
        joint_ids = [m.joint(n).id for n in constants.ACTUATOR_NAMES]
        self.act_qpos = np.array([m.jnt_qposadr[j] for j in joint_ids])
        self.mass = float(m.body_subtreemass[self.pelvis])
        self.substeps = int(round(cfg.control_dt / cfg.sim_dt))

    def foot_contact(self) -> tuple[np.ndarray, float]:
        """Normal force per foot [2] (N) and the deepest penetration (m, >= 0)."""
        m, d = self.model, self.data
        force = np.zeros(2)
        deepest = 0.0
        wrench = np.zeros(6)
        for c in range(d.ncon):
            con = d.contact[c]
            for foot, pads in enumerate(self.pad_geoms):
                if con.geom1 in pads or con.geom2 in pads:
                    mujoco.mj_contactForce(m, d, c, wrench)
                    force[foot] += wrench[0]
                    deepest = max(deepest, -float(con.dist))
        return force, deepest


def _rollout(
    sim: _Sim, plan_qpos: np.ndarray, plan_feet: np.ndarray, targets: np.ndarray, cfg: RealizeConfig
):
    m, d = sim.model, sim.data
    mujoco.mj_resetData(m, d)
    d.qpos[:] = plan_qpos[0]
    d.ctrl[:] = targets[0]
    mujoco.mj_forward(m, d)
    num = plan_qpos.shape[0]
    plan_vel = np.zeros((num, 6))
    plan_vel[1:, :3] = np.diff(plan_qpos[:, :3], axis=0) / cfg.control_dt
    recorded = np.zeros_like(plan_qpos)
    recorded[0] = d.qpos
    help_f = np.zeros((num, 3))
    help_t = np.zeros((num, 3))
    slip = np.full((num, 2), np.nan)
    penetration = np.zeros(num)
    for i in range(1, num):
        d.ctrl[:] = targets[i]
        goal = plan_qpos[i].copy()
        goal[:2] += _footprint_drift(sim, plan_feet[i])
        f_sum, t_sum = np.zeros(3), np.zeros(3)
        for _ in range(sim.substeps):
            quat = d.qpos[3:7]
            rot_err = quat_to_rotvec(quat_mul(goal[3:7], quat_conj(quat)))  # world frame
            ang_vel = d.xmat[sim.pelvis].reshape(3, 3) @ d.qvel[3:6]  # body -> world
            force = cfg.help_kp * (goal[:3] - d.qpos[:3]) + cfg.help_kd * (
                plan_vel[i, :3] - d.qvel[:3]
            )
            torque = cfg.help_rot_kp * rot_err - cfg.help_rot_kd * ang_vel
            d.xfrc_applied[sim.pelvis] = np.concatenate([force, torque])
            mujoco.mj_step(m, d)
            f_sum += force
            t_sum += torque
        help_f[i] = f_sum / sim.substeps
        help_t[i] = t_sum / sim.substeps
        recorded[i] = d.qpos
        normal, penetration[i] = sim.foot_contact()
        for foot, site in enumerate(sim.sites):
            if normal[foot] > STANCE_FORCE:
                vel = np.zeros(6)
                mujoco.mj_objectVelocity(m, d, mujoco.mjtObj.mjOBJ_SITE, site, vel, 0)
                slip[i, foot] = float(np.linalg.norm(vel[3:5]))
    d.xfrc_applied[:] = 0.0
    return recorded, help_f, help_t, slip, penetration


def _footprint_drift(sim: _Sim, feet: np.ndarray) -> np.ndarray:
    """Mean xy offset [2] of the actual from the planned sole centres of the planned stance feet.

    The harness pulls toward the planned pelvis *relative to where the feet really are*, so a
    footprint that landed a few mm off does not turn into a standing spring force for the rest of
    the clip; only the balance the pattern gets wrong needs help.
    """
    stance = [foot for foot in range(2) if feet[foot, 2] < 1e-3]
    if not stance:
        return np.zeros(2)
    return np.mean([sim.data.site_xpos[sim.sites[f], :2] - feet[f, :2] for f in stance], axis=0)


def limit_violations(qpos: np.ndarray) -> int:
    """Number of (frame, joint) entries of qpos [N, 24] outside the joint's range."""
    model = load_model()
    adr = [model.jnt_qposadr[model.joint(n).id] for n in constants.ACTUATOR_NAMES]
    ranges = np.array([constants.JOINT_RANGES[n] for n in constants.ACTUATOR_NAMES])
    joints = qpos[:, adr]
    return int(np.sum((joints < ranges[:, 0]) | (joints > ranges[:, 1])))


def realize(
    plan_qpos: np.ndarray, plan_feet: np.ndarray, cfg: RealizeConfig | None = None
) -> Realization:
    """Track plan_qpos [N, 24] (frames at cfg.control_dt) with servos + harness; record the result.

    plan_feet [N, 2, 3]: the planned sole centres (left, right); z < 1 mm marks a stance foot.

    Runs 1 + cfg.ilc_passes rollouts; the last one is recorded and measured.
    """
    cfg = cfg or RealizeConfig()
    sim = _Sim(cfg)
    ik_joints = plan_qpos[:, sim.act_qpos]
    targets = ik_joints.copy()
    ranges = np.array([constants.JOINT_RANGES[n] for n in constants.ACTUATOR_NAMES])
    for ilc in range(cfg.ilc_passes + 1):
        recorded, help_f, help_t, slip, penetration = _rollout(
            sim, plan_qpos, plan_feet, targets, cfg
        )
        error = ik_joints - recorded[:, sim.act_qpos]
        if ilc < cfg.ilc_passes:
            lead = np.concatenate([error[cfg.ilc_lead :], np.repeat(error[-1:], cfg.ilc_lead, 0)])
            targets = np.clip(targets + cfg.ilc_gain * lead, ranges[:, 0], ranges[:, 1])
    weight = sim.mass * float(-sim.model.opt.gravity[2])
    return Realization(recorded, help_f, help_t, slip, penetration, error, weight)


def passes(figures: dict[str, float]) -> bool:
    """Whether a realization's help force is within HELP_MEAN_BOUND and HELP_MAX_BOUND."""
    return (
        figures["help_force_mean"] < HELP_MEAN_BOUND and figures["help_force_max"] < HELP_MAX_BOUND
    )
