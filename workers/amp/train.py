"""train_amp: PPO's training loop with AMP's extension (workers/amp/extension.py).

Same contract as train_ppo (hooks, stop requests, checkpoints, exact resume, NaN guard, pmap):
the AMP state lives in TrainingState.extension, so everything train_ppo does for a PPO run it
does for an AMP run.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from wildrobot.specs import AmpSpec

from ..training.api import TrainHooks, TrainResult
from ..training.ppo import train_ppo
from ..training.trainer import Trainer, make_trainer
from .extension import AmpExtension


def make_amp_trainer(spec: AmpSpec, motions: Sequence[Any]) -> Trainer:
    return make_trainer(spec, make_extension=lambda env: AmpExtension(spec, env, motions))


def train_amp(
    spec: AmpSpec,
    run_dir: Path,
    hooks: TrainHooks,
    motions: Sequence[Any],
    resume_from: Path | None = None,
) -> TrainResult:
    """motions: the reference clips (envs/motions/format.Motion), already loaded and validated."""
    if not isinstance(spec, AmpSpec):
        raise TypeError(f"train_amp needs an AmpSpec, got {type(spec).__name__}")
    if not motions:
        raise ValueError("motions: at least one reference clip")
    trainer = make_amp_trainer(spec, motions)
    return train_ppo(spec, run_dir, hooks, resume_from, trainer=trainer)
