"""Walking pattern (footsteps -> ZMP -> linear-inverted-pendulum CoM) and leg IK on the MJCF.

Why this way: the clips have to be motions the robot can physically do (WildRobot's own AMP attempt
failed on retargeted clips it could not follow), so the pattern keeps the zero-moment point inside
the support feet by construction and realize.py then checks it in simulation.

Pattern, per axis of the floor plane (x and y are independent for the LIPM):
  1. Footsteps alternate (right foot first); each step is a double-support phase, in which the ZMP
     moves linearly from the old stance foot to the new one, then a single-support phase, in which
     the ZMP stays under the stance foot and the swing foot moves (min-jerk horizontally, a
     (1 - cos) bump of `step_height` vertically, so it lifts off and lands with zero speed).
  2. The CoM solves the LIPM  c'' = (g / z_c) (c - p)  as a boundary-value problem on the whole
     trajectory (standing still at both ends), a tridiagonal linear system: no preview controller.
  3. The pelvis is placed so that the multi-body CoM of the IK pose (not the pelvis) follows the
     LIPM CoM: a few fixed-point passes of pelvis += c_plan - c_actual in the floor plane.
WildRobot's legs have no hip yaw, so a foot always has the pelvis's heading; turning makes the
stance foot pivot about its sole centre (planned foot position fixed, heading changing).
"""

from __future__ import annotations

from dataclasses import dataclass

import mujoco
import numpy as np

from ..wildrobot import constants
from .format import load_model
from .library import quat_mul, yaw_quat

GRAVITY = 9.81
LEG_JOINTS = (
    ("left_hip_pitch", "left_hip_roll", "left_knee_pitch", "left_ankle_pitch", "left_ankle_roll"),
    (
        "right_hip_pitch",
        "right_hip_roll",
        "right_knee_pitch",
        "right_ankle_pitch",
        "right_ankle_roll",
    ),
)
LIMIT_MARGIN = 0.02  # rad kept inside each joint range by the IK


@dataclass(frozen=True)
class GaitConfig:
    """A walking pattern. Units: m, s, rad. speed is forward, yaw_rate about world z (left +)."""

    speed: float = 0.1
    yaw_rate: float = 0.0
    step_time: float = 0.5
    double_support: float = 0.2
    step_height: float = 0.025
    pelvis_height: float = 0.44
    foot_width: float = 0.0536  # lateral distance of each sole centre from the path
    zmp_inward: float = 0.01  # single-support ZMP shifted this far toward the path
    zmp_roll: float = 0.0  # single-support ZMP travels this far heel -> toe under the stance foot
    num_steps: int = 8
    stand_time: float = 1.0  # still standing before the first and after the last step
    dt: float = 0.02
    lipm_height: float | None = None  # LIPM z_c; None: the standing pose's CoM height


@dataclass(frozen=True)
class GaitPlan:
    """Planned trajectories sampled every dt. Shapes: [N] times; [N, 2, 3] feet; [N, 3] pelvis, com."""

    time: np.ndarray
    feet: np.ndarray  # sole centres (foot sites), world, [left, right]
    heading: np.ndarray  # [N] pelvis (and feet) yaw
    com: np.ndarray  # LIPM CoM, world; z is the constant LIPM height
    zmp: np.ndarray  # [N, 2]
    swing: np.ndarray  # [N] -1 double support, 0 left swings, 1 right swings
    config: GaitConfig


def _min_jerk(s: np.ndarray) -> np.ndarray:
    return s**3 * (10.0 - 15.0 * s + 6.0 * s**2)


