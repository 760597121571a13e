"""How much a trained policy moves like a reference clip: the pose-tracking distance.

    report = pose_tracking(checkpoint_dir, motions, episodes=16, steps=300)

The checkpoint's deterministic policy runs on its task's unrandomized env (pushes and sensor
noise as trained); every control step's state goes through the same feature function the
discriminator uses (workers/amp/features.py). For each step, the pose distance is the RMS over
the 17 joints of (policy joint angles - clip joint angles) at the NEAREST frame of the clips
(every frame at the control rate), in rad; the report gives its mean over the steps the robot was
up, with the same figure for the clips' own frames against themselves as 0 and, as context, how
much the policy's joints move (std over time, averaged over joints) against how much the clips'
do. A policy that stands still in one pose far from the clip's scores its distance every step;
one that moves through the clip's poses scores low.

The pose distance alone does not tell a statue from a gait (a statue near the clip's mean pose
scores well), so the report also has the gait's outcome metrics against the first clip
(workers/amp/style_outcomes.py: stride frequency, joint amplitudes per group, foot clearance and
the phase-aligned cycle distance), averaged over the episodes that stayed up at least
MIN_OUTCOME_STEPS steps.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

MIN_OUTCOME_STEPS = 50


def clip_frames(env: Any, motions: Sequence[Any], first_only: bool = False) -> np.ndarray:
    """Features of every clip frame (or the first clip's) at the env's control step: [frames, F]."""
    from wildrobot.envs.motions.library import MotionLibrary

    from .reference import frame_features

    library = MotionLibrary(list(motions))
    out = []
    for index, motion in enumerate(library.motions):
        times = np.arange(0.0, motion.duration, env.dt)
        out.append(
            frame_features(env, library.qpos_at(index, times), library.qvel_at(index, times))
        )
        if first_only:
            break
    return np.concatenate(out)


def pose_distances(policy_jpos: np.ndarray, clip_jpos: np.ndarray) -> np.ndarray:
    """RMS joint distance of each policy frame [N, J] to its nearest clip frame [M, J] -> [N]."""
    sq = np.mean(np.square(policy_jpos[:, None, :] - clip_jpos[None, :, :]), axis=-1)
    return np.sqrt(sq.min(axis=1))


def pose_tracking(
    checkpoint_dir: Path,
    motions: Sequence[Any],
    episodes: int = 16,
    steps: int = 300,
    seed: int = 0,
) -> dict[str, float]:
    from ..training import checkpoint as ckpt
    from ..training.ppo import load_policy
    from ..training.trainer import make_base_env
    from .features import feature_names, make_feature_fn

    spec = ckpt.read_spec(Path(checkpoint_dir))
    env = make_base_env(spec.task, spec.env_overrides)
    policy = load_policy(Path(checkpoint_dir))
    feature_fn = make_feature_fn(env)
    names = feature_names(env)
    jcols = np.array([i for i, n in enumerate(names) if n.startswith("jpos_")])

    @jax.jit
    def rollout(key):
        state = jax.vmap(env.reset)(jax.random.split(key, episodes))

        def step(carry, _):
            state, alive = carry
            state = jax.vmap(env.step)(state, policy(state.obs))
            alive = alive * (1.0 - state.done)
            return (state, alive), (jax.vmap(feature_fn)(state.pipeline_state), alive)

        _, (feats, alive) = jax.lax.scan(step, (state, jnp.ones(episodes)), None, length=steps)
        return feats, alive

    feats, alive = jax.device_get(rollout(jax.random.PRNGKey(seed)))  # [T, E, F], [T, E]
    up = alive > 0
    clip = clip_frames(env, motions)
    distances = pose_distances(feats[up][:, jcols], clip[:, jcols])
    # Joint motion: std over time per episode and joint (while up), averaged.
    policy_motion = float(
        np.mean([feats[up[:, e], e][:, jcols].std(axis=0).mean() for e in range(episodes)])
    )
    outcomes = episode_outcomes(
        feats, up, clip_frames(env, motions, first_only=True), names, env.dt
    )
    return {
        **outcomes,
        "pose_distance": float(distances.mean()),
        "pose_distance_median": float(np.median(distances)),
        "fall_rate": float(np.mean(alive[-1] == 0)),
        "joint_motion_std": policy_motion,
        "clip_joint_motion_std": float(clip[:, jcols].std(axis=0).mean()),
        "frames": int(up.sum()),
    }


def episode_outcomes(
    feats: np.ndarray, up: np.ndarray, clip: np.ndarray, names: Sequence[str], dt: float
) -> dict[str, float]:
    """style_outcomes per episode (its frames while up, [T, E, F] with up [T, E]), averaged over
    the episodes up for at least MIN_OUTCOME_STEPS steps; `outcome_episodes` counts them."""
    from .style_outcomes import style_outcomes

    per_episode = [
        style_outcomes(feats[up[:, e], e], clip, names, dt)
        for e in range(feats.shape[1])
        if up[:, e].sum() >= MIN_OUTCOME_STEPS
    ]
    if not per_episode:
        return {"outcome_episodes": 0}
    out = {key: float(np.mean([o[key] for o in per_episode])) for key in per_episode[0]}
    out["stride_detected"] = float(np.mean([o["stride_hz"] > 0 for o in per_episode]))
    out["outcome_episodes"] = len(per_episode)
    return out
