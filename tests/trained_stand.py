"""The session's trained stand policy: issue 10's run, shared by the tests that need one.

PPO on WildRobotStand with the `stand-cpu` preset's settings (128 envs, 500-step episodes, 128x128
networks) at a constant learning rate of 1e-3 and the task's default pushes, for ITERATIONS
iterations of 10240 env steps (2.05M), evaluating every EVAL_EVERY iterations. It costs about five
minutes of a 2-core CPU, so it runs once per session: the stand learning test asserts issue 10's bar
on its `best` checkpoint (the one a user downloads as `best`), and the AMP and TTA tests use its
last checkpoint as their no-style baseline and as the checkpoint they evaluate.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from tests.training.tiny_runs import RecordingHooks
from wildrobot import presets

EPISODE_LENGTH = 500
ITERATIONS = 200
EVAL_EVERY = 25
STAND = presets.PRESETS["stand-cpu"]
STEPS_PER_ITERATION = STAND["batch_size"] * STAND["num_minibatches"] * STAND["unroll_length"]


class CurveHooks(RecordingHooks):
    """Records metrics and prints the training curve past pytest's capture (seen with `-n 0`;
    under pytest-xdist the stand learning test reports `TrainedStand.curve()` instead)."""

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


@dataclass(frozen=True)
class TrainedStand:
    checkpoint_dir: Path  # the last checkpoint of the run
    best_checkpoint_dir: Path  # the job's `best`: fewest falls in the periodic evaluation
    metrics: list[tuple[int, dict[str, float]]]  # every iteration's metrics, in order
    wall_s: float  # training wall time

    def curve(self, every: int = 10) -> str:
        """Every `every`-th iteration's episode length and reward, as a table."""
        rows = ["iter     steps  ep_len  ep_reward  steps/s"]
        for step, m in sampled_iterations(self.metrics, every):
            rows.append(
                f"{int(m['iteration']):>4} {step:>9} {m.get('episode/length', 0.0):>7.1f} "
                f"{m.get('episode/reward', 0.0):>10.2f} {m['env_steps_per_s']:>8.0f}"
            )
        return "\n".join(rows)


def sampled_iterations(
    metrics: list[tuple[int, dict[str, float]]], every: int
) -> list[tuple[int, dict[str, float]]]:
    """The first iteration's (step, metrics) and every `every`-th one's: a curve short enough to
    print."""
    return [(s, m) for s, m in metrics if int(m["iteration"]) % every == 0 or m["iteration"] == 1]


def stand_spec_fields() -> dict:
    """The PpoSpec fields of the run (AMP's baseline trains with exactly these): the preset's,
    at 2.05M steps with a constant learning rate, the run the tests' figures were measured on
    (the preset itself decays the rate over 4.1M steps, docs/learning)."""
    return {
        **STAND,
        "learning_rate_schedule": "constant",
        "num_timesteps": ITERATIONS * STEPS_PER_ITERATION,
        "eval_every": EVAL_EVERY,
        "num_eval_envs": 64,
    }


def train_stand(directory: Path) -> TrainedStand:
    from wildrobot.specs import PpoSpec
    from wildrobot.workers.training.ppo import train_ppo

    assert STAND["episode_length"] == EPISODE_LENGTH
    hooks = CurveHooks()
    print("\n[trained_stand] iter     steps  ep_len   ep_reward  steps/s  wall_s", flush=True)
    result = train_ppo(PpoSpec(**stand_spec_fields()), directory, hooks)
    wall_s = time.perf_counter() - hooks.start
    assert result.checkpoint_dir is not None and result.best_checkpoint_dir is not None
    return TrainedStand(
        Path(result.checkpoint_dir), Path(result.best_checkpoint_dir), hooks.metrics, wall_s
    )
