"""Host-side metrics: flatten one iteration's device metrics and guard against NaN/Inf."""

from __future__ import annotations

import math
from collections.abc import Mapping

import jax
import numpy as np

from .api import NonFiniteError

# Checked in this order; the first non-finite one names the error.
GUARDED = (
    "loss/total",
    "loss/policy",
    "loss/value",
    "loss/entropy",
    "gradient_norm",
)


def to_host(device_metrics: Mapping[str, jax.Array]) -> dict[str, float]:
    """Device 0's values (metrics are reduced across devices inside the iteration)."""
    return {name: float(np.asarray(value)[0]) for name, value in device_metrics.items()}


def check_finite(iteration: int, metrics: Mapping[str, float]) -> None:
    """Raises NonFiniteError naming the first non-finite loss, gradient norm or params."""
    for name in GUARDED:
        if not math.isfinite(metrics[name]):
            raise NonFiniteError(iteration, name)
    if metrics["params_finite"] != 1.0:
        raise NonFiniteError(iteration, "params")


class EpisodeTracker:
    """Keeps the latest episode statistics: many iterations end no episode at all."""

    def __init__(self) -> None:
        self._latest: dict[str, float] = {}

    def update(self, metrics: Mapping[str, float]) -> dict[str, float]:
        """Replaces this iteration's episode values with the latest ones seen, when none ended."""
        episode_keys = [k for k in metrics if k.startswith(("episode/", "reward/"))]
        if metrics.get("episode/count", 0.0) > 0:
            self._latest = {k: metrics[k] for k in episode_keys if k != "episode/count"}
        out = {k: v for k, v in metrics.items() if k not in episode_keys}
        out["episode/count"] = metrics.get("episode/count", 0.0)
        out.update(self._latest)
        return out
