"""Does a task learn on this CPU within a wall-clock budget? Curves and a fixed-command test.

    .venv/bin/python bench/learning.py --task walk --minutes 60 [--out docs/learning]

Trains the task's CPU preset (wildrobot.presets: `walk-cpu`, `stand-cpu`) until the budget
(compile included) runs out, then rolls out the trained deterministic policy, the zero-action
policy (hold the home pose) and a uniformly random policy on fixed commands (walk: forward 0.2,
0.3 and 0.4 m/s, turning at 0.5 rad/s, standing still; stand: standing still), each on
`--eval-envs` envs of the nominal (unrandomized) model with the task's pushes, noise, latencies
and backlash, for `--eval-steps` control steps.

Writes <out>/<task>_curve.png (episode reward and length, each reward term per step, velocity
tracking error over env steps) and <out>/<task>_learning.json (the curve and the figures).
The last stdout line is one JSON object: task, env_steps, wall_s, fall_rate, zero_action_fall_rate,
random_fall_rate, vx_tracking_error, zero_action_vx_tracking_error, forward_speed_at_0_3 (m/s, mean
over alive steps at a 0.3 m/s command), and the scale used (num_envs, threads, devices): at least
JSON_KEYS; with the `best` checkpoint (periodic evaluation) its step and fall rate on the same test,
and the periodic evaluations' fall rates. `--set num_timesteps=N` ends the run at N steps (the
horizon of a learning_rate_schedule) if the budget lasts; a preset with a decaying schedule
(`stand-cpu`) ends at its own num_timesteps. `--smoke` (CI: that it runs): 8 envs, a budget of one
iteration, 2 x 10-step evaluations, everything written to a temporary directory.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
TASKS = {"walk": "WildRobotWalk", "stand": "WildRobotStand"}
COMMANDS = {
    "walk": {
        "forward_0.2": (0.2, 0.0, 0.0),
        "forward_0.3": (0.3, 0.0, 0.0),
        "forward_0.4": (0.4, 0.0, 0.0),
        "turn_0.5": (0.0, 0.0, 0.5),
        "stand_still": (0.0, 0.0, 0.0),
    },
    "stand": {"stand_still": (0.0, 0.0, 0.0)},
}
FORWARD = ("forward_0.2", "forward_0.3", "forward_0.4")
# The keys the last line always has (tests/test_bench_smoke.py checks them).
JSON_KEYS = ("task", "env_steps", "iterations", "wall_s", "fall_rate", "zero_action_fall_rate",
             "random_fall_rate", "num_envs", "platform")  # fmt: skip


class BudgetHooks:
    """Records every iteration's metrics; asks to stop once the budget is spent."""

    def __init__(self, budget_s: float) -> None:
        self.start = time.perf_counter()
        self.budget_s = budget_s
        self.curve: list[dict[str, float]] = []

    def on_metrics(self, step: int, metrics: dict[str, float]) -> None:
        point = {"env_steps": float(step), "wall_s": time.perf_counter() - self.start}
        point.update({k: v for k, v in metrics.items() if _kept(k)})
        self.curve.append(point)
        print(
            f"iter {int(metrics['iteration']):>4}  steps {step:>10,}  "
            f"wall {point['wall_s']:>6.0f}s  ep_len {metrics.get('episode/length', 0):>6.1f}  "
            f"ep_reward {metrics.get('episode/reward', 0):>8.2f}  "
            f"{metrics['env_steps_per_s']:>6.0f} steps/s",
            flush=True,
        )

    def on_checkpoint(self, step: int, path: Path, best: bool = False) -> None:
        del step, path, best

    def should_stop(self) -> bool:
        return time.perf_counter() - self.start >= self.budget_s


def _kept(name: str) -> bool:
    return name.startswith(("episode/", "reward/", "eval/")) or name in (
        "iteration",
        "env_steps_per_s",
        "loss/total",
    )


