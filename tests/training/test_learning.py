"""Slow: PPO on WildRobotStand learns to stay up longer under pushes that topple a statue.

Budget (a 2-core CPU steps MJX at only a few thousand control steps/s): the `stand-cpu` preset
(128 envs, 500-step episodes, 128x128 networks, learning rate 1e-3; wildrobot.presets) with the
task's default pushes (strong enough that the zero-action policy falls in most episodes), domain
randomization, action delay, IMU latency and backlash, for ITERATIONS iterations of 10240 env
steps. Then the trained deterministic policy, the zero-action policy and a random policy each
stand for 500 steps on 64 envs of the nominal model under the same pushes.

Not asserted, because it does not hold yet: issue 10's bar of at most 10% falls for the trained
policy. In bench/learning.py's 10-minute run (4.7M steps) the trained policy still fell in 62%
of episodes against 78% for zero action (docs/learning/README.md); the test prints its figures.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.training.common import RecordingHooks
from wildrobot import presets
from wildrobot.specs import PpoSpec
from wildrobot.workers.training.evaluate import compare_policies
from wildrobot.workers.training.ppo import train_ppo

EPISODE_LENGTH = 500
ITERATIONS = 100
STAND = presets.PRESETS["stand-cpu"]


class CurveHooks(RecordingHooks):
    def __init__(self) -> None:
        super().__init__()
        self.start = time.perf_counter()

    def on_metrics(self, step: int, metrics: dict[str, float]) -> None:
        super().on_metrics(step, metrics)
        print(
            f"{int(metrics['iteration']):>4} {step:>9} {metrics.get('episode/length', 0.0):>8.1f} "
            f"{metrics.get('episode/reward', 0.0):>9.2f} {metrics['env_steps_per_s']:>8.0f} "
            f"{time.perf_counter() - self.start:>7.1f}",
            flush=True,
        )


@pytest.mark.slow
@pytest.mark.timeout(2400)  # minutes of training on a 2-core CPU, longer when it is shared
def test_ppo_stays_up_longer_under_pushes_that_topple_a_statue(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    assert STAND["episode_length"] == EPISODE_LENGTH
    spec = PpoSpec(**{**STAND, "num_timesteps": ITERATIONS * 128 * 4 * 20})
    hooks = CurveHooks()
    # The curve goes past pytest's capture so that CI's log records it for a passing run too.
    with capsys.disabled():
        print("\niter     steps  ep_len   ep_reward  steps/s  wall_s")
        result = train_ppo(spec, tmp_path, hooks)
    wall_s = time.perf_counter() - hooks.start

    report = compare_policies(
        result.checkpoint_dir, {"stand_still": (0.0, 0.0, 0.0)}, 64, EPISODE_LENGTH, seed=7
    )
    trained, zero, random = (report[p]["stand_still"] for p in ("trained", "zero_action", "random"))
    with capsys.disabled():
        print(f"train wall time {wall_s:.0f} s; trained {trained}; zero {zero}; random {random}")
    # Holding the home pose falls in most episodes under the default pushes: standing has to be
    # learned. A random policy falls in every one.
    assert zero["fall_rate"] >= 0.5
    assert random["fall_rate"] >= 0.9
    # The curve shows the learning: early episodes end within ~60 steps, the last ones run
    # several times longer (10-minute bench run: 52 at first, 341 by iteration 100).
    lengths = [metrics["episode/length"] for _, metrics in hooks.metrics]
    assert lengths[0] < 0.2 * EPISODE_LENGTH
    assert sum(lengths[-5:]) / 5 >= 0.5 * EPISODE_LENGTH
