"""MAML for policy gradients, one jitted outer iteration (docs/maml.md).

Per iteration, vmapped over `tasks_per_batch` tasks:
1. collect `episodes_per_task` episodes with the meta-parameters theta (pre-adaptation);
2. adapt: `inner_steps` SGD steps with `inner_lr` on the inner loss, the policy-gradient
   surrogate  -mean(pi_phi(a|s) / stop_grad(pi_theta(a|s)) * A)  with GAE advantages A from the
   value network (normalized per task). Its gradient at phi = theta is the plain policy gradient;
   later steps on the same batch are importance-weighted;
3. collect as many fresh episodes with the adapted parameters phi_i (post-adaptation);
4. outer: `outer_updates` Adam steps on  sum_i L_out(phi_i(theta))  where L_out is the clipped
   surrogate on task i's post-adaptation episodes (ratio to the policy that collected them; at the
   first step the ratio is 1 and it is vanilla PG), plus the value regression on both batches
   and an entropy bonus. phi_i(theta) is recomputed from the stored pre-adaptation batch at every
   outer step (ProMP's scheme).

First-order (default): the inner gradient is a constant of theta, so d phi / d theta = I.
Second-order: autodiff through the inner step. Differentiating the log-likelihood surrogate
(sum log pi * A) twice misses the score-function term of the policy-gradient Hessian; the
likelihood-ratio form above (ProMP's LVC estimator, Rothfuss et al. 2019) keeps, per step,
grad^2 log pi * A + grad log pi grad log pi^T * A, dropping only the cross-time terms: biased
but low-variance, where the naive estimate is biased and DiCE's unbiased one has high variance.
The value network is not adapted.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import flax
import jax
import jax.numpy as jnp
import optax
from brax.training import types as brax_types
from brax.training.acme import running_statistics
from brax.training.agents.ppo import losses as ppo_losses

from wildrobot.specs import MamlSpec

from ..training.state import TrainingState
from .policy import PolicyModel
from .tasks import TaskFamily

VF_COEFFICIENT = 0.5


@flax.struct.dataclass
class Batch:
    """One task's episodes, [T, N, ...]; every episode starts at t = 0."""

    obs: jax.Array
    raw_action: jax.Array  # before the tanh
    logp: jax.Array  # of the policy that collected it
    reward: jax.Array  # 0 once the episode has ended
    alive: jax.Array  # 1 while the episode had not ended before this step
    termination: jax.Array  # 1 at the step the episode ended
    # Nothing after the last step: there is no bootstrap at the horizon (see advantages).


def make_collect(model: PolicyModel, family: TaskFamily, num_envs: int, episode_length: int):
    """collect(policy_params, normalizer, task, key) -> Batch of one task (vmap over tasks)."""
    dist = model.distribution

    def collect(policy_params, normalizer, task, key) -> Batch:
        key_reset, key_steps = jax.random.split(key)
        state = jax.vmap(family.reset, in_axes=(None, 0))(
            task, jax.random.split(key_reset, num_envs)
        )

        def body(carry, key):
            state, policy_carry, alive = carry
            policy_carry, logits = model.step(policy_params, normalizer, policy_carry, state.obs)
            raw = dist.sample_no_postprocessing(logits, key)
            logp = dist.log_prob(logits, raw)
            nxt = jax.vmap(family.step, in_axes=(None, 0, 0))(task, state, dist.postprocess(raw))
            reward = jnp.where(alive > 0, nxt.reward, 0.0)
            ended = alive * nxt.done
            out = (state.obs, raw, logp, reward, alive, ended)
            return (nxt, policy_carry, alive * (1.0 - nxt.done)), out

        init = (state, model.initial_carry(num_envs), jnp.ones(num_envs))
        _, out = jax.lax.scan(body, init, jax.random.split(key_steps, episode_length))
        obs, raw, logp, reward, alive, ended = out
        return Batch(obs, raw, logp, reward, alive, ended)

    return collect


def masked_mean(x: jax.Array, mask: jax.Array) -> jax.Array:
    return jnp.sum(x * mask) / jnp.maximum(jnp.sum(mask), 1.0)


def advantages(
    model: PolicyModel, value_params, normalizer, batch: Batch, spec: MamlSpec
) -> tuple[jax.Array, jax.Array]:
    """(normalized GAE advantages [T, N], value targets [T, N]) of one task's batch."""
    values = model.value(value_params, normalizer, batch.obs)
    # No bootstrap at the horizon: MAML's objective is the return within `episode_length`
    # steps, and the observation has no clock, so a value bootstrapped there feeds its own
    # errors back into its targets (on PointNav it grew without bound and the advantages,
    # dominated by V(s_T), stopped pointing at the goal). The value is a baseline.
    next_values = jnp.concatenate([values[1:], jnp.zeros_like(values[:1])], axis=0)
    rewards = batch.reward * spec.reward_scaling
    continues = 1.0 - batch.termination
    delta = rewards + spec.discounting * continues * next_values - values

    def back(acc, x):
        d, c = x
        acc = d + spec.discounting * spec.gae_lambda * c * acc
        return acc, acc

    _, adv = jax.lax.scan(back, jnp.zeros_like(values[0]), (delta, continues), reverse=True)
    targets = jax.lax.stop_gradient(adv + values)
    mean = masked_mean(adv, batch.alive)
    std = jnp.sqrt(masked_mean(jnp.square(adv - mean), batch.alive))
    adv = jax.lax.stop_gradient((adv - mean) / (std + 1e-8))
    return adv, targets


