"""Paired TTA comparisons of a trained stand policy: each method against `none`, the same episodes.

    .venv/bin/python bench/tta_paired.py [--checkpoint DIR] [--smoke] [--out DIR]

The checkpoint defaults to a fresh `stand-cpu` run (tests/trained_stand.py, ~5 minutes of a 2-core
CPU, written under --out). The reference is `none`, measured in the same run on the same
episodes; the headline cells are where the privilege questions of issue 24 live: `imu` (does
best_of_n still help when its lookahead starts from the measured state? against
best_of_n_oracle, which starts from the truth) and `latency` (sysid on the nominal latency).
Prints the fall-rate and paired tables (wildrobot.tta_table) and writes the report's files
(workers/tta/report.py) under --out; the last stdout line is one JSON object: per method and
cell, the fall rate and the paired figures.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent


JSON_KEYS = ("checkpoint", "episodes_per_cell", "episode_length", "train_s", "eval_s", "methods")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", type=Path, help="a PPO checkpoint folder")
    parser.add_argument("--out", type=Path, default=Path("/tmp/tta_paired"))
    parser.add_argument("--smoke", action="store_true", help="2 episodes of 20 steps, 1 seed")
    parser.add_argument("--shifts", default="imu,latency,push")
    parser.add_argument("--severities", default="3,5")
    parser.add_argument("--methods", default="none,sysid,best_of_n,best_of_n_oracle")
    parser.add_argument("--episodes", type=int, default=16)
    parser.add_argument("--episode-length", type=int, default=200)
    parser.add_argument("--seeds", default="0,1")
    parser.add_argument("--samples", type=int, default=4)
    parser.add_argument("--horizon", type=int, default=6)
    args = parser.parse_args()
    if args.smoke:
        args.episodes, args.episode_length, args.seeds, args.severities = 2, 20, "0", "5"
        args.samples, args.horizon = 2, 2

    sys.path.insert(0, str(REPO_ROOT))
    from wildrobot.tta_table import table
    from wildrobot.workers.tta.evaluate import TtaSettings, evaluate_checkpoint
    from wildrobot.workers.tta.report import write_report

    args.out.mkdir(parents=True, exist_ok=True)
    checkpoint = args.checkpoint
    train_s = 0.0
    if checkpoint is None:
        start = time.perf_counter()
        if args.smoke:  # one tiny iteration: a checkpoint to run the evaluation on, not a policy
            checkpoint = _tiny_stand_checkpoint(args.out / "stand-smoke")
        else:
            from tests.trained_stand import train_stand

            checkpoint = train_stand(args.out / "stand").checkpoint_dir
        train_s = time.perf_counter() - start
    settings = TtaSettings(
        shifts=tuple(args.shifts.split(",")),
        severities=tuple(int(s) for s in args.severities.split(",")),
        methods=tuple(args.methods.split(",")),
        episodes=args.episodes,
        episode_length=args.episode_length,
        seeds=tuple(int(s) for s in args.seeds.split(",")),
        best_of_n_samples=args.samples,
        lookahead_steps=args.horizon,
    )
    start = time.perf_counter()
    report = evaluate_checkpoint(
        checkpoint, settings, lambda p: print(json.dumps(p), file=sys.stderr, flush=True)
    )
    eval_s = time.perf_counter() - start
    write_report(report, args.out / "report")
    print(table(report), flush=True)
    summary = {
        method: {
            cell: {
                "fall_rate": c["fall_rate"],
                **{k: v for k, v in c.items() if k.startswith(("abs_error/", "count/"))},
                **c.get("paired_vs_none", {}),
            }
            for cell, c in result["cells"].items()
        }
        for method, result in report["methods"].items()
    }
    print(
        json.dumps(
            {
                "checkpoint": str(checkpoint),
                "episodes_per_cell": args.episodes * len(settings.seeds),
                "episode_length": args.episode_length,
                "train_s": round(train_s, 1),
                "eval_s": round(eval_s, 1),
                "methods": summary,
            }
        )
    )


def _tiny_stand_checkpoint(directory: Path) -> Path:
    """A one-iteration stand PPO checkpoint (8 envs): what the smoke evaluates."""
    from wildrobot.specs import PpoSpec
    from wildrobot.workers.training.ppo import train_ppo

    class Quiet:
        def on_metrics(self, step, metrics):
            pass

        def on_checkpoint(self, step, path, best=False):
            pass

        def should_stop(self):
            return False

    spec = PpoSpec(
        task="WildRobotStand", num_envs=8, batch_size=8, num_minibatches=1, unroll_length=5,
        num_timesteps=40, episode_length=20, checkpoint_every=1, export_onnx=False,
        video_seconds=0.0,
    )  # fmt: skip
    result = train_ppo(spec, directory, Quiet())
    assert result.checkpoint_dir is not None
    return Path(result.checkpoint_dir)


if __name__ == "__main__":
    main()
