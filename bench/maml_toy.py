"""Finn et al.'s comparison on 2D navigation (PointNav, the goal hidden): one inner step from
the MAML initialization vs the same step from a policy trained jointly on all goals
(inner_steps 0, the same env steps), and doing nothing (return exactly 0), paired over the same
held-out goals and keys.

    .venv/bin/python bench/maml_toy.py [--smoke] [--iterations 100]

Arms: maml_so (second-order, LVC), maml_fo (first-order), joint. For each: pre- and
post-adaptation return on HELD_OUT goals (one inner step, the arm's inner_lr), and the paired
differences post(arm) - post(joint) and gain(arm) - gain(joint) with 95% t-intervals. The last
stdout line is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import jax
import numpy as np

from wildrobot.specs import MamlSpec
from wildrobot.workers.maml import algorithm as alg
from wildrobot.workers.maml.train import make_maml_trainer

REPO_ROOT = Path(__file__).resolve().parent.parent
HELD_OUT = 32


def toy_spec(iterations: int, inner_steps: int, first_order: bool) -> MamlSpec:
    return MamlSpec(
        task="PointNav",
        num_iterations=iterations,
        tasks_per_batch=20,
        episodes_per_task=20,
        episode_length=10,
        inner_steps=inner_steps,
        inner_lr=0.1,
        first_order=first_order,
        outer_learning_rate=1e-3,
        gae_lambda=1.0,
        normalize_observations=False,
        policy_hidden_sizes=(64, 64),
        value_hidden_sizes=(64, 64),
    )


def interval(d: np.ndarray) -> list[float]:
    """[mean, low, high]: a 95% t-interval (normal quantile for n > 30) of paired differences."""
    half = 1.96 * float(d.std(ddof=1)) / np.sqrt(len(d))
    return [float(d.mean()), float(d.mean()) - half, float(d.mean()) + half]


def run_arm(spec: MamlSpec) -> dict[str, np.ndarray]:
    trainer = make_maml_trainer(spec)
    state = alg.init_state(spec, trainer.model, trainer.optimizer)
    for _ in range(spec.num_iterations):
        state, _ = trainer.iteration_fn(state)
    evaluate = alg.make_adaptation_eval(
        trainer.model, trainer.family, 20, spec.episode_length, spec, inner_steps=1
    )
    goals = jax.vmap(trainer.family.sample)(
        jax.random.split(jax.random.PRNGKey(2**31 - 7), HELD_OUT)
    )
    out = evaluate(state.params, state.normalizer, goals, jax.random.PRNGKey(99), spec.inner_lr)
    return {k: np.asarray(v) for k, v in out.items()}


JSON_KEYS = ("iterations", "held_out_goals", "do_nothing_return", "maml_so", "maml_fo", "joint")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="3 iterations per arm")
    parser.add_argument("--iterations", type=int, default=60)
    args = parser.parse_args()
    os.environ.setdefault("JAX_COMPILATION_CACHE_DIR", str(REPO_ROOT / ".jax_cache"))
    iterations = 3 if args.smoke else args.iterations
    arms = {"maml_so": (1, False), "maml_fo": (1, True), "joint": (0, True)}
    results, seconds = {}, {}
    for name, (inner_steps, first_order) in arms.items():
        start = time.perf_counter()
        results[name] = run_arm(toy_spec(iterations, inner_steps, first_order))
        seconds[name] = time.perf_counter() - start
    joint = results["joint"]
    report = {"iterations": iterations, "held_out_goals": HELD_OUT, "do_nothing_return": 0.0}
    for name, r in results.items():
        report[name] = {
            "pre": float(r["pre"].mean()),
            "post": float(r["post"].mean()),
            "seconds": round(seconds[name], 1),
            "post_vs_nothing": interval(r["post"]),
        }
        if name != "joint":
            report[name]["post_vs_joint"] = interval(r["post"] - joint["post"])
            gain = (r["post"] - r["pre"]) - (joint["post"] - joint["pre"])
            report[name]["gain_vs_joint"] = interval(gain)
    print(json.dumps(report))


if __name__ == "__main__":
    main()
