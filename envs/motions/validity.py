"""Kinematic checks of a clip: replay its qpos frames in MuJoCo (mj_kinematics, no physics).

These need nothing but the clip and the MJCF, so the tests can check every shipped clip without
re-running the simulation that made it. Bounds are stated here and used by generate.py and tests.

  - penetration: the lowest point of any foot pad capsule below the floor (z < 0), in mm.
  - stance slip: per frame, the lower foot counts as in stance when its lowest pad point is within
    STANCE_HEIGHT of the floor; its sole-centre horizontal speed between consecutive frames in
    stance is the slip (mm/s). A planted foot should barely move; a pivoting (turning) foot pivots
    about its sole centre, so this is small there too.
  - joint limits: (frame, joint) entries outside the MJCF ranges.
"""

from __future__ import annotations

import mujoco
import numpy as np

from ..wildrobot import constants
from .format import Motion, load_model
from .realize import limit_violations

PENETRATION_BOUND_MM = 5.0
STANCE_HEIGHT = 0.003  # m
SLIP_MEAN_BOUND_MM_S = 20.0
SLIP_MAX_BOUND_MM_S = 150.0


def feet_heights_and_centres(qpos: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Lowest pad point z [N, 2] and sole-centre position [N, 2, 3] of each foot (left, right)."""
    model = load_model()
    data = mujoco.MjData(model)
    sites = [model.site(n).id for n in constants.FEET_SITES]
    pads = [[model.geom(g).id for g in foot] for foot in constants.FOOT_PAD_GEOMS]
    lowest = np.zeros((qpos.shape[0], 2))
    centres = np.zeros((qpos.shape[0], 2, 3))
    for i, q in enumerate(qpos):
        data.qpos[:] = q
        mujoco.mj_kinematics(model, data)
        for foot in range(2):
            centres[i, foot] = data.site_xpos[sites[foot]]
            z = np.inf
            for g in pads[foot]:
                half = model.geom_size[g, 1]
                axis = data.geom_xmat[g].reshape(3, 3)[:, 2]
                centre_z = data.geom_xpos[g, 2]
                z = min(z, centre_z - abs(axis[2]) * half - model.geom_size[g, 0])
            lowest[i, foot] = z
    return lowest, centres


def kinematic_figures(motion: Motion) -> dict[str, float]:
    """Penetration (mm), stance slip (mm/s, mean and max) and limit violations of a clip."""
    lowest, centres = feet_heights_and_centres(motion.qpos)
    lower = np.argmin(lowest, axis=1)
    rows = np.arange(len(lower))
    stance = lowest[rows, lower] < STANCE_HEIGHT
    speeds = []
    for i in range(1, len(lower)):
        foot = lower[i]
        if stance[i] and stance[i - 1] and lower[i - 1] == foot:
            step = centres[i, foot, :2] - centres[i - 1, foot, :2]
            speeds.append(float(np.linalg.norm(step)) * motion.fps)
    speeds_arr = np.array(speeds or [0.0])
    return {
        "penetration_max_mm": 1000.0 * max(0.0, float(-lowest.min())),
        "stance_slip_mean_mm_s": 1000.0 * float(speeds_arr.mean()),
        "stance_slip_max_mm_s": 1000.0 * float(speeds_arr.max()),
        "stance_fraction": float(stance.mean()),
        "joint_limit_violations": limit_violations(motion.qpos),
    }
