"""train_maml: the host loop around the jitted meta-iteration (checkpoints, resume, NaN guard).

The state is the PPO engine's `TrainingState` (params, optimizer state, normalizer, counters,
RNG; no persistent env state: every MAML episode starts from a reset), written by the engine's
checkpoint module with a device axis of one, so a checkpoint of the meta-initialization has the
same `policy/` tree as a PPO checkpoint and resumes the run exactly.
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

import jax
import numpy as np

from wildrobot.specs import MamlSpec

from ..training import checkpoint as ckpt
from ..training.api import TrainHooks, TrainResult, checkpoint_path
from ..training.metrics import check_finite
from ..training.state import TrainingState
from . import algorithm as alg
from .policy import PolicyModel, make_policy_model
from .tasks import TaskFamily, make_task_family

# Spec fields that may change between a run and its resume; the rest must match exactly.
RESUMABLE_CHANGES = frozenset({"num_iterations", "checkpoint_every"})


@dataclasses.dataclass(frozen=True)
class MamlTrainer:
    spec: MamlSpec
    family: TaskFamily
    model: PolicyModel
    optimizer: object
    iteration_fn: alg.IterationFn  # jitted, donates its input state


def make_maml_trainer(spec: MamlSpec, family: TaskFamily | None = None) -> MamlTrainer:
    family = family if family is not None else make_task_family(spec.task)
    model = make_policy_model(
        spec.policy_arch,
        family.observation_size,
        family.action_size,
        spec.policy_hidden_sizes,
        spec.value_hidden_sizes,
        spec.normalize_observations,
    )
    optimizer = alg.make_optimizer(spec)
    iteration = alg.make_iteration_fn(spec, model, family, optimizer)
    return MamlTrainer(spec, family, model, optimizer, jax.jit(iteration, donate_argnums=0))


def train_maml(
    spec: MamlSpec,
    run_dir: Path,
    hooks: TrainHooks,
    resume_from: Path | None = None,
    trainer: MamlTrainer | None = None,
) -> TrainResult:
    """Runs spec.num_iterations outer iterations, or until a stop request or a NonFiniteError.

    Metrics per iteration (hooks.on_metrics, step = env steps): maml/pre_adaptation_return,
    maml/post_adaptation_return, maml/adaptation_gain, maml/inner_grad_norm(_max), the losses and
    the outer gradient norm."""
    run_dir = Path(run_dir)
    if trainer is not None and trainer.spec != spec:
        raise ValueError("trainer: built for another spec")
    trainer = trainer if trainer is not None else make_maml_trainer(spec)
    state = alg.init_state(spec, trainer.model, trainer.optimizer)
    last_checkpoint: Path | None = None
    if resume_from is not None:
        state = _resume(trainer, state, Path(resume_from))
        last_checkpoint = Path(resume_from)
    iteration = int(state.iteration)
    checkpointed = iteration
    stopped = False
    while iteration < spec.num_iterations:
        if hooks.should_stop():
            stopped = True
            break
        start = time.perf_counter()
        # The trainer's jitted function: compiled on its first call, then reused (also by a
        # later train_maml with the same trainer); the first iteration_s includes the compile.
        new_state, device_metrics = trainer.iteration_fn(state)
        metrics = {k: float(v) for k, v in jax.device_get(device_metrics).items()}
        elapsed = time.perf_counter() - start
        check_finite(iteration + 1, metrics)  # raises NonFiniteError naming the quantity
        state, iteration = new_state, iteration + 1
        env_steps = iteration * spec.env_steps_per_iteration
        # The episodes this iteration ended with its adapted parameters, under the names the
        # dashboard and `watch` show for every training job.
        metrics["episode/reward"] = metrics["maml/post_adaptation_return"]
        metrics["episode/length"] = metrics["maml/post_episode_length"]
        metrics.update(
            iteration=float(iteration),
            env_steps=float(env_steps),
            env_steps_per_s=spec.env_steps_per_iteration / elapsed,
            iteration_s=elapsed,
        )
        hooks.on_metrics(env_steps, metrics)
        if iteration % spec.checkpoint_every == 0:
            last_checkpoint = _checkpoint(trainer, state, run_dir, hooks)
            checkpointed = iteration
    if iteration != checkpointed:
        last_checkpoint = _checkpoint(trainer, state, run_dir, hooks)
    return TrainResult(
        final_step=iteration * spec.env_steps_per_iteration,
        iterations=iteration,
        stopped=stopped,
        checkpoint_dir=last_checkpoint,
    )


def _with_device_axis(state: TrainingState) -> TrainingState:
    return jax.tree.map(lambda x: np.asarray(x)[None], jax.device_get(state))


def _checkpoint(trainer: MamlTrainer, state: TrainingState, run_dir: Path, hooks) -> Path:
    host = _with_device_axis(state)
    env_steps = int(host.env_steps.to_numpy()[0])
    path = ckpt.save_checkpoint(run_dir, host, trainer.spec, trainer.model.config)
    assert path == checkpoint_path(run_dir.absolute(), env_steps)
    hooks.on_checkpoint(env_steps, path)
    return path


def _resume(trainer: MamlTrainer, target: TrainingState, checkpoint_dir: Path) -> TrainingState:
    saved = ckpt.read_spec(checkpoint_dir)
    if not isinstance(saved, MamlSpec):
        raise ValueError(f"cannot resume from {checkpoint_dir}: not a maml checkpoint")
    changed = {
        name
        for name in MamlSpec.model_fields
        if getattr(saved, name) != getattr(trainer.spec, name) and name not in RESUMABLE_CHANGES
    }
    if changed:
        raise ValueError(
            f"cannot resume from {checkpoint_dir}: spec fields differ from the run's: "
            f"{sorted(changed)}"
        )
    restored = ckpt.load_state(checkpoint_dir, _with_device_axis(target))
    return jax.tree.map(lambda x: jax.numpy.asarray(x[0]), restored)


def load_meta_params(checkpoint_dir: Path):
    """(PolicyModel, params, normalizer) of a maml checkpoint: the meta-initialization."""
    checkpoint_dir = Path(checkpoint_dir)
    spec = ckpt.read_spec(checkpoint_dir)
    config = ckpt.read_network_config(checkpoint_dir)
    arch = getattr(spec, "policy_arch", "mlp")
    model = make_policy_model(
        arch,
        config.observation_size,
        config.action_size,
        config.policy_hidden_sizes,
        config.value_hidden_sizes,
        config.normalize_observations,
    )
    fresh = model.init(jax.random.PRNGKey(0))
    target = ckpt.policy_tree(model.init_normalizer(), fresh.policy, fresh.value)
    tree = jax.tree.map(jax.numpy.asarray, ckpt.load_policy_tree(checkpoint_dir, target))
    params = fresh.replace(policy=tree["policy"], value=tree["value"])
    return model, params, tree["normalizer"]
