"""Slow: PPO on WildRobotWalk improves its velocity tracking within a ~5 minute CPU budget.

The `walk-cpu` preset (256 envs, 500-step episodes, commands mostly forward; wildrobot.presets)
for ITERATIONS iterations of 40960 env steps. The measure is the velocity-tracking reward term
per control step: reward/tracking_lin_vel (summed over each episode that ended in the
iteration, then averaged over those episodes) divided by the mean episode length. It is
exp(-|v_cmd - v|^2 / 0.1) x 1.5, so standing 0.3 m/s off earns 0.41 x 1.5 per step and
falling (fast, uncommanded velocities) earns less.

The test compares the mean of the last 5 iterations with the first 3. Each iteration's value
averages the episodes that ended in it, so it moves little from one iteration to the next: in
the 60-minute bench run (docs/learning/README.md) the first 3 iterations read 0.63-0.66 and the
spread (standard deviation) of 5 consecutive iterations was 0.01-0.04 over the first 100. A
clean-clone CI run of the 100-iteration version of this test (2026-12-07) read 0.636 for the
first 3 and 0.755 for iterations 36-40 (spread 0.008): a gain of 0.119 by iteration 40, 0.212 by
100. It was cut to 40 iterations to keep CI under its time budget (issue 30). MIN_GAIN (0.07)
is 60% of that measured gain and 2-7 times the spread, and the test also requires the gain to be
at least 4 times the spread it measures in its own first and last windows, so a policy that does
not learn cannot pass by chance.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.training.tiny_runs import RecordingHooks
from wildrobot import presets
from wildrobot.specs import PpoSpec
from wildrobot.workers.training.ppo import train_ppo

ITERATIONS = 40  # 1.6M env steps: about 3 minutes of training on this CPU when it is quiet
MIN_GAIN = 0.07  # per-step tracking term (weight 1.5 included; at most 1.5)
WALK = presets.PRESETS["walk-cpu"]


def tracking_per_step(metrics: dict[str, float]) -> float:
    return metrics["reward/tracking_lin_vel"] / max(metrics["episode/length"], 1.0)


@pytest.mark.slow
@pytest.mark.timeout(2400)  # minutes of training on a 2-core CPU, longer when it is shared
def test_walk_tracking_improves_well_beyond_the_first_iterations(
    tmp_path: Path, record_property: Callable[[str, object], None]
) -> None:
    steps_per_iteration = WALK["batch_size"] * WALK["num_minibatches"] * WALK["unroll_length"]
    spec = PpoSpec(**{**WALK, "num_timesteps": ITERATIONS * steps_per_iteration})
    hooks = RecordingHooks()
    start = time.perf_counter()
    result = train_ppo(spec, tmp_path, hooks)
    wall_s = time.perf_counter() - start
    assert result.iterations == ITERATIONS

    curve = [tracking_per_step(metrics) for _, metrics in hooks.metrics]
    first, last = statistics.mean(curve[:3]), statistics.mean(curve[-5:])
    noise = max(statistics.pstdev(curve[:3]), statistics.pstdev(curve[-5:]))
    record_property(
        "figures",
        f"walk: {wall_s:.0f} s, tracking per step by iteration:\n"
        + " ".join(f"{value:.3f}" for value in curve)
        + f"\nfirst 3 {first:.3f}, last 5 {last:.3f} (spread {noise:.3f}), gain {last - first:.3f}",
    )
    assert last - first >= MIN_GAIN
    assert last - first >= 4 * noise
