"""best_of_n_oracle on a trained policy under pushes harder than training's: measured, paired.

The session's trained stand policy (tests/trained_stand.py, its last checkpoint) under the push
shift at severity 1 (every push at the top of the training range, 8 N) for 400 control steps on
32 episodes: deterministic (`none`, which is best_of_n with N = 1) against N = 4 candidates scored
by a 6-step lookahead on the nominal model started from the true simulator state
(`best_of_n_oracle`), analysed paired, episode for episode. The figures go to the CI log (the
`figures` section) on every run.

Whether the planner helps is not asserted, because it depends on the policy. On two earlier
sessions' policies it removed most falls (22% -> 3%; 26.6% -> 0%, docs/tta.md). On the policy of
the clean-clone CI run of 2026-12-08 it did not (64 episodes then): last checkpoint 31.2% ->
46.9% (10 episodes only none fell, 20 only the planner; McNemar p 0.099), its `best` checkpoint
23.4% -> 29.7% (10/14, p 0.54). Asserted: the shift hurts the unadapted policy (at least 10% falls,
more than on the clean env), and the paired analysis accounts for every episode (its difference
is the discordant pairs' and lies inside its own interval); the planner's cost per control step.
Measurements with the power to compare methods: bench/tta_paired.py (docs/tta.md).
~2 minutes on a 2-core CPU (the lookahead compiles slowly).
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tests.trained_stand import TrainedStand
from wildrobot.workers.tta.evaluate import TtaSettings, evaluate_checkpoint

pytestmark = pytest.mark.slow

EPISODES = 32


@pytest.mark.timeout(1800)
def test_best_of_n_oracle_under_pushes_is_measured_paired(
    trained_stand: TrainedStand, record_property: Callable[[str, object], None]
) -> None:
    settings = TtaSettings(
        shifts=("push",),
        severities=(1,),
        methods=("none", "best_of_n_oracle"),
        episodes=EPISODES,
        episode_length=400,
        seeds=(0,),
        best_of_n_samples=4,
        lookahead_steps=6,
    )
    report = evaluate_checkpoint(trained_stand.checkpoint_dir, settings)
    none = report["methods"]["none"]["cells"]
    best = report["methods"]["best_of_n_oracle"]["cells"]
    paired = best["push/1"]["paired_vs_none"]
    record_property(
        "figures",
        f"push/1 falls: none {none['push/1']['fall_rate']:.3f}, best_of_n_oracle "
        f"{best['push/1']['fall_rate']:.3f}; clean: none {none['clean']['fall_rate']:.3f}, "
        f"best_of_n_oracle {best['clean']['fall_rate']:.3f}; paired {paired}",
    )
    # The shift is a real test: the policy that stands on the clean env falls under it.
    assert none["push/1"]["fall_rate"] >= 0.10, none["push/1"]
    assert none["push/1"]["fall_rate"] > none["clean"]["fall_rate"], none
    # Paired, episode for episode: the fall-rate difference is the discordant pairs'
    # (only the method fell minus only none fell), inside its own bootstrap interval.
    assert paired["pairs"] == EPISODES, paired
    discordant = (paired["only_method_fell"] - paired["only_none_fell"]) / EPISODES
    assert paired["fall_rate_diff"] == pytest.approx(discordant), paired
    assert paired["fall_rate_diff"] == pytest.approx(
        best["push/1"]["fall_rate"] - none["push/1"]["fall_rate"]
    )
    low, high = paired["fall_rate_diff_ci95"]
    assert low <= paired["fall_rate_diff"] <= high, paired
    assert 0.0 <= paired["mcnemar_p"] <= 1.0, paired
    cost = report["methods"]["best_of_n_oracle"]["cost_per_control_step"]
    assert cost["lookahead_sim_steps"] == 4 * 6 * 5 and cost["value_forwards"] == 4
