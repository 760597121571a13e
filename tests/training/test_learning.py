"""Slow: PPO on WildRobotStand learns to stand where a statue falls (issue 10's bar).

Budget (a 2-core CPU steps MJX at only about ten thousand control steps/s): the session's
`trained_stand` run (tests/trained_stand.py: the `stand-cpu` preset, 128 envs, 500-step
episodes, 128x128 networks, learning rate 1e-3, with the task's default pushes, 4-8 N on the
torso every 30-80 control steps, strong enough that the zero-action policy falls in most
episodes, plus domain randomization, action delay, IMU latency and backlash; 200 iterations of
10240 env steps, 2.05M, evaluated every 25 iterations). Then the trained deterministic policy,
the zero-action policy and a random policy each stand for 500 steps on 64 envs of the nominal
model under the same pushes.

The bar: the job's `best` checkpoint (fewest falls in the periodic evaluation) falls in at most
10% of these episodes where zero action falls in at least 50%; the last checkpoint is reported.
Measured in the clean-clone CI run of 2026-12-07 (71c2c12): best = last, 3.1% falls, zero action
58%, random 100%; the periodic evaluation's fall rate went 47%, 19%, 17%, 5%, 8%, 3%, 8%, 3%. An
earlier run of the same code on another day ended at 0% (64%, 36%, 31%, 14%, 5%, 3%, 5%, 0%):
the run depends on the host's float details (docs/learning/README.md).
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tests.trained_stand import EPISODE_LENGTH, EVAL_EVERY, ITERATIONS, TrainedStand
from wildrobot.workers.training.evaluate import compare_policies


@pytest.mark.slow
@pytest.mark.timeout(2400)  # minutes of training on a 2-core CPU, longer when it is shared
def test_ppo_stands_where_a_statue_falls(
    trained_stand: TrainedStand, record_property: Callable[[str, object], None]
) -> None:
    def evaluate(checkpoint):
        return compare_policies(
            checkpoint, {"stand_still": (0.0, 0.0, 0.0)}, 64, EPISODE_LENGTH, seed=7
        )

    report = evaluate(trained_stand.checkpoint_dir)
    last, zero, random = (report[p]["stand_still"] for p in ("trained", "zero_action", "random"))
    best_dir = trained_stand.best_checkpoint_dir
    same = best_dir.resolve() == trained_stand.checkpoint_dir.resolve()
    best = last if same else evaluate(best_dir)["trained"]["stand_still"]
    evals = [m["eval/fall_rate"] for _, m in trained_stand.metrics if "eval/fall_rate" in m]
    record_property(
        "figures",
        f"{trained_stand.curve()}\ntrain wall time {trained_stand.wall_s:.0f} s; best "
        f"({best_dir.name} steps) {best}; last {last}; zero {zero}; random {random}\n"
        f"periodic eval fall rates {evals}",
    )
    # Holding the home pose falls in most episodes under the default pushes: standing has to be
    # learned. A random policy falls in every one. The job's `best` checkpoint (chosen by the
    # periodic evaluation's episodes) stands on these other episodes (seed 7): issue 10's bar.
    # The last checkpoint is reported, not asserted: past ~2M steps this constant-rate recipe
    # wanders (docs/learning/README.md), and `best` is what the service keeps for that reason.
    assert zero["fall_rate"] >= 0.5
    assert random["fall_rate"] >= 0.9
    assert best["fall_rate"] <= 0.10, (best, last, zero)
    # Learned, not lucky: the periodic evaluation (64 nominal envs, deterministic policy) starts
    # out falling as often as the statue and reaches near zero; training episodes grow from a
    # fifth of the limit to most of it (the best five-iteration stretch).
    assert len(evals) == ITERATIONS // EVAL_EVERY
    assert evals[0] >= 0.3 and min(evals) <= 0.10
    lengths = [metrics["episode/length"] for _, metrics in trained_stand.metrics]
    assert lengths[0] < 0.2 * EPISODE_LENGTH
    assert max(sum(lengths[i : i + 5]) / 5 for i in range(len(lengths) - 4)) >= 0.6 * EPISODE_LENGTH