def _footprints(cfg: GaitConfig) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Footprint centres [num_steps + 2, 2], headings [num_steps + 2] and sides (0 left, 1 right).

    Index 0 and 1 are the initial right and left feet; footprint j >= 2 is where step j - 2 puts
    its swing foot. The path centre advances speed * step_time and turns yaw_rate * step_time per
    step; the first step goes half as far and the last one brings the feet side by side.
    """
    n = cfg.num_steps
    step_len = cfg.speed * cfg.step_time
    step_yaw = cfg.yaw_rate * cfg.step_time
    # Path progress (arc length and heading) at each footprint.
    progress = np.concatenate([[0.0, 0.0], (np.arange(n) + 0.5) * step_len])
    progress[-1] = progress[-2]
    heading = np.concatenate([[0.0, 0.0], (np.arange(n) + 0.5) * step_yaw])
    heading[-1] = heading[-2]
    sides = np.array([1, 0] + [(j + 1) % 2 for j in range(n)])  # step 0 swings the right foot
    # Integrate the path: centre moves along the current heading.
    centre = np.zeros((n + 2, 2))
    for j in range(2, n + 2):
        d = progress[j] - progress[j - 1]
        mid = 0.5 * (heading[j] + heading[j - 1])
        centre[j] = centre[j - 1] + d * np.array([np.cos(mid), np.sin(mid)])
    lateral = np.where(sides == 0, 1.0, -1.0) * cfg.foot_width
    normal = np.stack([-np.sin(heading), np.cos(heading)], axis=1)
    return centre + lateral[:, None] * normal, heading, sides


def _solve_lipm(zmp: np.ndarray, dt: float, omega: float) -> np.ndarray:
    """CoM [N] of c'' = omega^2 (c - p) with c = p at both ends (central differences)."""
    n = zmp.size
    a = np.zeros((n, n))
    rhs = -(omega**2) * zmp * dt**2
    idx = np.arange(1, n - 1)
    a[idx, idx - 1] = 1.0
    a[idx, idx] = -2.0 - omega**2 * dt**2
    a[idx, idx + 1] = 1.0
    a[0, 0] = a[-1, -1] = 1.0
    rhs[0], rhs[-1] = zmp[0], zmp[-1]
    return np.linalg.solve(a, rhs)


def plan_gait(cfg: GaitConfig, com_height: float) -> GaitPlan:
    """Footsteps, swing trajectories, ZMP and LIPM CoM for `cfg`; com_height is the LIPM z_c."""
    prints, headings, sides = _footprints(cfg)
    total = 2.0 * cfg.stand_time + cfg.num_steps * cfg.step_time
    num = int(round(total / cfg.dt)) + 1
    time = np.arange(num) * cfg.dt
    feet = np.zeros((num, 2, 3))
    zmp = np.zeros((num, 2))
    heading = np.zeros(num)
    swing = -np.ones(num, dtype=np.int64)
    foot_xy = [prints[1].copy(), prints[0].copy()]  # current [left, right]
    single = cfg.step_time - cfg.double_support
    for i, t in enumerate(time):
        k = (t - cfg.stand_time) / cfg.step_time
        j = int(np.floor(k))
        if j < 0 or j >= cfg.num_steps:  # standing
            done = j >= cfg.num_steps
            left = prints[-1] if done and sides[-1] == 0 else prints[-2] if done else prints[1]
            right = prints[-1] if done and sides[-1] == 1 else prints[-2] if done else prints[0]
            feet[i, 0, :2], feet[i, 1, :2] = left, right
            zmp[i] = 0.5 * (left + right)
            heading[i] = headings[-1] if done else 0.0
            continue
        phase = (t - cfg.stand_time) - j * cfg.step_time
        side = sides[j + 2]
        stance = 1 - side
        old = prints[j]  # the swing foot's previous footprint
        new = prints[j + 2]
        stance_xy = prints[j + 1]
        inward = cfg.zmp_inward * np.array([-np.sin(headings[j + 1]), np.cos(headings[j + 1])])
        roll = 0.5 * cfg.zmp_roll * np.array([np.cos(headings[j + 1]), np.sin(headings[j + 1])])
        stance_zmp = stance_xy + (-inward if stance == 0 else inward)
        prev_zmp = (
            0.5 * (prints[0] + prints[1])
            if j == 0
            else prints[j] + (-inward if side == 0 else inward) + roll
        )
        h0, h1 = headings[j + 1], headings[j + 2]
        if phase < cfg.double_support:
            s = phase / cfg.double_support
            zmp[i] = prev_zmp + s * (stance_zmp - roll - prev_zmp)
            foot_xy[side] = old
            foot_z = 0.0
            heading[i] = h0
        else:
            s = (phase - cfg.double_support) / single
            m = _min_jerk(s)
            forward = np.array([np.cos(headings[j + 1]), np.sin(headings[j + 1])])
            zmp[i] = stance_zmp + (s - 0.5) * cfg.zmp_roll * forward
            foot_xy[side] = old + m * (new - old)
            foot_z = cfg.step_height * 0.5 * (1.0 - np.cos(2.0 * np.pi * s))
            heading[i] = h0 + m * (h1 - h0)
            swing[i] = side
        feet[i, side, :2] = foot_xy[side]
        feet[i, side, 2] = foot_z if phase >= cfg.double_support else 0.0
        feet[i, stance, :2] = stance_xy
    omega = np.sqrt(GRAVITY / com_height)
    com = np.zeros((num, 3))
    com[:, 0] = _solve_lipm(zmp[:, 0], cfg.dt, omega)
    com[:, 1] = _solve_lipm(zmp[:, 1], cfg.dt, omega)
    com[:, 2] = com_height
    return GaitPlan(time, feet, heading, com, zmp, swing, cfg)


class LegIK:
    """Damped-least-squares IK for both feet: sole centre position and a flat (level) sole.

    The root pose is prescribed; only the 5 joints of each leg move, so each foot has exactly 5
    tasks (3 position, 2 tilt) for 5 joints. Joints are clipped LIMIT_MARGIN inside their ranges.
    """

    def __init__(self, damping: float = 1e-3, iterations: int = 30):
        self.model = load_model()
        self.data = mujoco.MjData(self.model)
        self.damping = damping
        self.iterations = iterations
        m = self.model
        self.sites = [m.site(name).id for name in constants.FEET_SITES]
        self.leg_qpos = [
            np.array([m.jnt_qposadr[m.joint(n).id] for n in leg]) for leg in LEG_JOINTS
        ]
        self.leg_dof = [np.array([m.jnt_dofadr[m.joint(n).id] for n in leg]) for leg in LEG_JOINTS]
        self.leg_range = [np.array([constants.JOINT_RANGES[n] for n in leg]) for leg in LEG_JOINTS]
        self.home = m.key_qpos[m.key(constants.HOME_KEYFRAME).id].copy()

    def solve(self, qpos: np.ndarray, feet: np.ndarray) -> tuple[np.ndarray, float]:
        """Legs of qpos [24] (root and other joints kept) reaching feet [2, 3]; returns (qpos, err m)."""
        m, d = self.model, self.data
        d.qpos[:] = qpos
        jacp = np.zeros((3, m.nv))
        jacr = np.zeros((3, m.nv))
        err = np.inf
        for _ in range(self.iterations):
            mujoco.mj_kinematics(m, d)
            mujoco.mj_comPos(m, d)
            err = 0.0
            for leg, site in enumerate(self.sites):
                pos_err = feet[leg] - d.site_xpos[site]
                z_axis = d.site_xmat[site].reshape(3, 3)[:, 2]
                tilt_err = np.cross(z_axis, np.array([0.0, 0.0, 1.0]))
                mujoco.mj_jacSite(m, d, jacp, jacr, site)
                dof = self.leg_dof[leg]
                jac = np.vstack([jacp[:, dof], jacr[:2, dof]])
                e = np.concatenate([pos_err, tilt_err[:2]])
                step = jac.T @ np.linalg.solve(jac @ jac.T + self.damping * np.eye(5), e)
                adr = self.leg_qpos[leg]
                lo, hi = (
                    self.leg_range[leg][:, 0] + LIMIT_MARGIN,
                    self.leg_range[leg][:, 1] - LIMIT_MARGIN,
                )
                d.qpos[adr] = np.clip(d.qpos[adr] + step, lo, hi)
                err = max(err, float(np.linalg.norm(pos_err)))
            if err < 1e-5:
                break
        return d.qpos.copy(), err

    def com(self, qpos: np.ndarray) -> np.ndarray:
        """Whole-body CoM [3] of qpos."""
        self.data.qpos[:] = qpos
        mujoco.mj_kinematics(self.model, self.data)
        mujoco.mj_comPos(self.model, self.data)
        return self.data.subtree_com[0].copy()


@dataclass(frozen=True)
class Trajectory:
    """IK result: qpos [N, 24] (planned root + joints), the plan, and the worst foot error (m)."""

    qpos: np.ndarray
    plan: GaitPlan
    max_foot_error: float


def home_qpos() -> np.ndarray:
    """The MJCF's `home` keyframe qpos [24]."""
    m = load_model()
    return m.key_qpos[m.key(constants.HOME_KEYFRAME).id].copy()


