"""train_ppo: the host loop around the jitted PPO iteration; load_policy for trained checkpoints.

Between iterations the host reports metrics, polls for a stop, and writes checkpoints; the
jitted iteration never touches disk or the job service.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from pathlib import Path

import jax
import jax.numpy as jnp
from brax.training.agents.ppo import networks as ppo_networks

from wildrobot.specs import PpoSpec
from wildrobot.workers.training import checkpoint as ckpt
from wildrobot.workers.training import networks as net
from wildrobot.workers.training.api import TrainHooks, TrainResult
from wildrobot.workers.training.metrics import EpisodeTracker, check_finite, to_host
from wildrobot.workers.training.rollout import evaluate_policy
from wildrobot.workers.training.state import TrainingState
from wildrobot.workers.training.trainer import Trainer, init_state, make_trainer

# Spec fields that may change between a run and its resume; the rest must match exactly.
RESUMABLE_CHANGES = frozenset(
    {"num_timesteps", "checkpoint_every", "eval_every", "num_eval_envs", "export_onnx", "video_seconds"}
)


def train_ppo(
    spec: PpoSpec, run_dir: Path, hooks: TrainHooks, resume_from: Path | None = None
) -> TrainResult:
    """Trains until spec.num_timesteps env steps, a stop request, or a NonFiniteError.

    resume_from: a checkpoint directory of the same run; training continues exactly where it
    stopped (same params, optimizer, normalizer, env states and RNG).
    """
    run_dir = Path(run_dir)
    trainer = make_trainer(spec)
    state = init_state(trainer)
    last_checkpoint: Path | None = None
    if resume_from is not None:
        state = _resume(trainer, state, Path(resume_from))
        last_checkpoint = Path(resume_from)
    num_iterations = math.ceil(spec.num_timesteps / spec.env_steps_per_iteration)
    iteration = int(state.iteration[0])
    checkpointed_iteration = iteration
    evaluate = _make_evaluator(trainer) if spec.eval_every else None

    compile_start = time.perf_counter()
    iteration_fn = trainer.iteration_fn.lower(state).compile()
    compile_s = time.perf_counter() - compile_start
    episodes = EpisodeTracker()
    stopped = False
    while iteration < num_iterations:
        if hooks.should_stop():
            stopped = True
            break
        start = time.perf_counter()
        new_state, device_metrics = iteration_fn(state)
        metrics = to_host(device_metrics)  # blocks until the iteration is done
        elapsed = time.perf_counter() - start
        check_finite(iteration + 1, metrics)
        state, iteration = new_state, iteration + 1
        env_steps = iteration * spec.env_steps_per_iteration
        metrics = episodes.update(metrics)
        metrics.update(
            iteration=float(iteration),
            env_steps=float(env_steps),
            env_steps_per_s=spec.env_steps_per_iteration / elapsed,
            iteration_s=elapsed,
            compile_s=compile_s,
            learning_rate=spec.learning_rate,
        )
        if evaluate is not None and iteration % spec.eval_every == 0:
            metrics.update(evaluate(state))
        hooks.on_metrics(env_steps, metrics)
        if iteration % spec.checkpoint_every == 0:
            last_checkpoint = _checkpoint(trainer, state, run_dir, hooks)
            checkpointed_iteration = iteration
    if iteration != checkpointed_iteration:
        last_checkpoint = _checkpoint(trainer, state, run_dir, hooks)
    return TrainResult(
        final_step=iteration * spec.env_steps_per_iteration,
        iterations=iteration,
        stopped=stopped,
        checkpoint_dir=last_checkpoint,
    )


def _checkpoint(trainer: Trainer, state: TrainingState, run_dir: Path, hooks: TrainHooks) -> Path:
    path = ckpt.save_checkpoint(run_dir, state, trainer.spec, trainer.network_config)
    hooks.on_checkpoint(int(jax.device_get(state.env_steps).to_numpy()[0]), path)
    return path


def _resume(trainer: Trainer, target: TrainingState, checkpoint_dir: Path) -> TrainingState:
    saved = ckpt.read_spec(checkpoint_dir)
    changed = {
        name
        for name in PpoSpec.model_fields
        if getattr(saved, name) != getattr(trainer.spec, name) and name not in RESUMABLE_CHANGES
    }
    if changed:
        raise ValueError(
            f"cannot resume from {checkpoint_dir}: spec fields differ from the run's: "
            f"{sorted(changed)}"
        )
    saved_devices = ckpt.read_meta(checkpoint_dir)["num_devices"]
    if saved_devices != trainer.num_devices:
        raise ValueError(
            f"cannot resume from {checkpoint_dir}: written with {saved_devices} local devices, "
            f"this process has {trainer.num_devices}"
        )
    return ckpt.load_state(checkpoint_dir, target)


def _make_evaluator(trainer: Trainer) -> Callable[[TrainingState], dict[str, float]]:
    """Deterministic policy, num_eval_envs full episodes on the nominal (unrandomized) env."""
    spec = trainer.spec
    make_policy = ppo_networks.make_inference_fn(trainer.networks)
    key_eval = jax.random.PRNGKey(spec.seed + 1)

    def evaluate(state: TrainingState) -> dict[str, float]:
        first = jax.tree.map(lambda x: x[0], state)
        policy = make_policy(
            (first.normalizer, first.params.policy, first.params.value), deterministic=True
        )
        report = evaluate_policy(
            lambda obs, key: policy(obs, key)[0],
            trainer.base_env,
            spec.num_eval_envs,
            spec.episode_length,
            jax.random.fold_in(key_eval, int(first.iteration)),
        )
        return {f"eval/{name}": float(value) for name, value in report.items()}

    return evaluate


def load_policy(checkpoint_dir: Path) -> Callable[[jax.Array], jax.Array]:
    """A jitted deterministic policy obs -> action ([..., obs] -> [..., action_size]).

    Everything it needs (network config, normalizer, params) comes from the checkpoint.
    """
    checkpoint_dir = Path(checkpoint_dir)
    config = ckpt.read_network_config(checkpoint_dir)
    networks = net.make_networks(config)
    fresh = net.init_params(networks, jax.random.PRNGKey(0))
    target = ckpt.policy_tree(net.init_normalizer(config), fresh.policy, fresh.value)
    tree = jax.tree.map(jnp.asarray, ckpt.load_policy_tree(checkpoint_dir, target))
    policy = ppo_networks.make_inference_fn(networks)(
        (tree["normalizer"], tree["policy"], tree["value"]), deterministic=True
    )
    unused_key = jax.random.PRNGKey(0)
    return jax.jit(lambda obs: policy(obs, unused_key)[0])
