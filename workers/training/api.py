"""The contract between the job service (workers/) and the trainer (workers/training/).

The service calls `train_ppo(spec, run_dir, hooks, resume_from=...)` (implemented in
wildrobot.workers.training.ppo); progress leaves the trainer only through `hooks`, called on the
host between jitted iterations, never inside them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol


class TrainHooks(Protocol):
    def on_metrics(self, step: int, metrics: Mapping[str, float]) -> None:
        """After every iteration: env steps done so far and flat named scalars."""

    def on_checkpoint(self, step: int, path: Path, best: bool = False) -> None:
        """After a checkpoint directory is completely written (safe to resume from); `best`:
        it holds the run's new best evaluation (workers.training.best), the job's `best`."""

    def should_stop(self) -> bool:
        """Polled between iterations; True makes the trainer checkpoint and return early."""


@dataclass(frozen=True)
class TrainResult:
    final_step: int  # env steps done in total (across resumes)
    iterations: int  # training iterations done in total (across resumes)
    stopped: bool  # True when should_stop() ended the run before num_timesteps
    checkpoint_dir: Path | None  # the last checkpoint written
    best_checkpoint_dir: Path | None = None  # the best evaluation's checkpoint (eval_every > 0)


class NonFiniteError(RuntimeError):
    """Training produced NaN/Inf; the message names the iteration and the first bad quantity."""

    def __init__(self, iteration: int, quantity: str) -> None:
        super().__init__(f"non-finite {quantity} at iteration {iteration}")
        self.iteration = iteration
        self.quantity = quantity


def checkpoint_path(run_dir: Path, step: int) -> Path:
    """Where the checkpoint at env step `step` lives: <run_dir>/checkpoints/<step:012d>."""
    return run_dir / "checkpoints" / f"{step:012d}"
