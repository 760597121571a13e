"""train_maml on PointNav: metrics per iteration, exact resume, NaN guard, second-order option,
and the dynamics task family holding one draw for a batch of WildRobot envs."""

from __future__ import annotations

from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from tests.training.tiny_runs import RecordingHooks
from wildrobot.specs import MamlSpec
from wildrobot.workers.maml import algorithm as alg
from wildrobot.workers.maml.tasks import PointNavTasks
from wildrobot.workers.maml.train import load_meta_params, make_maml_trainer, train_maml
from wildrobot.workers.training import checkpoint as ckpt
from wildrobot.workers.training.api import NonFiniteError


def tiny(iterations: int, **fields) -> MamlSpec:
    base = dict(
        task="PointNav",
        num_iterations=iterations,
        tasks_per_batch=3,
        episodes_per_task=4,
        episode_length=8,
        inner_steps=1,
        inner_lr=0.5,
        outer_updates=2,
        policy_hidden_sizes=(16,),
        value_hidden_sizes=(16,),
        checkpoint_every=100,
    )
    return MamlSpec(**{**base, **fields})


def _leaves(tree) -> list[np.ndarray]:
    return [np.asarray(x) for x in jax.tree.leaves(tree)]


@pytest.mark.slow  # three short runs and a checkpoint load: ~30 s on a loaded 2-core machine
def test_metrics_checkpoint_and_exact_resume(tmp_path: Path) -> None:
    spec = tiny(3)
    trainer = make_maml_trainer(spec)  # one compile for the three runs
    straight_hooks = RecordingHooks()
    straight = train_maml(spec, tmp_path / "straight", straight_hooks, trainer=trainer)
    assert straight.iterations == 3 and straight.final_step == 3 * spec.env_steps_per_iteration
    assert spec.env_steps_per_iteration == 2 * 3 * 4 * 8
    metrics = straight_hooks.metrics[-1][1]
    for name in (
        "maml/pre_adaptation_return",
        "maml/post_adaptation_return",
        "maml/adaptation_gain",
        "maml/inner_grad_norm",
        "maml/inner_grad_norm_max",
        "loss/total",
        "gradient_norm",
    ):
        assert np.isfinite(metrics[name]), name
    gain = metrics["maml/post_adaptation_return"] - metrics["maml/pre_adaptation_return"]
    assert metrics["maml/adaptation_gain"] == pytest.approx(gain)
    assert metrics["maml/inner_grad_norm"] > 0

    # Stop after one iteration, resume from its checkpoint: the same parameters, bit for bit.
    first = train_maml(spec, tmp_path / "first", RecordingHooks(stop_after=1), trainer=trainer)
    assert first.stopped and first.iterations == 1
    resumed = train_maml(
        spec, tmp_path / "resumed", RecordingHooks(), first.checkpoint_dir, trainer=trainer
    )
    assert resumed.iterations == 3
    target = alg.init_state(spec, trainer.model, trainer.optimizer)
    with_axis = jax.tree.map(lambda x: np.asarray(x)[None], target)
    a = ckpt.load_state(straight.checkpoint_dir, with_axis)
    b = ckpt.load_state(resumed.checkpoint_dir, with_axis)
    for x, y in zip(_leaves(a), _leaves(b), strict=True):
        np.testing.assert_array_equal(x, y)
    assert isinstance(ckpt.read_spec(resumed.checkpoint_dir), MamlSpec)

    # The meta-initialization loads back as a policy (the same tree as a PPO checkpoint's).
    model, params, normalizer = load_meta_params(resumed.checkpoint_dir)
    np.testing.assert_array_equal(_leaves(params.policy)[0], _leaves(a.params.policy)[0][0])
    del model, normalizer

    other = tiny(4, inner_lr=0.2)
    with pytest.raises(ValueError, match="inner_lr"):
        train_maml(other, tmp_path / "bad", RecordingHooks(), first.checkpoint_dir)


class NanAfterReset(PointNavTasks):
    """PointNav whose rewards are NaN: the guard must stop the run at its first iteration."""

    def step(self, task, state, action):
        state = super().step(task, state, action)
        return state.replace(reward=state.reward * jnp.nan)


def test_nan_guard_names_the_quantity(tmp_path: Path) -> None:
    spec = tiny(2)
    trainer = make_maml_trainer(spec, family=NanAfterReset())
    with pytest.raises(NonFiniteError) as info:
        train_maml(spec, tmp_path, RecordingHooks(), trainer=trainer)
    assert info.value.iteration == 1 and info.value.quantity == "loss/total"


def test_second_order_differs_from_first_order_only_in_the_meta_gradient() -> None:
    """Same data, same adapted parameters; the outer update differs by the inner Hessian term."""
    states = {}
    for first_order in (True, False):
        spec = tiny(1, first_order=first_order, outer_updates=1)
        trainer = make_maml_trainer(spec)
        state = alg.init_state(spec, trainer.model, trainer.optimizer)
        new, metrics = trainer.iteration_fn(state)
        states[first_order] = (new, metrics)
    fo, so = states[True], states[False]
    for name in ("maml/pre_adaptation_return", "maml/post_adaptation_return"):
        assert float(fo[1][name]) == pytest.approx(float(so[1][name]), abs=1e-5)
    diffs = [
        float(np.max(np.abs(x - y)))
        for x, y in zip(_leaves(fo[0].params.policy), _leaves(so[0].params.policy), strict=True)
    ]
    assert max(diffs) > 1e-7  # the second-order term changed the meta-update
    assert all(np.isfinite(diffs))