def surrogate(
    model: PolicyModel, policy_params, normalizer, batch: Batch, adv, clip: float | None
) -> jax.Array:
    """-mean(ratio * A) (clip None: the inner LVC loss) or PPO's clipped form."""
    logits = model.sequence_logits(policy_params, normalizer, batch.obs)
    logp = model.distribution.log_prob(logits, batch.raw_action)
    ratio = jnp.exp(logp - jax.lax.stop_gradient(batch.logp))
    objective = ratio * adv
    if clip is not None:
        objective = jnp.minimum(objective, jnp.clip(ratio, 1.0 - clip, 1.0 + clip) * adv)
    return -masked_mean(objective, batch.alive)


def make_adapt(model: PolicyModel, inner_steps: int, first_order: bool):
    """adapt(policy_params, normalizer, batch, adv, inner_lr) -> (adapted, grad norms [K])."""

    def adapt(policy_params, normalizer, batch: Batch, adv, inner_lr):
        def inner_loss(p):
            return surrogate(model, p, normalizer, batch, adv, clip=None)

        def body(p, _):
            grads = jax.grad(inner_loss)(p)
            if first_order:
                grads = jax.lax.stop_gradient(grads)
            p = jax.tree.map(lambda x, g: x - inner_lr * g, p, grads)
            return p, optax.tree.norm(grads)

        return jax.lax.scan(body, policy_params, None, length=inner_steps)

    return adapt


def episode_return(batch: Batch) -> jax.Array:
    """Mean undiscounted return of a batch's episodes."""
    return jnp.mean(jnp.sum(batch.reward, axis=0))


def make_optimizer(spec: MamlSpec) -> optax.GradientTransformation:
    return optax.chain(
        optax.clip_by_global_norm(spec.max_grad_norm), optax.adam(spec.outer_learning_rate)
    )


IterationFn = Callable[[TrainingState], tuple[TrainingState, dict[str, jax.Array]]]


def make_iteration_fn(
    spec: MamlSpec, model: PolicyModel, family: TaskFamily, optimizer: optax.GradientTransformation
) -> IterationFn:
    """iteration(state) -> (state, metrics), unjitted; state.env_state is unused (())."""
    collect = make_collect(model, family, spec.episodes_per_task, spec.episode_length)
    adapt = make_adapt(model, spec.inner_steps, spec.first_order)
    tasks_axis = dict(in_axes=(None, None, 0, 0))

    def task_advantages(value_params, normalizer, batch):
        return advantages(model, value_params, normalizer, batch, spec)

    def entropy(policy_params, normalizer, batch: Batch):
        logits = model.sequence_logits(policy_params, normalizer, batch.obs)
        per_dim = model.distribution.create_dist(logits).entropy()
        return masked_mean(jnp.sum(per_dim, axis=-1), batch.alive)

    def outer_loss(
        params: ppo_losses.PPONetworkParams, normalizer, pre, pre_adv, post, post_adv, targets
    ):
        adapted, _ = jax.vmap(adapt, in_axes=(None, None, 0, 0, None))(
            params.policy, normalizer, pre, pre_adv, spec.inner_lr
        )
        policy_loss = jnp.mean(
            jax.vmap(lambda p, b, a: surrogate(model, p, normalizer, b, a, spec.clipping_epsilon))(
                adapted, post, post_adv
            )
        )
        entropy_loss = -spec.entropy_cost * jnp.mean(
            jax.vmap(entropy, in_axes=(0, None, 0))(adapted, normalizer, post)
        )

        def value_loss(batch, target):
            v = model.value(params.value, normalizer, batch.obs)
            return masked_mean(jnp.square(v - target), batch.alive)

        v_loss = (
            VF_COEFFICIENT
            * 0.5
            * jnp.mean(
                jax.vmap(value_loss)(pre, targets[0]) + jax.vmap(value_loss)(post, targets[1])
            )
        )
        total = policy_loss + v_loss + entropy_loss
        return total, {"policy": policy_loss, "value": v_loss, "entropy": entropy_loss}

    def iteration(state: TrainingState):
        key_tasks, key_pre, key_post, key_next = jax.random.split(state.rng, 4)
        m = spec.tasks_per_batch
        params, normalizer = state.params, state.normalizer
        tasks = jax.vmap(family.sample)(jax.random.split(key_tasks, m))
        pre = jax.vmap(collect, **tasks_axis)(
            params.policy, normalizer, tasks, jax.random.split(key_pre, m)
        )
        pre_adv, pre_targets = jax.vmap(task_advantages, in_axes=(None, None, 0))(
            params.value, normalizer, pre
        )
        adapted, inner_norms = jax.vmap(adapt, in_axes=(None, None, 0, 0, None))(
            params.policy, normalizer, pre, pre_adv, spec.inner_lr
        )
        post = jax.vmap(collect, in_axes=(0, None, 0, 0))(
            adapted, normalizer, tasks, jax.random.split(key_post, m)
        )
        post_adv, post_targets = jax.vmap(task_advantages, in_axes=(None, None, 0))(
            params.value, normalizer, post
        )
        grad_fn = jax.value_and_grad(outer_loss, has_aux=True)

        def outer_step(carry, _):
            params, opt_state = carry
            (total, parts), grads = grad_fn(
                params, normalizer, pre, pre_adv, post, post_adv, (pre_targets, post_targets)
            )
            updates, opt_state = optimizer.update(grads, opt_state, params)
            params = optax.apply_updates(params, updates)
            return (params, opt_state), (total, parts, optax.tree.norm(grads))

        (new_params, opt_state), (total, parts, grad_norms) = jax.lax.scan(
            outer_step, (params, state.optimizer_state), None, length=spec.outer_updates
        )
        observations = jnp.concatenate(
            [
                pre.obs.reshape((-1,) + pre.obs.shape[3:]),
                post.obs.reshape((-1,) + post.obs.shape[3:]),
            ]
        )
        new_normalizer = running_statistics.update(normalizer, observations)
        pre_return = jnp.mean(jax.vmap(episode_return)(pre))
        post_return = jnp.mean(jax.vmap(episode_return)(post))
        inner = inner_norms if spec.inner_steps else jnp.zeros((m, 1))
        metrics = {
            "maml/pre_adaptation_return": pre_return,
            "maml/post_adaptation_return": post_return,
            "maml/adaptation_gain": post_return - pre_return,
            "maml/inner_grad_norm": jnp.mean(inner),
            "maml/inner_grad_norm_max": jnp.max(inner),
            "maml/pre_episode_length": jnp.mean(jnp.sum(pre.alive, axis=1)),
            "maml/post_episode_length": jnp.mean(jnp.sum(post.alive, axis=1)),
            "loss/total": jnp.mean(total),
            "loss/policy": jnp.mean(parts["policy"]),
            "loss/value": jnp.mean(parts["value"]),
            "loss/entropy": jnp.mean(parts["entropy"]),
            # max: one non-finite outer gradient must show (max propagates NaN).
            "gradient_norm": jnp.max(grad_norms),
            "params_finite": _all_finite(new_params),
        }
        new_state = state.replace(
            params=new_params,
            optimizer_state=opt_state,
            normalizer=new_normalizer,
            env_steps=state.env_steps + spec.env_steps_per_iteration,
            iteration=state.iteration + 1,
            rng=key_next,
        )
        return new_state, metrics

    return iteration


