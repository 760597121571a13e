"""What a rollout video shows besides the robot: a checker floor, so a walk reads as motion
under a camera that tracks the pelvis, and arrows for the commanded and the actual planar
velocity, so tracking reads at a glance.

The floor texture is MuJoCo's usual grid (the one MuJoCo Menagerie and Playground scenes use:
a 2D checker with edge marks, texuniform, 5 repeats per metre) added to a copy of the model
compiled for rendering only. The training model (envs/wildrobot/xmls) is untouched, and the
render model differs from it only in its texture and material tables (tests/export/test_video.py
checks both).
"""

from __future__ import annotations

from pathlib import Path

import mujoco
import numpy as np

FLOOR_TEXTURE = "render_grid"
COMMAND_RGBA = (0.1, 0.85, 0.2, 1.0)  # green: what the policy is told
ACTUAL_RGBA = (1.0, 0.55, 0.0, 1.0)  # orange: what the pelvis does
ARROW_SECONDS = 1.0  # an arrow is the ground covered in this long at that velocity
ARROW_WIDTH = 0.02  # m (shaft radius)
ARROW_HEIGHT = 0.01  # m above the floor


def render_model(xml_path: Path, floor_geom: str) -> mujoco.MjModel:
    """The model at `xml_path` with a checker grid on `floor_geom`, for rendering only."""
    spec = mujoco.MjSpec.from_file(str(xml_path))
    spec.add_texture(
        name=FLOOR_TEXTURE,
        type=mujoco.mjtTexture.mjTEXTURE_2D,
        builtin=mujoco.mjtBuiltin.mjBUILTIN_CHECKER,
        mark=mujoco.mjtMark.mjMARK_EDGE,
        rgb1=[0.2, 0.3, 0.4],
        rgb2=[0.1, 0.2, 0.3],
        markrgb=[0.8, 0.8, 0.8],
        width=300,
        height=300,
    )
    material = spec.add_material(
        name=FLOOR_TEXTURE, texrepeat=[5, 5], texuniform=True, reflectance=0.2
    )
    material.textures[mujoco.mjtTextureRole.mjTEXROLE_RGB] = FLOOR_TEXTURE
    floor = spec.geom(floor_geom)
    if floor is None:
        raise ValueError(f"{xml_path.name} has no geom {floor_geom!r}")
    floor.material = FLOOR_TEXTURE
    floor.rgba = [1.0, 1.0, 1.0, 1.0]  # the texture's own colours
    return spec.compile()


def heading(qpos: np.ndarray) -> float:
    """Yaw (rad, about world z) of a free joint's quaternion qpos[3:7] (w, x, y, z)."""
    w, x, y, z = qpos[3:7]
    return float(np.arctan2(2.0 * (w * z + x * y), 1.0 - 2.0 * (y * y + z * z)))


def planar_velocity(qpos: np.ndarray, dt: float, window: int = 5) -> np.ndarray:
    """World-frame xy velocity [T, 2] of the root from its positions qpos [T, nq] (one per
    `dt`), a centred difference over `window` steps (clipped at the ends)."""
    xy = np.asarray(qpos)[:, :2]
    count = len(xy)
    half = max(1, window // 2)
    index = np.arange(count)
    ahead, behind = np.minimum(index + half, count - 1), np.maximum(index - half, 0)
    span = np.maximum(ahead - behind, 1) * dt
    return (xy[ahead] - xy[behind]) / span[:, None]


def command_world(qpos: np.ndarray, command: np.ndarray) -> np.ndarray:
    """The commanded (vx, vy), given in the robot's heading frame, in world xy [2]."""
    yaw = heading(qpos)
    c, s = np.cos(yaw), np.sin(yaw)
    vx, vy = float(command[0]), float(command[1])
    return np.array([c * vx - s * vy, s * vx + c * vy])


def add_arrow(scene: mujoco.MjvScene, start: np.ndarray, end: np.ndarray, rgba) -> bool:
    """Appends an arrow from `start` to `end` (world, m) to `scene`; False when the scene is
    full or the arrow has no length."""
    start, end = np.asarray(start, np.float64), np.asarray(end, np.float64)
    if scene.ngeom >= scene.maxgeom or np.linalg.norm(end - start) < 1e-4:
        return False
    geom = scene.geoms[scene.ngeom]
    mujoco.mjv_initGeom(
        geom, mujoco.mjtGeom.mjGEOM_ARROW, np.zeros(3), np.zeros(3), np.eye(3).ravel(),
        np.asarray(rgba, np.float32),
    )  # fmt: skip
    mujoco.mjv_connector(geom, mujoco.mjtGeom.mjGEOM_ARROW, ARROW_WIDTH, start, end)
    scene.ngeom += 1
    return True


def add_velocity_arrows(
    scene: mujoco.MjvScene, qpos: np.ndarray, command: np.ndarray | None, velocity: np.ndarray
) -> None:
    """The commanded (green; walk only) and actual (orange) planar velocity as arrows on the
    floor from under the pelvis, each as long as the ground it covers in ARROW_SECONDS."""
    base = np.array([qpos[0], qpos[1], ARROW_HEIGHT])
    if command is not None:
        target = command_world(qpos, command) * ARROW_SECONDS
        add_arrow(scene, base, base + np.array([*target, 0.0]), COMMAND_RGBA)
    moved = np.asarray(velocity) * ARROW_SECONDS
    add_arrow(scene, base + [0, 0, 0.002], base + np.array([*moved, 0.002]), ACTUAL_RGBA)
