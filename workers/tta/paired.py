"""Paired comparisons of a method against `none` in one cell.

Every method meets the same episodes (the same per-cell keys: initial state, shift draw, pushes,
sensor noise), so episode i of a method and episode i of `none` are a pair. Falls: McNemar's exact
test, a two-sided binomial test on the discordant pairs (b: only `none` fell, c: only the method
fell; under the null each discordant pair goes either way with probability 1/2). Fall rate and
return: the mean paired difference (method minus none) with a percentile bootstrap interval over
resampled pairs (the same resampled indices for both).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

BOOTSTRAP_RESAMPLES = 2000


def mcnemar_exact(b: int, c: int) -> float:
    """Two-sided exact McNemar p-value: 2 P(X <= min(b, c)), X ~ Binomial(b + c, 1/2), at most 1
    (1 when there is no discordant pair)."""
    n = b + c
    if n == 0:
        return 1.0
    k = min(b, c)
    tail = sum(math.comb(n, i) for i in range(k + 1)) / 2.0**n
    return min(1.0, 2.0 * tail)


def bootstrap_mean_interval(
    differences: np.ndarray, resamples: int = BOOTSTRAP_RESAMPLES, seed: int = 0
) -> tuple[float, float]:
    """95% percentile bootstrap interval of the mean of paired differences [n]."""
    indices = _resample_indices(len(differences), resamples, seed)
    return _percentiles(np.asarray(differences, dtype=np.float64)[indices].mean(axis=1))


def paired_comparison(
    method: dict[str, np.ndarray],
    none: dict[str, np.ndarray],
    resamples: int = BOOTSTRAP_RESAMPLES,
    seed: int = 0,
) -> dict[str, Any]:
    """`method` against `none` over the same episodes: each a dict with per-episode arrays
    `fell` (0/1) and `return`, episode i of one paired with episode i of the other."""
    fell_m = np.asarray(method["fell"]) > 0
    fell_n = np.asarray(none["fell"]) > 0
    if fell_m.shape != fell_n.shape:
        raise ValueError(f"unpaired: {fell_m.shape} episodes against {fell_n.shape}")
    b = int(np.sum(fell_n & ~fell_m))  # only none fell
    c = int(np.sum(fell_m & ~fell_n))  # only the method fell
    fall_diff = fell_m.astype(np.float64) - fell_n.astype(np.float64)
    return_diff = np.asarray(method["return"], np.float64) - np.asarray(none["return"], np.float64)
    indices = _resample_indices(len(fall_diff), resamples, seed)
    return {
        "pairs": len(fall_diff),
        "only_none_fell": b,
        "only_method_fell": c,
        "mcnemar_p": mcnemar_exact(b, c),
        "fall_rate_diff": float(fall_diff.mean()),
        "fall_rate_diff_ci95": list(_percentiles(fall_diff[indices].mean(axis=1))),
        "return_diff": float(return_diff.mean()),
        "return_diff_ci95": list(_percentiles(return_diff[indices].mean(axis=1))),
    }


def excludes_zero(interval: list[float] | tuple[float, float]) -> bool:
    low, high = interval
    return low > 0.0 or high < 0.0


def _resample_indices(n: int, resamples: int, seed: int) -> np.ndarray:
    if n < 1:
        raise ValueError("a paired bootstrap needs at least one pair")
    return np.random.default_rng(seed).integers(0, n, size=(resamples, n))


def _percentiles(means: np.ndarray) -> tuple[float, float]:
    low, high = np.percentile(means, [2.5, 97.5])
    return float(low), float(high)