def per_step_terms(point: dict[str, float]) -> dict[str, float]:
    """Each reward term's mean per control step over the episodes that ended (sum / length)."""
    length = max(point.get("episode/length", 0.0), 1.0)
    return {k[len("reward/") :]: v / length for k, v in point.items() if k.startswith("reward/")}


def summary(task: str, report: dict[str, dict[str, dict[str, float]]]) -> dict[str, float]:
    def mean(policy: str, metric: str, names) -> float:
        return sum(report[policy][n][metric] for n in names) / len(names)

    everything = tuple(COMMANDS[task])
    forward = FORWARD if task == "walk" else everything
    figures = {
        "fall_rate": mean("trained", "fall_rate", everything),
        "zero_action_fall_rate": mean("zero_action", "fall_rate", everything),
        "random_fall_rate": mean("random", "fall_rate", everything),
        "vx_tracking_error": mean("trained", "vx_tracking_error", forward),
        "zero_action_vx_tracking_error": mean("zero_action", "vx_tracking_error", forward),
    }
    if task == "walk":
        figures["forward_speed_at_0_3"] = report["trained"]["forward_0.3"]["forward_speed"]
        figures["zero_action_forward_speed_at_0_3"] = report["zero_action"]["forward_0.3"][
            "forward_speed"
        ]
        figures["yaw_rate_at_0_5"] = report["trained"]["turn_0.5"]["yaw_rate"]
    return figures


