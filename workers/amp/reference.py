"""The discriminator's "real" data: windows of reference-clip frames, as features.

Each sampled frame's (qpos, qvel) is written into an mjx.Data of the env's model and passed to
the very feature fn the policy side uses (`features.make_feature_fn`), so the two sides share
every definition. Frames are featurized jitted and vmapped, in fixed-size batches (one compile).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
from brax.envs.base import Env
from mujoco import mjx

from wildrobot.envs.motions.format import load_motion
from wildrobot.envs.motions.library import MotionLibrary

from . import features

CLIPS_DIR = Path(__file__).resolve().parents[2] / "envs" / "motions" / "clips"
# Frames featurized per compiled call: big enough to amortize dispatch, small enough for memory.
FRAME_BATCH = 16384

FramesFn = Callable[[jax.Array, jax.Array], jax.Array]


def load_library(names_or_paths: Sequence[str | Path]) -> MotionLibrary:
    """A MotionLibrary from shipped clip names ("walk_0.2": envs/motions/clips/walk_0.2.npz)
    and/or paths to `.npz` clips."""
    motions = []
    for item in names_or_paths:
        path = Path(item)
        if path.suffix != ".npz":
            path = CLIPS_DIR / f"{item}.npz"
        if not path.is_file():
            shipped = sorted(p.stem for p in CLIPS_DIR.glob("*.npz"))
            raise FileNotFoundError(f"no clip {str(item)!r} (shipped clips: {shipped})")
        motions.append(load_motion(path))
    return MotionLibrary(motions)


@functools.lru_cache(maxsize=8)
def make_frames_fn(env: Env) -> FramesFn:
    """Jitted (qpos [N, 24], qvel [N, 23]) -> features [N, F] for the env's model."""
    feature_fn = features.make_feature_fn(env)
    template = mjx.make_data(env.unwrapped.sys)

    def one(qpos: jax.Array, qvel: jax.Array) -> jax.Array:
        return feature_fn(template.replace(qpos=qpos, qvel=qvel))

    return jax.jit(jax.vmap(one))


def frame_features(env: Env, qpos: np.ndarray, qvel: np.ndarray) -> np.ndarray:
    """Features of frames: qpos [..., 24], qvel [..., 23] -> [..., F] (float32, numpy).

    Runs in batches of FRAME_BATCH frames, the last one padded, so every call reuses one compile.
    """
    frames_fn = make_frames_fn(env)
    lead = qpos.shape[:-1]
    qpos = np.asarray(qpos, np.float32).reshape(-1, qpos.shape[-1])
    qvel = np.asarray(qvel, np.float32).reshape(-1, qvel.shape[-1])
    total = qpos.shape[0]
    batch = min(FRAME_BATCH, max(total, 1))
    out = []
    for start in range(0, total, batch):
        q, v = qpos[start : start + batch], qvel[start : start + batch]
        pad = batch - q.shape[0]
        if pad:
            q = np.concatenate([q, np.repeat(q[-1:], pad, axis=0)])
            v = np.concatenate([v, np.repeat(v[-1:], pad, axis=0)])
        out.append(np.asarray(frames_fn(jnp.asarray(q), jnp.asarray(v)))[: batch - pad])
    flat = np.concatenate(out) if out else np.zeros((0, features.num_features(env)), np.float32)
    return flat.reshape(*lead, flat.shape[-1])


def reference_windows(
    env: Env, library: MotionLibrary, num: int, window: int, dt: float, rng: np.random.Generator
) -> np.ndarray:
    """`num` windows of `window` frames spaced `dt` (the env's ctrl_dt) -> [num, window * F].

    A window's frames are concatenated in time order (oldest first), the layout
    `AmpFeatureWrapper` gives `state.info["amp_window"]`. Windows come from
    `library.sample_windows(rng, num, window, dt)`, so a generator seeded alike draws the same
    clips and start times.
    """
    sampled = library.sample_windows(rng, num, window, dt)
    feats = frame_features(env, sampled.qpos, sampled.qvel)  # [num, window, F]
    return feats.reshape(num, window * feats.shape[-1])
