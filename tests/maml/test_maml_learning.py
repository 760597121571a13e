"""Finn et al. 2017's sanity check on 2D navigation (PointNav, the goal hidden from the policy):
one inner step from the MAML initialization improves the return on held-out goals well beyond
the same step from a policy trained jointly on all goals (inner_steps 0, the same env steps),
paired over the same goals and keys, and beyond doing nothing (return 0)."""

from __future__ import annotations

import jax
import numpy as np
import pytest

from tests.training.common import RecordingHooks
from wildrobot.specs import MamlSpec
from wildrobot.workers.maml import algorithm as alg
from wildrobot.workers.maml.train import make_maml_trainer, train_maml

ITERATIONS = 100
HELD_OUT_GOALS = 32


def toy_spec(inner_steps: int) -> MamlSpec:
    return MamlSpec(
        task="PointNav",
        num_iterations=ITERATIONS,
        tasks_per_batch=20,
        episodes_per_task=20,
        episode_length=10,
        inner_steps=inner_steps,
        inner_lr=1.0,
        outer_learning_rate=3e-3,
        gae_lambda=0.0,
        policy_hidden_sizes=(64, 64),
        value_hidden_sizes=(64, 64),
        checkpoint_every=ITERATIONS,
    )


def paired_interval(d: np.ndarray) -> tuple[float, float, float]:
    """Mean and 95% t-interval of paired differences."""
    mean = float(d.mean())
    half = 2.04 * float(d.std(ddof=1)) / np.sqrt(len(d))  # t(0.975, 31)
    return mean, mean - half, mean + half


@pytest.mark.slow
def test_one_step_from_maml_beats_one_step_from_joint_training(tmp_path) -> None:
    results = {}
    for name, inner_steps in (("maml", 1), ("joint", 0)):
        spec = toy_spec(inner_steps)
        trainer = make_maml_trainer(spec)
        hooks = RecordingHooks()
        train_maml(spec, tmp_path / name, hooks, trainer=trainer)
        if inner_steps == 0:
            assert hooks.metrics[-1][1]["maml/inner_grad_norm"] == 0.0
        state = alg.init_state(spec, trainer.model, trainer.optimizer)
        from wildrobot.workers.training import checkpoint as ckpt

        checkpoint = sorted((tmp_path / name / "checkpoints").iterdir())[-1]
        state = ckpt.load_state(checkpoint, jax.tree.map(lambda x: np.asarray(x)[None], state))
        state = jax.tree.map(lambda x: x[0], state)
        evaluate = alg.make_adaptation_eval(
            trainer.model, trainer.family, 20, spec.episode_length, spec, inner_steps=1
        )
        # Held-out goals: a key stream training never drew from; the same goals and keys for both.
        goals = jax.vmap(trainer.family.sample)(
            jax.random.split(jax.random.PRNGKey(2**31 - 7), HELD_OUT_GOALS)
        )
        out = evaluate(state.params, state.normalizer, goals, jax.random.PRNGKey(99), spec.inner_lr)
        results[name] = {k: np.asarray(v) for k, v in out.items()}

    maml, joint = results["maml"], results["joint"]
    versus_joint = paired_interval(maml["post"] - joint["post"])
    gain_versus_joint = paired_interval(
        (maml["post"] - maml["pre"]) - (joint["post"] - joint["pre"])
    )
    versus_nothing = paired_interval(maml["post"])  # doing nothing returns exactly 0
    print(
        "maml pre/post",
        maml["pre"].mean(),
        maml["post"].mean(),
        "joint pre/post",
        joint["pre"].mean(),
        joint["post"].mean(),
        "post maml - joint",
        versus_joint,
        "gain maml - joint",
        gain_versus_joint,
        "maml post - nothing",
        versus_nothing,
    )
    assert versus_joint[1] > 0.1, versus_joint  # return is progress towards a goal 1 away
    assert gain_versus_joint[1] > 0.1, gain_versus_joint
    assert versus_nothing[1] > 0.0, versus_nothing
