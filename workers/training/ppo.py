"""train_ppo: the host loop around the jitted PPO iteration; load_policy for trained checkpoints.

Between iterations the host reports metrics, polls for a stop, and writes checkpoints; the
jitted iteration never touches disk or the job service.
"""

from __future__ import annotations

import dataclasses
import os
import time
from collections.abc import Callable
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
from brax.training.agents.ppo import networks as ppo_networks
from jax.experimental import multihost_utils

from wildrobot.specs import PpoSpec

from . import best as best_rule
from . import checkpoint as ckpt
from . import distributed
from . import networks as net
from .api import TrainHooks, TrainResult, checkpoint_path
from .iteration import learning_rate_schedule, updates_per_iteration
from .metrics import EpisodeTracker, check_finite, to_host
from .rollout import make_evaluator
from .state import TrainingState
from .trainer import Trainer, init_state, make_trainer

# Spec fields that may change between a run and its resume; the rest must match exactly.
RESUMABLE_CHANGES = frozenset(
    {
        "num_timesteps",
        "checkpoint_every",
        "eval_every",
        "num_eval_envs",
        "export_onnx",
        "video_seconds",
    }
)


def train_ppo(
    spec: PpoSpec,
    run_dir: Path,
    hooks: TrainHooks,
    resume_from: Path | None = None,
    trainer: Trainer | None = None,
) -> TrainResult:
    """Trains until spec.num_timesteps env steps, a stop request, or a NonFiniteError.

    resume_from: a checkpoint directory of the same run; training continues exactly where it
    stopped (same params, optimizer, normalizer, env states and RNG).
    trainer: a prebuilt trainer for `spec` (AMP passes one with its extension).
    """
    run_dir = Path(run_dir)
    trainer = trainer if trainer is not None else make_trainer(spec)
    state = init_state(trainer)
    last_checkpoint: Path | None = None
    # The best evaluation so far; its `path` is the absolute directory of its checkpoint.
    best: best_rule.BestScore | None = None
    if resume_from is not None:
        state = _resume(trainer, state, Path(resume_from))
        last_checkpoint = Path(resume_from)
        best = _read_best(last_checkpoint)
    num_iterations = spec.num_iterations
    iteration = int(state.iteration[0])
    checkpointed_iteration = iteration
    evaluate = _make_evaluator(trainer) if spec.eval_every else None
    schedule = learning_rate_schedule(spec)

    compile_start = time.perf_counter()
    if _multi_host(trainer):
        # An ahead-of-time compiled pmap expects the global shapes; across hosts each process
        # feeds only its local rows, so the first call compiles (its time counts as compile).
        iteration_fn = trainer.iteration_fn
    else:
        iteration_fn = trainer.iteration_fn.lower(state).compile()
    compile_s = time.perf_counter() - compile_start
    episodes = EpisodeTracker()
    stopped = False
    leader = distributed.is_leader()
    while iteration < num_iterations:
        if _agreed_stop(trainer, hooks.should_stop() if leader else False):
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
            # the rate of this iteration's first update (the optimizer's count before it)
            learning_rate=float(schedule((iteration - 1) * updates_per_iteration(spec))),
        )
        new_best = False
        if evaluate is not None and iteration % spec.eval_every == 0:
            report = evaluate(state)
            metrics.update(report)
            candidate = best_rule.score(env_steps, report)
            new_best = best_rule.is_better(candidate, best)
            if new_best:
                where = checkpoint_path(run_dir, env_steps).absolute()
                best = dataclasses.replace(candidate, path=str(where))
        if leader:
            hooks.on_metrics(env_steps, metrics)
        if new_best or iteration % spec.checkpoint_every == 0:
            last_checkpoint = _checkpoint(trainer, state, run_dir, hooks, best, new_best)
            checkpointed_iteration = iteration
    if iteration != checkpointed_iteration:
        last_checkpoint = _checkpoint(trainer, state, run_dir, hooks, best, False)
    return TrainResult(
        final_step=iteration * spec.env_steps_per_iteration,
        iterations=iteration,
        stopped=stopped,
        checkpoint_dir=last_checkpoint,
        best_checkpoint_dir=Path(best.path) if best is not None else None,
    )


