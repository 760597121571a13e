"""Write the shipped reference clips and their manifest: python -m wildrobot.envs.motions.generate.

For each clip: plan the gait (gait.py), solve IK, realize it in MuJoCo with the pelvis harness
(realize.py), and keep `cycles` whole gait cycles from the middle of the walk (past the start-up
steps, before the stopping step) as the clip, recorded at the control rate. A clip is written only
if its help force over the kept frames is within the bounds (realize.HELP_*_BOUND); the manifest
lists every clip tried, with its figures and whether it was kept. Deterministic: no randomness.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from .format import Motion, save_motion
from .gait import GaitConfig, solve_trajectory
from .realize import (
    HELP_MAX_BOUND,
    HELP_MEAN_BOUND,
    Realization,
    RealizeConfig,
    passes,
    realize,
)
from .validity import (
    PENETRATION_BOUND_MM,
    SLIP_MAX_BOUND_MM_S,
    SLIP_MEAN_BOUND_MM_S,
    kinematic_figures,
)


@dataclass(frozen=True)
class ClipSpec:
    """A clip to generate: its gait, which steps to keep (first_step, num_steps kept) and weight."""

    name: str
    gait: GaitConfig
    first_step: int
    kept_steps: int
    loop: str = "wrap"
    weight: float = 1.0


def _walk(speed: float, zmp_roll: float, yaw_rate: float = 0.0) -> GaitConfig:
    return GaitConfig(
        speed=speed,
        yaw_rate=yaw_rate,
        step_time=0.5,
        double_support=0.1,
        zmp_roll=zmp_roll,
        num_steps=12,
    )


def default_specs() -> list[ClipSpec]:
    """The shipped clips. Walks keep steps 4..9 (3 gait cycles, 3 s); stand keeps 2 s."""
    return [
        ClipSpec("stand", GaitConfig(speed=0.0, num_steps=0, stand_time=1.5), 0, 0),
        ClipSpec("walk_0.1", _walk(0.1, 0.06), 4, 6),
        ClipSpec("walk_0.2", _walk(0.2, 0.09), 4, 6),
        ClipSpec("walk_0.3", _walk(0.3, 0.12), 4, 6),
        ClipSpec("turn_left", _walk(0.1, 0.06, yaw_rate=0.2), 4, 6),
    ]


def kept_frames(spec: ClipSpec) -> tuple[int, int]:
    """[start, stop) control frames of the rollout kept as the clip (stop inclusive of the frame
    one cycle after the start, so a "wrap" clip's last frame repeats its first pose)."""
    g = spec.gait
    if spec.kept_steps == 0:  # standing: the middle 2 s of the still phase
        start = int(round(0.5 / g.dt))
        return start, start + int(round(2.0 / g.dt)) + 1
    start = int(round((g.stand_time + spec.first_step * g.step_time) / g.dt))
    return start, start + int(round(spec.kept_steps * g.step_time / g.dt)) + 1


def make_clip(spec: ClipSpec, realize_cfg: RealizeConfig) -> tuple[Motion, Realization, dict]:
    """Plan, realize and cut one clip; returns it, its rollout and its manifest entry."""
    trajectory = solve_trajectory(spec.gait)
    rollout = realize(trajectory.qpos, trajectory.plan.feet, realize_cfg)
    start, stop = kept_frames(spec)
    qpos = rollout.qpos[start:stop].copy()
    qpos[:, 3:7] /= np.linalg.norm(qpos[:, 3:7], axis=1, keepdims=True)
    motion = Motion(
        name=spec.name, fps=1.0 / spec.gait.dt, qpos=qpos, loop=spec.loop, weight=spec.weight
    )
    figures = {k: round(v, 4) for k, v in rollout.figures(start + 1, stop).items()}
    kinematic = {k: round(v, 4) for k, v in kinematic_figures(motion).items()}
    entry = {
        "file": f"{spec.name}.npz",
        "frames": motion.num_frames,
        "duration_s": round(motion.duration, 4),
        "loop": spec.loop,
        "weight": spec.weight,
        "kept": passes(figures),
        "rollout_frames": [start, stop],
        "ik_max_foot_error_mm": round(1000.0 * trajectory.max_foot_error, 3),
        "loop_gap_joint_max_rad": round(float(np.abs(qpos[-1, 7:] - qpos[0, 7:]).max()), 4),
        "sim": figures,
        "kinematic": kinematic,
        "gait": asdict(spec.gait),
    }
    return motion, rollout, entry


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "clips")
    parser.add_argument("--only", nargs="*", help="names of clips to generate (default: all)")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    realize_cfg = RealizeConfig()
    manifest_path = args.out / "manifest.json"
    clips: dict[str, dict] = {}
    if args.only and manifest_path.exists():
        clips = json.loads(manifest_path.read_text())["clips"]
    for spec in default_specs():
        if args.only and spec.name not in args.only:
            continue
        motion, _, entry = make_clip(spec, realize_cfg)
        clips[spec.name] = entry
        path = args.out / entry["file"]
        if entry["kept"]:
            save_motion(path, motion)
        elif path.exists():
            path.unlink()
        print(f"{spec.name}: kept={entry['kept']} {entry['sim']} {entry['kinematic']}", flush=True)
    manifest = {
        "bounds": {
            "help_force_mean_fraction_of_mg": HELP_MEAN_BOUND,
            "help_force_max_fraction_of_mg": HELP_MAX_BOUND,
            "penetration_max_mm": PENETRATION_BOUND_MM,
            "stance_slip_mean_mm_s": SLIP_MEAN_BOUND_MM_S,
            "stance_slip_max_mm_s": SLIP_MAX_BOUND_MM_S,
            "joint_limit_violations": 0,
        },
        "realize": asdict(realize_cfg),
        "clips": clips,
    }
    manifest_path.write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")


if __name__ == "__main__":
    main()
