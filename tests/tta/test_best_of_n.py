"""best_of_n buys back falls under pushes harder than training's: test-time compute that helps.

The session's trained stand policy (tests/trained_stand.py) under the push shift at severity 1
(every push at the top of the training range, 8 N) for 400 control steps on 64 episodes:
deterministic (`none`, which is best_of_n with N = 1) against N = 4 candidates scored by a
6-step lookahead on the nominal model. Measured here (docs/tta.md, 32 episodes): 22% falls
against 3%. The bar: none falls in at least 10% of the episodes, best_of_n in at most half as
many, and the difference is more than chance (two-proportion z > 2.3, one-sided p < 0.01).
~4 minutes on a 2-core CPU (the lookahead compiles slowly).
"""

from __future__ import annotations

import math

import pytest

from tests.trained_stand import TrainedStand
from wildrobot.workers.tta.evaluate import TtaSettings, evaluate_checkpoint

pytestmark = pytest.mark.slow


@pytest.mark.timeout(1800)
def test_best_of_n_reduces_falls_under_pushes(trained_stand: TrainedStand) -> None:
    settings = TtaSettings(
        shifts=("push",),
        severities=(1,),
        methods=("none", "best_of_n"),
        episodes=64,
        episode_length=400,
        best_of_n_samples=4,
        lookahead_steps=6,
    )
    report = evaluate_checkpoint(trained_stand.checkpoint_dir, settings)
    none = report["methods"]["none"]["cells"]["push/1"]
    best = report["methods"]["best_of_n"]["cells"]["push/1"]
    n = none["episodes"]
    p1, p2 = none["fall_rate"], best["fall_rate"]
    pooled = (p1 + p2) / 2
    z = (p1 - p2) / math.sqrt(max(2 * pooled * (1 - pooled) / n, 1e-12))
    print(f"push/1 falls: none {p1:.3f}, best_of_n {p2:.3f} over {n} episodes; z {z:.2f}")
    assert p1 >= 0.10, none  # the shift hurts the unadapted policy
    assert p2 <= p1 / 2 and z > 2.3, (none, best)
    # Both stay up on the clean env.
    assert report["methods"]["best_of_n"]["cells"]["clean"]["fall_rate"] <= 0.05
    cost = report["methods"]["best_of_n"]["cost_per_control_step"]
    assert cost["lookahead_sim_steps"] == 4 * 6 * 5 and cost["value_forwards"] == 4