def _all_finite(tree) -> jax.Array:
    leaves = jax.tree.leaves(tree)
    return jnp.all(jnp.stack([jnp.all(jnp.isfinite(x)) for x in leaves])).astype(jnp.float32)


def init_state(spec: MamlSpec, model: PolicyModel, optimizer) -> TrainingState:
    """A fresh state from spec.seed (no device axis)."""
    key_params, key_train = jax.random.split(jax.random.PRNGKey(spec.seed))
    params = model.init(key_params)
    return TrainingState(
        params=params,
        optimizer_state=optimizer.init(params),
        normalizer=model.init_normalizer(),
        env_state=(),
        env_steps=brax_types.UInt64(hi=jnp.zeros((), jnp.uint32), lo=jnp.zeros((), jnp.uint32)),
        iteration=jnp.zeros((), jnp.int32),
        rng=key_train,
    )


def make_adaptation_eval(
    model: PolicyModel,
    family: TaskFamily,
    episodes_per_task: int,
    episode_length: int,
    spec: MamlSpec,
    inner_steps: int,
) -> Callable[..., dict[str, jax.Array]]:
    """evaluate(params, normalizer, tasks [M], key, inner_lr) -> per-task returns [M]:
    `pre` (the given parameters) and `post` (after `inner_steps` first-order inner steps on the
    pre-adaptation episodes, evaluated on fresh ones), jitted. The same keys for the same tasks
    give the same pre-adaptation episodes, so two initializations compare paired."""
    collect = make_collect(model, family, episodes_per_task, episode_length)
    adapt = make_adapt(model, inner_steps, first_order=True)

    def one(params, normalizer, task, key, inner_lr):
        key_pre, key_post = jax.random.split(key)
        pre = collect(params.policy, normalizer, task, key_pre)
        adv, _ = advantages(model, params.value, normalizer, pre, spec)
        adapted, norms = adapt(params.policy, normalizer, pre, adv, inner_lr)
        post = collect(adapted, normalizer, task, key_post)
        return {"pre": episode_return(pre), "post": episode_return(post)}

    @jax.jit
    def evaluate(params, normalizer, tasks: Any, key, inner_lr):
        keys = jax.random.split(key, jax.tree.leaves(tasks)[0].shape[0])
        return jax.vmap(one, in_axes=(None, None, 0, 0, None))(
            params, normalizer, tasks, keys, inner_lr
        )

    return evaluate