def plot(task: str, curve: list[dict[str, float]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    steps = [p["env_steps"] / 1e6 for p in curve]
    fig, axes = plt.subplots(2, 2, figsize=(12, 8))
    axes[0, 0].plot(steps, [p.get("episode/reward", float("nan")) for p in curve])
    axes[0, 0].set_title("episode reward")
    axes[0, 1].plot(steps, [p.get("episode/length", float("nan")) for p in curve])
    axes[0, 1].set_title("episode length (control steps)")
    terms = per_step_terms(curve[-1]) if curve else {}
    colors = plt.get_cmap("tab20").colors  # one colour per term (up to 20)
    for index, term in enumerate(terms):
        axes[1, 0].plot(
            steps,
            [per_step_terms(p).get(term, float("nan")) for p in curve],
            label=term,
            color=colors[index % len(colors)],
        )
    axes[1, 0].set_title("reward terms, weighted, per control step")
    axes[1, 0].legend(fontsize=7, ncol=2)
    if task == "stand":  # standing still is the whole task: how often it falls
        falls = [p.get("eval/fall_rate", float("nan")) for p in curve]
        axes[1, 1].plot(steps, falls, marker="o", linestyle="-")
        axes[1, 1].set_title("eval: fall rate, deterministic policy, nominal model")
    else:
        tracking = [p.get("eval/velocity_tracking_error", float("nan")) for p in curve]
        axes[1, 1].plot(steps, tracking, marker="o", linestyle="-")
        axes[1, 1].set_title("eval: velocity tracking error (m/s), random commands")
    for ax in axes.flat:
        ax.set_xlabel("env steps (M)")
        ax.grid(alpha=0.3)
    fig.suptitle(f"{TASKS[task]}: PPO on a 2-core CPU ({task}-cpu preset)")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", choices=sorted(TASKS), default="walk")
    parser.add_argument("--minutes", type=float, default=60.0, help="training budget, wall clock")
    parser.add_argument("--out", type=Path, default=REPO_ROOT / "docs" / "learning")
    parser.add_argument("--run-dir", type=Path, help="checkpoints (default: runs/learning/<task>)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--eval-every", type=int, default=20, help="iterations")
    parser.add_argument("--eval-envs", type=int, default=32, help="per command set")
    parser.add_argument("--eval-steps", type=int, default=500, help="control steps (10 s)")
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="FIELD=JSON",
        help="override a preset field, e.g. --set num_envs=128",
    )
    parser.add_argument(
        "--smoke", action="store_true", help="seconds: 8 envs, one iteration, tiny evaluation"
    )
    args = parser.parse_args()
    if args.smoke:
        scratch = Path(tempfile.mkdtemp(prefix="wildrobot-learning-smoke-"))
        args.minutes, args.eval_envs, args.eval_steps, args.eval_every = 10.0, 2, 10, 1000
        args.out, args.run_dir = scratch / "out", scratch / "run"
        args.set += ["num_envs=8", "batch_size=8", "num_minibatches=2", "unroll_length=4"]
    os.environ.setdefault("JAX_COMPILATION_CACHE_DIR", str(REPO_ROOT / ".jax_cache"))
    os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "1")

    import jax

    from wildrobot import presets
    from wildrobot.specs import PpoSpec
    from wildrobot.workers.training.evaluate import compare_policies
    from wildrobot.workers.training.ppo import train_ppo

    fields = {k: json.loads(v) for k, v in (item.split("=", 1) for item in args.set)}
    fields.update(seed=args.seed, eval_every=args.eval_every, num_eval_envs=64)
    spec = PpoSpec(**presets.apply_preset(f"{args.task}-cpu", fields))
    one_iteration = spec.env_steps_per_iteration  # the smoke's budget: one iteration
    if args.smoke:
        spec = spec.model_copy(update={"num_timesteps": one_iteration})
    elif "num_timesteps" not in fields and spec.learning_rate_schedule == "constant":
        # Only the budget ends the run; a decaying schedule keeps the preset's num_timesteps,
        # its horizon (the run ends there or at the budget, whichever comes first).
        spec = spec.model_copy(update={"num_timesteps": 10**10})
    run_dir = args.run_dir
    if run_dir is None:  # the default folder holds only the last run's checkpoints
        run_dir = REPO_ROOT / "runs" / "learning" / args.task
        shutil.rmtree(run_dir, ignore_errors=True)
    hooks = BudgetHooks(args.minutes * 60.0)
    result = train_ppo(spec, run_dir, hooks)
    wall_s = time.perf_counter() - hooks.start

    report = compare_policies(
        result.checkpoint_dir, COMMANDS[args.task], args.eval_envs, args.eval_steps, args.seed + 17
    )
    best_figures = {}
    if result.best_checkpoint_dir is not None:  # the `best` checkpoint, evaluated the same way
        best_dir = result.best_checkpoint_dir
        same = best_dir.resolve() == result.checkpoint_dir.resolve()
        best_report = (
            report
            if same
            else compare_policies(
                best_dir, COMMANDS[args.task], args.eval_envs, args.eval_steps, args.seed + 17
            )
        )
        best_figures = {
            "best_step": int(best_dir.name),
            "best_fall_rate": round(summary(args.task, best_report)["fall_rate"], 4),
        }
    periodic = [(p["env_steps"], p["eval/fall_rate"]) for p in hooks.curve if "eval/fall_rate" in p]
    figures = {
        "task": args.task,
        "learning_rate_schedule": spec.learning_rate_schedule,
        "env_steps": result.final_step,
        "iterations": result.iterations,
        "wall_s": round(wall_s, 1),
        "budget_minutes": args.minutes,
        **{k: round(v, 4) for k, v in summary(args.task, report).items()},
        "num_envs": spec.num_envs,
        "policy_hidden_sizes": list(spec.policy_hidden_sizes),
        "threads": os.cpu_count(),
        "devices": jax.local_device_count(),
        "platform": jax.default_backend(),
        "eval_envs_per_command": args.eval_envs,
        "eval_steps": args.eval_steps,
        **best_figures,
        "periodic_eval_fall_rates": [round(f, 3) for _, f in periodic],
        "periodic_eval_max_fall_rate_after_2M": max(
            (f for s, f in periodic if s > 2_000_000), default=None
        ),
    }
    args.out.mkdir(parents=True, exist_ok=True)
    plot(args.task, hooks.curve, args.out / f"{args.task}_curve.png")
    (args.out / f"{args.task}_learning.json").write_text(
        json.dumps(
            {
                "figures": figures,
                "fixed_commands": report,
                "spec": spec.model_dump(mode="json"),
                "curve": hooks.curve,
            },
            indent=1,
        )
    )
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
