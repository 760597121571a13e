"""Learning-rate schedules and the `best` checkpoint: hand-worked schedule values, the selection
rule on a sequence of evaluations, and a real PointMass run (kept best, exact resume)."""

from __future__ import annotations

import math
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from tests.training.tiny_runs import STEPS_PER_ITERATION, RecordingHooks, point_mass_spec
from wildrobot.workers.training import best as best_rule
from wildrobot.workers.training import checkpoint as ckpt
from wildrobot.workers.training.iteration import learning_rate_schedule, make_optimizer
from wildrobot.workers.training.ppo import train_ppo
from wildrobot.workers.training.trainer import init_state, make_trainer

LR = 1e-3


def test_schedules_at_known_updates() -> None:
    # point_mass_spec(5): 5 iterations x 4 minibatches x 2 epochs = 40 optimizer updates.
    spec = point_mass_spec(5, learning_rate=LR)
    constant = learning_rate_schedule(spec)
    linear = learning_rate_schedule(spec.model_copy(update={"learning_rate_schedule": "linear"}))
    cosine = learning_rate_schedule(spec.model_copy(update={"learning_rate_schedule": "cosine"}))
    # linear: LR * (1 - k/40); cosine: LR * (1 + cos(pi k/40)) / 2
    for k, lin, cos in [
        (0, 1.0, 1.0),
        (10, 0.75, 0.8535533905932737),
        (20, 0.5, 0.5),
        (30, 0.25, 0.14644660940672627),
        (40, 0.0, 0.0),
    ]:
        assert float(constant(k)) == pytest.approx(LR, rel=1e-6)
        assert float(linear(k)) == pytest.approx(LR * lin, rel=1e-6, abs=1e-12)
        assert float(cosine(k)) == pytest.approx(LR * cos, rel=1e-6, abs=1e-12)


def test_the_optimizer_steps_by_the_schedule() -> None:
    # Adam on a constant gradient moves by exactly the learning rate each update (m / sqrt(v) = 1
    # after bias correction), so the k-th step is -schedule(k): the decay is really applied.
    spec = point_mass_spec(5, learning_rate=LR, learning_rate_schedule="linear")
    optimizer = make_optimizer(spec)
    params = jnp.zeros(())
    state = optimizer.init(params)
    steps = []
    for _ in range(40):
        updates, state = optimizer.update(jnp.ones(()), state, params)
        steps.append(float(updates))
    expected = [-LR * (1 - k / 40) for k in range(40)]
    np.testing.assert_allclose(steps, expected, rtol=1e-4, atol=1e-9)


def _report(fall_rate: float, length: float, error: float | None = None) -> dict[str, float]:
    report = {"eval/fall_rate": fall_rate, "eval/mean_episode_length": length}
    if error is not None:
        report["eval/velocity_tracking_error"] = error
    return report


def test_best_selection_on_a_sequence_of_evaluations() -> None:
    reports = [
        _report(0.5, 30.0, 0.4),  # the first evaluation is the first best
        _report(0.25, 20.0, 0.5),  # fewer falls wins, whatever else
        _report(0.25, 40.0, 0.6),  # same falls, worse tracking: no
        _report(0.25, 10.0, 0.3),  # same falls, better tracking: yes
        _report(0.25, 50.0, 0.3),  # same falls and tracking, longer episodes: yes
        _report(0.25, 50.0, 0.3),  # an exact tie keeps the earlier one
        _report(float("nan"), 50.0, 0.0),  # a non-finite evaluation never wins
        _report(0.5, 50.0, 0.0),  # more falls: no
        _report(0.0, 1.0, 0.9),  # no falls: yes
    ]
    best = None
    picked = []
    for i, report in enumerate(reports):
        candidate = best_rule.score(100 * (i + 1), report)
        if best_rule.is_better(candidate, best):
            best = candidate
            picked.append(i)
    assert picked == [0, 1, 3, 4, 8]
    assert best is not None and best.step == 900
    # Tasks without a velocity command compare falls, then episode length.
    a, b = best_rule.score(1, _report(0.1, 20.0)), best_rule.score(2, _report(0.1, 30.0))
    assert best_rule.is_better(b, a) and not best_rule.is_better(a, b)
    assert best_rule.BestScore.from_json_dict(best.to_json_dict()) == best


@pytest.mark.slow
def test_best_is_kept_and_a_resumed_run_keeps_it(tmp_path: Path) -> None:
    # A 6-iteration PointMass run evaluated every iteration (linear decay), straight and as
    # 3 iterations + a resume: the same best, the same final state, bit for bit.
    iterations = 6
    spec = point_mass_spec(
        iterations,
        eval_every=1,
        num_eval_envs=8,
        checkpoint_every=100,
        learning_rate=LR,
        learning_rate_schedule="linear",
    )
    trainer = make_trainer(spec)
    straight_hooks = RecordingHooks()
    straight = train_ppo(spec, tmp_path / "a", straight_hooks, trainer=trainer)

    # The reported rate is the one of each iteration's first update: LR * (1 - (i - 1) / 6).
    rates = [m["learning_rate"] for _, m in straight_hooks.metrics]
    np.testing.assert_allclose(rates, [LR * (1 - i / iterations) for i in range(iterations)], 1e-5)
    # Every new best was registered as a checkpoint, and the kept one has the fewest falls.
    evals = {step: m for step, m in straight_hooks.metrics}
    assert straight_hooks.bests, "the first evaluation is always a best"
    assert set(straight_hooks.bests) <= set(straight_hooks.checkpoints)
    best_step, best_dir = straight_hooks.bests[-1]
    assert evals[best_step]["eval/fall_rate"] == min(m["eval/fall_rate"] for m in evals.values())
    assert straight.best_checkpoint_dir == best_dir and best_dir.is_dir()
    recorded = ckpt.read_meta(straight.checkpoint_dir)["best"]
    assert recorded["step"] == best_step
    assert (straight.checkpoint_dir / recorded["path"]).resolve() == best_dir.resolve()
    assert math.isclose(recorded["fall_rate"], evals[best_step]["eval/fall_rate"])

    first_hooks = RecordingHooks(stop_after=3)
    first = train_ppo(spec, tmp_path / "b", first_hooks, trainer=trainer)
    assert first.stopped and first.iterations == 3
    resumed_hooks = RecordingHooks()
    resumed = train_ppo(
        spec, tmp_path / "b", resumed_hooks, resume_from=first.checkpoint_dir, trainer=trainer
    )
    assert resumed.iterations == iterations
    assert first_hooks.bests + resumed_hooks.bests == [
        (step, tmp_path / "b" / path.relative_to(tmp_path / "a"))
        for step, path in straight_hooks.bests
    ]
    assert resumed.best_checkpoint_dir == tmp_path / "b" / best_dir.relative_to(tmp_path / "a")
    assert ckpt.read_meta(resumed.checkpoint_dir) == ckpt.read_meta(straight.checkpoint_dir)
    target = init_state(trainer)
    expected = ckpt.load_state(straight.checkpoint_dir, target)
    actual = ckpt.load_state(resumed.checkpoint_dir, target)
    jax.tree.map(np.testing.assert_array_equal, expected, actual)
    assert resumed_hooks.metrics[0][0] == 4 * STEPS_PER_ITERATION
