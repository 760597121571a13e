"""Paired statistics of a method against `none`, checked against hand-worked numbers; and the
report's paired table. Plain numpy, milliseconds."""

from __future__ import annotations

import numpy as np
import pytest

from wildrobot.tta_table import paired_table, table
from wildrobot.workers.tta.paired import (
    bootstrap_mean_interval,
    excludes_zero,
    mcnemar_exact,
    paired_comparison,
)


def test_mcnemar_exact_by_hand():
    # b = 5 discordant pairs all one way: 2 * (1/2)^5.
    assert mcnemar_exact(5, 0) == pytest.approx(2 / 32)
    assert mcnemar_exact(0, 5) == pytest.approx(2 / 32)
    # b = 1, c = 6: 2 * (C(7,0) + C(7,1)) / 2^7 = 2 * 8 / 128.
    assert mcnemar_exact(1, 6) == pytest.approx(0.125)
    # b = 2, c = 10: 2 * (1 + 12 + 66) / 4096.
    assert mcnemar_exact(2, 10) == pytest.approx(158 / 4096)
    # Balanced discordance is no evidence; no discordant pair at all neither.
    assert mcnemar_exact(3, 3) == 1.0
    assert mcnemar_exact(0, 0) == 1.0


def test_bootstrap_interval_by_hand():
    # Constant differences: every resample has the same mean.
    assert bootstrap_mean_interval(np.full(7, 2.5)) == (2.5, 2.5)
    # Two pairs, differences 0 and 1: a resample's mean is 0, 1/2 or 1 with probabilities
    # 1/4, 1/2, 1/4, so the 2.5th and 97.5th percentiles are 0 and 1.
    assert bootstrap_mean_interval(np.array([0.0, 1.0])) == (0.0, 1.0)
    # Symmetric around its mean, and inside the range of the data.
    low, high = bootstrap_mean_interval(np.arange(-10.0, 11.0))
    assert -10 < low < 0 < high < 10 and low == pytest.approx(-high, abs=0.5)


def test_paired_comparison_counts_and_pairs():
    none = {"fell": np.array([1, 1, 1, 0, 0, 1]), "return": np.arange(6) * 100.0}
    method = {"fell": np.array([0, 0, 1, 0, 1, 1]), "return": np.arange(6) * 100.0 + 3.0}
    out = paired_comparison(method, none)
    assert out["pairs"] == 6
    assert (out["only_none_fell"], out["only_method_fell"]) == (2, 1)
    assert out["mcnemar_p"] == pytest.approx(1.0)  # 2 * (1 + 3) / 8 > 1
    assert out["fall_rate_diff"] == pytest.approx(-1 / 6)
    # Returns spread over 500 but the method always 3 higher: paired, the interval is [3, 3];
    # an unpaired comparison of the two means could not tell them apart.
    assert out["return_diff"] == pytest.approx(3.0)
    assert out["return_diff_ci95"] == pytest.approx([3.0, 3.0])
    assert excludes_zero(out["return_diff_ci95"])
    assert not excludes_zero(out["fall_rate_diff_ci95"])
    with pytest.raises(ValueError, match="unpaired"):
        paired_comparison({"fell": np.zeros(3), "return": np.zeros(3)}, none)


def _cell(fall_rate, paired=None, **extra):
    cell = {"episodes": 6, "fall_rate": fall_rate, "fall_rate_ci95": [0.0, 1.0], **extra}
    if paired is not None:
        cell["paired_vs_none"] = paired
    return cell


def test_report_prints_the_paired_figures():
    none = {"fell": np.array([1, 1, 1, 1, 1, 0]), "return": np.arange(6.0)}
    tent = {"fell": np.zeros(6), "return": np.arange(6.0) + 1.0}
    paired = paired_comparison(tent, none)
    cost = {"policy_forwards": 1.0}
    report = {
        "settings": {
            "shifts": ["kp"],
            "severities": [1],
            "methods": ["none", "tent"],
            "seeds": [0],
        },
        "methods": {
            "none": {
                "cost_per_control_step": cost,
                "cells": {"clean": _cell(0.0), "kp/1": _cell(5 / 6)},
            },
            "tent": {
                "inputs": ["observation"],
                "cost_per_control_step": cost,
                "cells": {
                    "clean": _cell(0.0, paired_comparison(none | {"fell": np.zeros(6)}, none)),
                    "kp/1": _cell(
                        0.0, paired, **{"count/resets": 4, "count/resets_per_episode": 0.67}
                    ),
                },
            },
        },
    }
    text = paired_table(report)
    assert "tent - none (inputs: observation)" in text
    row = next(line for line in text.splitlines() if line.strip().startswith("kp/1"))
    # 5 of 6 only-none falls: McNemar p = 2 / 2^5; return +1 on every pair; tent's resets.
    assert "-0.83" in row and "5/0" in row and "0.062" in row and "+1.0 [+1.0, +1.0]*" in row
    assert "resets 4" in row
    assert text in table(report)