def _multi_host(trainer: Trainer) -> bool:
    return trainer.global_devices != trainer.num_devices


def _agreed_stop(trainer: Trainer, leader_says_stop: bool) -> bool:
    """Every host stops at the same iteration: process 0 decides, the others follow."""
    if not _multi_host(trainer):
        return leader_says_stop
    return bool(multihost_utils.broadcast_one_to_all(np.int32(leader_says_stop)))


def _checkpoint(
    trainer: Trainer,
    state: TrainingState,
    run_dir: Path,
    hooks: TrainHooks,
    best: best_rule.BestScore | None,
    is_best: bool,
) -> Path:
    """Process 0 writes the whole run's state (every host's devices, gathered) and registers it
    (as the run's new best when `is_best`); meta.json records `best`, the best so far."""
    if _multi_host(trainer):
        host_state = jax.tree.map(np.asarray, multihost_utils.process_allgather(state, tiled=True))
    else:
        host_state = jax.device_get(state)
    env_steps = int(host_state.env_steps.to_numpy()[0])
    path = checkpoint_path(run_dir, env_steps)
    if distributed.is_leader():
        recorded = None
        if best is not None:  # where the best lives, relative to this checkpoint's directory
            rel = os.path.relpath(best.path, path.absolute())
            recorded = dataclasses.replace(best, path=rel).to_json_dict()
        path = ckpt.save_checkpoint(
            run_dir, host_state, trainer.spec, trainer.network_config, best=recorded
        )
        if is_best:
            hooks.on_checkpoint(env_steps, path, best=True)
        else:
            hooks.on_checkpoint(env_steps, path)
    if _multi_host(trainer):  # nobody runs ahead of a checkpoint that is still being written
        multihost_utils.sync_global_devices(f"checkpoint-{env_steps}")
    return path


def _read_best(checkpoint_dir: Path) -> best_rule.BestScore | None:
    """The best evaluation recorded with a checkpoint (None before the first evaluation)."""
    recorded = ckpt.read_meta(checkpoint_dir).get("best")
    if recorded is None:
        return None
    best = best_rule.BestScore.from_json_dict(recorded)
    where = os.path.normpath(Path(checkpoint_dir).absolute() / best.path)
    return dataclasses.replace(best, path=where)


def _resume(trainer: Trainer, target: TrainingState, checkpoint_dir: Path) -> TrainingState:
    saved = ckpt.read_spec(checkpoint_dir)
    changed = {
        name
        for name in type(trainer.spec).model_fields
        if getattr(saved, name, None) != getattr(trainer.spec, name)
        and name not in RESUMABLE_CHANGES
    }
    if changed:
        raise ValueError(
            f"cannot resume from {checkpoint_dir}: spec fields differ from the run's: "
            f"{sorted(changed)}"
        )
    saved_devices = ckpt.read_meta(checkpoint_dir)["num_devices"]
    if saved_devices != trainer.global_devices:
        raise ValueError(
            f"cannot resume from {checkpoint_dir}: written with {saved_devices} devices, "
            f"this run has {trainer.global_devices}"
        )
    if not _multi_host(trainer):
        return ckpt.load_state(checkpoint_dir, target)
    # The checkpoint holds every host's rows; restore them all and keep this process's.
    rows = slice(trainer.first_row, trainer.first_row + trainer.num_devices)
    local = jax.device_get(target)
    whole = jax.tree.map(
        lambda x: np.zeros((trainer.global_devices,) + np.shape(x)[1:], np.asarray(x).dtype), local
    )
    return jax.tree.map(lambda x: x[rows], ckpt.load_state(checkpoint_dir, whole))


