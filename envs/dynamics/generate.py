"""Trials from simulated WildRobot motion with known joint torques and true contact wrenches.

The robot starts in its `home` keyframe and its servo targets follow a sum of slow sinusoids, so
it sways, squats and waves its arms with both feet on the floor. Every physics step is one frame.
Alongside the inputs of a trial the generator records the truth: the torque each joint received
(actuator force plus joint friction and limit forces, the part of the motion that is not passive
and not the floor) and the actuator forces alone.
"""

from __future__ import annotations

import copy

import mujoco
import numpy as np

from ..wildrobot import constants
from .inverse import Foot
from .trial import TrialData


def foot_wrenches(
    model: mujoco.MjModel, data: mujoco.MjData, foot_body_ids: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Sums the contact forces on each foot -> (grf [F, 3], cop [F, 3], free_moment [F, 3]).

    World frame. COP = sum p_i fz_i / sum fz_i; the free moment is the whole moment of the
    contact forces about the COP, so (grf at cop, free_moment) is exactly the contacts' wrench.
    An unloaded foot gets zero force and moment and its body origin as COP.
    """
    num_feet = len(foot_body_ids)
    forces = [[] for _ in range(num_feet)]
    points = [[] for _ in range(num_feet)]
    torques = [[] for _ in range(num_feet)]
    local = np.zeros(6)
    for i in range(data.ncon):
        contact = data.contact[i]
        bodies = model.geom_bodyid[[contact.geom1, contact.geom2]]
        for k, body in enumerate(foot_body_ids):
            if body not in bodies:
                continue
            mujoco.mj_contactForce(model, data, i, local)
            frame = contact.frame.reshape(3, 3)
            # The contact force acts on geom2 along the frame; geom1 feels the opposite.
            sign = 1.0 if bodies[1] == body else -1.0
            forces[k].append(sign * frame.T @ local[:3])
            torques[k].append(sign * frame.T @ local[3:] if contact.dim > 3 else np.zeros(3))
            points[k].append(contact.pos.copy())
    grf = np.zeros((num_feet, 3))
    cop = data.xpos[foot_body_ids].copy()
    moment = np.zeros((num_feet, 3))
    for k in range(num_feet):
        if not forces[k]:
            continue
        f, p, tau = np.array(forces[k]), np.array(points[k]), np.array(torques[k])
        grf[k] = f.sum(axis=0)
        if grf[k, 2] > 1e-9:
            cop[k] = (p * f[:, 2:3]).sum(axis=0) / f[:, 2].sum()
        moment[k] = np.cross(p - cop[k], f).sum(axis=0) + tau.sum(axis=0)
    return grf, cop, moment


def simulate_trial(
    num_frames: int,
    *,
    seed: int = 0,
    timestep: float | None = None,
    amplitude: float = 0.15,
    frictionloss: bool = True,
    feet: tuple[Foot, ...] | None = None,
    mj_model: mujoco.MjModel | None = None,
) -> TrialData:
    """Simulates `num_frames` physics steps of WildRobot and returns the trial with its truth.

    timestep: seconds per frame (default: the model's). amplitude: radians of the servo-target
    sinusoids around `home`. frictionloss: keep the joints' dry friction (False zeroes it, so
    the true joint torque is exactly the actuator force).
    """
    from .wildrobot import FEET, load_mj_model

    feet = feet or FEET
    model = copy.deepcopy(mj_model) if mj_model is not None else load_mj_model()
    if timestep is not None:
        model.opt.timestep = timestep
    if not frictionloss:
        model.dof_frictionloss[:] = 0.0
    # The constraint solver runs to convergence: an unconverged iterate's accelerations and
    # contact forces do not satisfy the equations of motion, so they would be no ground truth.
    model.opt.iterations, model.opt.ls_iterations, model.opt.tolerance = 100, 50, 1e-13
    h = model.opt.timestep
    data = mujoco.MjData(model)
    key = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_KEY, constants.HOME_KEYFRAME)
    mujoco.mj_resetDataKeyframe(model, data, key)
    home_ctrl = data.ctrl.copy()

    rng = np.random.default_rng(seed)
    freqs = rng.uniform(0.3, 1.5, size=(3, model.nu))
    phases = rng.uniform(0, 2 * np.pi, size=(3, model.nu))
    gains = rng.uniform(0.3, 1.0, size=(3, model.nu)) * amplitude / 3
    foot_ids = np.array([model.body(f.body).id for f in feet])
    actuated_dofs = model.jnt_dofadr[model.actuator_trnid[:, 0]]

    qpos = np.zeros((num_frames, model.nq))
    qvel = np.zeros((num_frames + 1, model.nv))
    grf = np.zeros((num_frames, len(feet), 3))
    cop = np.zeros_like(grf)
    free_moment = np.zeros_like(grf)
    joint_torque = np.zeros((num_frames, model.nu))
    actuator_force = np.zeros((num_frames, model.nu))
    ctrl = np.zeros((num_frames, model.nu))
    qfrc_floor = np.zeros(model.nv)
    for t in range(num_frames):
        time = t * h
        data.ctrl[:] = home_ctrl + np.sum(gains * np.sin(2 * np.pi * freqs * time + phases), axis=0)
        qpos[t], qvel[t], ctrl[t] = data.qpos, data.qvel, data.ctrl
        mujoco.mj_step(model, data)  # contacts and forces stay those of frame t
        grf[t], cop[t], free_moment[t] = foot_wrenches(model, data, foot_ids)
        qfrc_floor[:] = 0.0
        for k, body in enumerate(foot_ids):
            mujoco.mj_applyFT(
                model, data, grf[t, k], free_moment[t, k], cop[t, k], body, qfrc_floor
            )
        joint = data.qfrc_actuator + data.qfrc_constraint - qfrc_floor
        joint_torque[t] = joint[actuated_dofs]
        actuator_force[t] = data.qfrc_actuator[actuated_dofs]
    qvel[num_frames] = data.qvel
    return TrialData(
        qpos=qpos,
        rate_hz=1.0 / h,
        grf=grf,
        cop=cop,
        free_moment=free_moment,
        qvel=qvel[:-1],
        qacc=np.diff(qvel, axis=0) / h,
        foot_names=tuple(f.name for f in feet),
        truth={"joint_torque": joint_torque, "actuator_force": actuator_force, "ctrl": ctrl},
    )