def home_pitch_quat() -> np.ndarray:
    """The home keyframe's root orientation with its yaw removed (a slight forward lean)."""
    return home_qpos()[3:7] / np.linalg.norm(home_qpos()[3:7])


def solve_trajectory(cfg: GaitConfig, com_passes: int = 3) -> Trajectory:
    """Plan `cfg` and solve IK per frame; the pelvis is shifted so the body CoM follows the LIPM."""
    ik = LegIK()
    base = home_qpos()
    base[2] = cfg.pelvis_height
    base[3:7] = home_pitch_quat()
    q = base.copy()
    q, _ = ik.solve(q, np.array([[0.0, cfg.foot_width, 0.0], [0.0, -cfg.foot_width, 0.0]]))
    com_height = cfg.lipm_height or float(ik.com(q)[2])
    plan = plan_gait(cfg, com_height)
    offset = ik.com(q)[:2] - q[:2]  # CoM minus pelvis, initial guess for every frame
    out = np.zeros((plan.time.size, q.size))
    worst = 0.0
    for i in range(plan.time.size):
        rot = quat_mul(yaw_quat(plan.heading[i]), base[3:7])
        for _ in range(com_passes):
            q[:2] = plan.com[i, :2] - offset
            q[2] = cfg.pelvis_height
            q[3:7] = rot
            q, err = ik.solve(q, plan.feet[i])
            offset = ik.com(q)[:2] - q[:2]
        out[i] = q
        worst = max(worst, err)
    return Trajectory(out, plan, worst)