def _make_evaluator(trainer: Trainer) -> Callable[[TrainingState], dict[str, float]]:
    """Deterministic policy, num_eval_envs full episodes on the nominal (unrandomized) env.

    The rollout compiles once; each evaluation passes the current parameters in.
    """
    spec = trainer.spec
    make_policy = ppo_networks.make_inference_fn(trainer.networks)
    key_eval = jax.random.PRNGKey(spec.seed + 1)
    config = trainer.network_config

    def policy_fn(params, obs, key):
        return make_policy(params, deterministic=True)(obs, key)[0]

    def recurrent_fn(params, obs, key, memory):
        normalizer, policy_params, _ = params
        logits, memory = trainer.networks.policy_network.step(
            normalizer, policy_params, obs, memory
        )
        return trainer.networks.parametric_action_distribution.mode(logits), memory

    memory = None
    if config.recurrent:
        memory = jnp.zeros((spec.num_eval_envs, *config.policy_state_shape))
    evaluator = make_evaluator(
        recurrent_fn if config.recurrent else policy_fn,
        trainer.base_env,
        spec.num_eval_envs,
        spec.episode_length,
        memory,
    )

    def evaluate(state: TrainingState) -> dict[str, float]:
        first = jax.tree.map(lambda x: x[0], state)
        params = (first.normalizer, first.params.policy, first.params.value)
        report = evaluator(params, jax.random.fold_in(key_eval, int(first.iteration)))
        return {f"eval/{name}": float(value) for name, value in report.items() if name != "values"}

    return evaluate


@dataclasses.dataclass(frozen=True)
class StatefulPolicy:
    """A trained recurrent (SSM) policy, deterministic: the caller carries its state.

        state = policy.init_state((num_envs,))     # zeros: every env at an episode's start
        state, action = policy.step(state, obs)    # jitted; [..., obs] -> [..., action_size]

    Zero an env's state (init_state, or np.where(done, 0, state)) whenever its episode ends.
    """

    state_shape: tuple[int, ...]  # one env's state: (ssm_layers, ssm_state_size)
    step: Callable[[jax.Array, jax.Array], tuple[jax.Array, jax.Array]]

    def init_state(self, batch_shape: tuple[int, ...] = ()) -> jax.Array:
        return jnp.zeros((*batch_shape, *self.state_shape), jnp.float32)

    def carried(self, batch_shape: tuple[int, ...] = (1,)) -> Callable[[jax.Array], jax.Array]:
        """obs -> action for host loops over one episode: the state lives inside, from zeros."""
        state = [self.init_state(batch_shape)]

        def act(obs: jax.Array) -> jax.Array:
            state[0], action = self.step(state[0], obs)
            return action

        return act


Policy = Callable[[jax.Array], jax.Array] | StatefulPolicy


def load_policy(checkpoint_dir: Path) -> Policy:
    """The checkpoint's deterministic policy: for an MLP a jitted obs -> action
    ([..., obs] -> [..., action_size]); for an SSM a StatefulPolicy (init_state, step).

    Everything it needs (network config, normalizer, params) comes from the checkpoint.
    """
    checkpoint_dir = Path(checkpoint_dir)
    config = ckpt.read_network_config(checkpoint_dir)
    networks = net.make_networks(config)
    fresh = net.init_params(networks, jax.random.PRNGKey(0))
    target = ckpt.policy_tree(net.init_normalizer(config), fresh.policy, fresh.value)
    tree = jax.tree.map(jnp.asarray, ckpt.load_policy_tree(checkpoint_dir, target))
    if config.recurrent:
        ssm = networks.policy_network
        mode = networks.parametric_action_distribution.mode

        def step(state, obs):
            logits, state = ssm.step(tree["normalizer"], tree["policy"], obs, state)
            return state, mode(logits)

        return StatefulPolicy(state_shape=config.policy_state_shape, step=jax.jit(step))
    policy = ppo_networks.make_inference_fn(networks)(
        (tree["normalizer"], tree["policy"], tree["value"]), deterministic=True
    )
    unused_key = jax.random.PRNGKey(0)
    return jax.jit(lambda obs: policy(obs, unused_key)[0])
