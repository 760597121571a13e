"""The protocol's bookkeeping: cell order, continual carry-over, statistics."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import pytest

from wildrobot.specs import TtaEvalSpec
from wildrobot.workers.tta.adapters import make_adapter
from wildrobot.workers.tta.evaluate import (
    TtaSettings,
    _carry_over,
    _fresh,
    cells,
    summarize,
    wilson,
)


def test_cells_in_protocol_order():
    episodic = TtaSettings(shifts=("kp", "push"), severities=(1, 3))
    assert cells(episodic) == [("clean", 0), ("kp", 1), ("kp", 3), ("push", 1), ("push", 3)]
    continual = TtaSettings(shifts=("kp",), severities=(2,), mode="continual")
    # Clean again at the end: what continual adaptation did to clean performance (forgetting).
    assert cells(continual) == [("clean", 0), ("kp", 2), ("clean_after", 0)]
    spec = TtaEvalSpec(
        checkpoint_job_id="a" * 32, shifts=("kp",), severities=(2,), mode="continual"
    )
    assert spec.num_cells == len(cells(continual))


def test_continual_carries_the_adapter_except_after_a_fall(plain_source):
    adapter = make_adapter("obs_norm", plain_source, learning_rate=0.1)
    start = _fresh(adapter, plain_source, 3)
    moved = start.replace(mean=start.mean + 1.0)
    carried = _carry_over(adapter, plain_source, moved, jnp.array([False, True, False]))
    np.testing.assert_array_equal(carried.mean[0], moved.mean[0])
    np.testing.assert_array_equal(carried.mean[1], plain_source.params.normalizer.mean)  # reset
    np.testing.assert_array_equal(carried.mean[2], moved.mean[2])


def test_summary_statistics():
    runs = [
        {
            "fell": np.array([1.0, 0.0, 0.0, 0.0]),
            "steps_alive": np.array([10.0, 50, 50, 50]),
            "return": np.array([1.0, 2, 3, 4]),
            "velocity_tracking_error": np.zeros(4),
        },
        {
            "fell": np.array([1.0, 1.0, 0.0, 0.0]),
            "steps_alive": np.array([5.0, 5, 50, 50]),
            "return": np.array([1.0, 2, 3, 4]),
            "velocity_tracking_error": np.zeros(4),
        },
    ]
    out = summarize(runs, 50)
    assert out["episodes"] == 8 and out["fall_rate"] == pytest.approx(3 / 8)
    assert out["fall_rate_per_seed"] == [0.25, 0.5]
    assert out["steps_to_fall"] == pytest.approx(np.mean([10, 50, 50, 50, 5, 5, 50, 50]))
    low, high = out["fall_rate_ci95"]
    assert low < 3 / 8 < high
    # Wilson's interval: 0 of 32 is not "certainly 0".
    assert wilson(0.0, 32) == (0.0, pytest.approx(0.1072, abs=1e-3))


def test_spec_bounds_name_the_field():
    with pytest.raises(ValueError, match="methods: must include 'none'"):
        TtaEvalSpec(checkpoint_job_id="a" * 32, methods=("tent",))
    with pytest.raises(ValueError, match="shifts: 'kp' given twice"):
        TtaEvalSpec(checkpoint_job_id="a" * 32, shifts=("kp", "kp"))
    with pytest.raises(ValueError, match="simulated control steps, limit"):
        TtaEvalSpec(checkpoint_job_id="a" * 32, episodes=1024, episode_length=5000, seeds=(1, 2, 3))
    with pytest.raises(ValueError, match="episodes"):
        TtaEvalSpec(checkpoint_job_id="a" * 32, episodes=0)
