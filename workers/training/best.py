"""Which periodic evaluation is the best so far: the rule that picks a run's `best` checkpoint.

The metric (README.md, "Training engine"): fewest evaluation falls (`eval/fall_rate`), ties
broken by the lower velocity tracking error (`eval/velocity_tracking_error`, tasks with a
velocity command), then by the longer mean episode length (`eval/mean_episode_length`). An exact tie keeps the
earlier checkpoint. The best so far is recorded in every checkpoint's meta.json, so a resumed
run keeps it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True)
class BestScore:
    step: int  # env steps of the evaluated (and checkpointed) state
    fall_rate: float
    tracking_error: float  # 0 for tasks without a velocity command
    episode_length: float
    path: str = ""  # the best checkpoint's directory, relative to the checkpoint recording it

    def key(self) -> tuple[float, float, float]:
        """Larger is better."""
        return (-self.fall_rate, -self.tracking_error, self.episode_length)

    def to_json_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json_dict(cls, d: Mapping[str, Any]) -> BestScore:
        return cls(
            step=int(d["step"]),
            fall_rate=float(d["fall_rate"]),
            tracking_error=float(d["tracking_error"]),
            episode_length=float(d["episode_length"]),
            path=str(d.get("path", "")),
        )


def score(step: int, report: Mapping[str, float]) -> BestScore | None:
    """The score of one evaluation's metrics (`eval/...` names); None if any part is not finite."""
    found = BestScore(
        step=step,
        fall_rate=float(report["eval/fall_rate"]),
        tracking_error=float(report.get("eval/velocity_tracking_error", 0.0)),
        episode_length=float(report["eval/mean_episode_length"]),
    )
    return found if all(math.isfinite(v) for v in found.key()) else None


def is_better(candidate: BestScore | None, best: BestScore | None) -> bool:
    """True when `candidate` becomes the new best (strictly better; the first one always)."""
    if candidate is None:
        return False
    return best is None or candidate.key() > best.key()
