"""What tta_eval may evaluate: a ppo, amp or maml job on a WildRobot task (one rule, which the
server applies at submit and the worker again before it evaluates), and a maml job's
meta-initialization loading as a tta source with exactly the parameters maml's own loader reads.

The whole path through the service (submit maml on WildRobotStand, then submit tta on its
checkpoint) was run by hand: docs/maml.md. A WildRobot maml job compiles for minutes on this
CPU, so CI covers the PointNav refusal end to end (tests/maml/test_maml_job.py) and the loading
here, on a checkpoint written by train_maml's own checkpoint function.
"""

from __future__ import annotations

from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from tests.maml.test_maml_training import _leaves, tiny
from tests.training.tiny_runs import RecordingHooks
from wildrobot.specs import MamlSpec, PpoSpec, TtaEvalSpec, tta_source_problem


def test_the_source_rule_names_the_kind_and_the_task() -> None:
    stand = PpoSpec(task="WildRobotStand").model_dump_json()
    assert tta_source_problem("j1", "ppo", stand) is None
    assert tta_source_problem("j1", "amp", stand) is None
    meta = MamlSpec(task="WildRobotWalk").model_dump_json()
    assert tta_source_problem("j2", "maml", meta) is None

    tta = TtaEvalSpec(checkpoint_job_id="a" * 32).model_dump_json()
    assert tta_source_problem("j3", "tta_eval", tta) == (
        "job j3 is a tta_eval job, not ppo, amp or maml"
    )
    nav = MamlSpec(task="PointNav").model_dump_json()
    assert tta_source_problem("j4", "maml", nav) == (
        "job j4 trained on PointNav; the shift suite is WildRobot's (WildRobotStand, WildRobotWalk)"
    )
    point_mass = PpoSpec(task="PointMass").model_dump_json()
    assert "trained on PointMass" in tta_source_problem("j5", "ppo", point_mass)


def test_a_maml_meta_initialization_loads_as_a_tta_source(tmp_path: Path) -> None:
    from wildrobot.workers.maml import algorithm as alg
    from wildrobot.workers.maml import train as maml_train
    from wildrobot.workers.tta.evaluate import load_source, source_env

    spec = tiny(1, task="WildRobotStand", seed=3)  # test_maml_training's spec, on WildRobot
    trainer = maml_train.make_maml_trainer(spec)  # builds, does not compile, the iteration
    state = alg.init_state(spec, trainer.model, trainer.optimizer)
    # A normalizer as after some iterations (not the identity), so loading it is checked too.
    normalizer = state.normalizer.replace(
        mean=state.normalizer.mean + 0.3, std=state.normalizer.std * 2.0
    )
    state = state.replace(normalizer=normalizer)
    path = maml_train._checkpoint(trainer, state, tmp_path, RecordingHooks())

    source, loaded_spec = load_source(path)
    model, params, meta_normalizer = maml_train.load_meta_params(path)
    assert loaded_spec == spec
    env = source_env(loaded_spec)  # what tta_eval shifts: the task on default settings
    assert type(env).__name__ == "WildRobotStand"
    assert env.observation_size == model.config.observation_size
    assert env.action_size == model.config.action_size
    for loaded, meta, written in (
        (source.params.policy, params.policy, state.params.policy),
        (source.params.value, params.value, state.params.value),
        (source.params.normalizer, meta_normalizer, state.normalizer),
    ):
        for a, b, c in zip(_leaves(loaded), _leaves(meta), _leaves(written), strict=True):
            np.testing.assert_array_equal(a, b)
            np.testing.assert_array_equal(a, c)

    # tta_eval's networks act as maml's policy model does on the same observations.
    obs = jax.random.normal(jax.random.PRNGKey(1), (4, model.config.observation_size))
    tta_logits = source.networks.policy_network.apply(
        source.params.normalizer, source.params.policy, obs
    )
    _, maml_logits = model.step(params.policy, meta_normalizer, model.initial_carry(4), obs)
    np.testing.assert_allclose(np.asarray(tta_logits), np.asarray(maml_logits), rtol=1e-6)
    assert float(jnp.abs(tta_logits).max()) > 0.0
