"""AMP as an extension of the PPO iteration (workers/training/iteration.py `Extension`).

Inside the one jitted iteration, per device:
1. the rollout collects each transition's feature window (`amp_window`, AmpFeatureWrapper);
2. shape_reward: the style reward from the discriminator as it was when the rollout was
   collected (before this iteration's update), mixed as task_weight * task + style_weight * style;
3. PPO's epochs on the mixed reward;
4. update: the discriminator's observation normalizer sees this rollout's windows and as many
   reference windows; then `disc_updates_per_iteration` Adam steps, each on disc_batch_size
   reference windows against disc_batch_size policy windows (half this rollout, half the replay
   buffer of earlier rollouts); gradients are averaged across devices; this rollout's windows
   then go into the replay buffer;
5. the accuracy controller: the discriminator sees its inputs (in training and when it scores
   the style reward) with Gaussian instance noise whose std moves by disc_noise_step after each
   iteration, up while the discriminator's accuracy is above disc_noise_target and down while it
   is below, so it does not saturate (as StyleGAN2-ADA holds its discriminator's overfitting
   with augmentation strength; instance noise: Sønderby et al. 2016, Arjovsky & Bottou 2017).
The reference windows (features of the clips, workers/amp/reference.py) are part of the state,
so a checkpoint resumes against exactly the same data.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import flax
import jax
import jax.numpy as jnp
import numpy as np
import optax
from brax.envs.base import Env
from brax.training import types as brax_types
from brax.training.acme import running_statistics, specs

from wildrobot.specs import AmpSpec

from ..training.iteration import AXIS
from . import discriminator as disc
from . import replay as replay_lib

NUM_REFERENCE_WINDOWS = 8192
POSE_SAMPLES = 256  # policy windows per iteration scored against POSE_REFERENCES reference ones
POSE_REFERENCES = 1024
NOISE_STREAM = 0x6E6F  # fold_in index of the instance-noise keys (the other draws are unchanged)
MAX_NOISE_STD = 10.0


@flax.struct.dataclass
class AmpState:
    params: Any  # discriminator
    optimizer_state: optax.OptState
    normalizer: running_statistics.RunningStatisticsState  # of the windows, both classes
    replay: replay_lib.Replay
    reference: jax.Array  # [R, window * F]: the clips' windows, the "real" class
    noise_std: jax.Array  # float32: the discriminator's input noise (disc_noise_target)


class AmpExtension:
    state_extras = ("amp_window",)

    def __init__(self, spec: AmpSpec, base_env: Env, motions: Sequence[Any]) -> None:
        from wildrobot.envs.motions.library import MotionLibrary

        from .features import feature_names
        from .reference import reference_windows

        self.spec = spec
        self.module = disc.make_discriminator(spec.disc_hidden_sizes)
        self.optimizer = optax.adam(spec.disc_learning_rate)
        rng = np.random.default_rng(spec.seed)
        library = MotionLibrary(list(motions))
        self.reference = np.asarray(
            reference_windows(
                base_env, library, NUM_REFERENCE_WINDOWS, spec.window, base_env.dt, rng
            ),
            np.float32,
        )
        names = feature_names(base_env)
        self.num_features = len(names)
        self.dim = self.num_features * spec.window
        if self.reference.shape != (NUM_REFERENCE_WINDOWS, self.dim):
            raise ValueError(f"reference windows {self.reference.shape}, expected [*, {self.dim}]")
        # The last frame's joint positions: what the pose-tracking distance compares.
        last = self.dim - self.num_features
        self.joint_columns = np.array(
            [last + i for i, name in enumerate(names) if name.startswith("jpos_")]
        )
        if len(self.joint_columns) == 0:
            raise ValueError("the features have no jpos_ (joint position) columns")

    def wrap_env(self, env: Env, episode_length: int, randomization_fn: Any) -> Env:
        from .wrapper import wrap_for_training

        return wrap_for_training(env, self.spec.window, episode_length, randomization_fn)

    def init(self, key: jax.Array) -> AmpState:
        params = self.module.init(key, jnp.zeros((1, self.dim)))
        return AmpState(
            params=params,
            optimizer_state=self.optimizer.init(params),
            normalizer=running_statistics.init_state(
                specs.Array((self.dim,), jnp.dtype("float32"))
            ),
            replay=replay_lib.empty(self.spec.replay_size, self.dim),
            reference=jnp.asarray(self.reference),
            noise_std=jnp.zeros((), jnp.float32),
        )

    def trainable(self, state: AmpState) -> Any:
        return state.params

    def _normalize(self, state: AmpState, x: jax.Array) -> jax.Array:
        return running_statistics.normalize(x, state.normalizer)

    def _seen(self, state: AmpState, x: jax.Array, key: jax.Array) -> jax.Array:
        """What the discriminator sees of windows x: normalized, plus Gaussian instance noise of
        std state.noise_std (in normalized units; exactly x when it is 0). The same on both
        classes, in training and in the style reward, so the accuracy and the reward are those of
        one discriminator."""
        x = self._normalize(state, x)
        return x + state.noise_std * jax.random.normal(key, x.shape, x.dtype)

    def shape_reward(
        self, state: AmpState, data: brax_types.Transition, key: jax.Array
    ) -> tuple[jax.Array, dict[str, jax.Array]]:
        spec = self.spec
        windows = data.extras["state_extras"]["amp_window"]  # [B, T, D]
        noise_key = jax.random.fold_in(key, NOISE_STREAM)
        d = disc.logits(self.module, state.params, self._seen(state, windows, noise_key))
        style = disc.style_reward(d, spec.disc_loss)
        rewards = spec.task_weight * data.reward + spec.style_weight * style
        metrics = {
            "amp/style_reward": jax.lax.pmean(jnp.mean(style), AXIS),
            "amp/task_reward": jax.lax.pmean(jnp.mean(data.reward), AXIS),
            "amp/pose_distance": jax.lax.pmean(
                self._pose_distance(state, windows.reshape(-1, self.dim), key), AXIS
            ),
        }
        return rewards, metrics

    def _pose_distance(self, state: AmpState, windows: jax.Array, key: jax.Array) -> jax.Array:
        """Mean over sampled policy windows of the RMS joint-position difference (rad) to the
        nearest of a sample of reference windows (last frame of each window)."""
        key_p, key_r = jax.random.split(key)
        cols = self.joint_columns
        policy = windows[jax.random.randint(key_p, (POSE_SAMPLES,), 0, windows.shape[0])][:, cols]
        rows = jax.random.randint(key_r, (POSE_REFERENCES,), 0, state.reference.shape[0])
        reference = state.reference[rows][:, cols]
        sq = jnp.mean(jnp.square(policy[:, None, :] - reference[None, :, :]), axis=-1)
        return jnp.mean(jnp.sqrt(jnp.min(sq, axis=1)))

    def update(
        self, state: AmpState, data: brax_types.Transition, key: jax.Array
    ) -> tuple[AmpState, dict[str, jax.Array]]:
        spec = self.spec
        windows = data.extras["state_extras"]["amp_window"].reshape(-1, self.dim)
        n = windows.shape[0]
        key_norm, key_steps = jax.random.split(key)
        reference = state.reference
        ref_rows = jax.random.randint(key_norm, (n,), 0, reference.shape[0])
        normalizer = running_statistics.update(
            state.normalizer,
            jnp.concatenate([windows, reference[ref_rows]]),
            pmap_axis_name=AXIS,
        )
        state = state.replace(normalizer=normalizer)
        batch = spec.disc_batch_size
        half = batch // 2
        loss = lambda p, xr, xp: disc.loss_fn(  # noqa: E731
            p, self.module, xr, xp, spec.disc_loss, spec.grad_penalty, spec.logit_reg
        )

        def step(carry, step_key):
            params, opt_state = carry
            k_ref, k_now, k_old = jax.random.split(step_key, 3)
            x_ref = reference[jax.random.randint(k_ref, (batch,), 0, reference.shape[0])]
            now = windows[jax.random.randint(k_now, (batch,), 0, n)]
            old = replay_lib.sample(state.replay, k_old, batch - half)
            # An empty replay (the first iteration) gives its half to this rollout.
            old = jnp.where(state.replay.size > 0, old, now[half:])
            x_policy = jnp.concatenate([now[:half], old])
            k_noise_ref, k_noise_policy = jax.random.split(
                jax.random.fold_in(step_key, NOISE_STREAM)
            )
            (_, metrics), grads = jax.value_and_grad(loss, has_aux=True)(
                params,
                self._seen(state, x_ref, k_noise_ref),
                self._seen(state, x_policy, k_noise_policy),
            )
            # How well the same discriminator tells the noiseless windows apart (equal to the
            # accuracies above when there is no noise).
            clean_ref = disc.logits(self.module, params, self._normalize(state, x_ref))
            clean_policy = disc.logits(self.module, params, self._normalize(state, x_policy))
            metrics["amp/accuracy_ref_noiseless"] = jnp.mean(clean_ref > 0)
            metrics["amp/accuracy_policy_noiseless"] = jnp.mean(clean_policy < 0)
            grads = jax.lax.pmean(grads, AXIS)
            updates, opt_state = self.optimizer.update(grads, opt_state, params)
            return (optax.apply_updates(params, updates), opt_state), metrics

        (params, opt_state), metrics = jax.lax.scan(
            step,
            (state.params, state.optimizer_state),
            jax.random.split(key_steps, spec.disc_updates_per_iteration),
        )
        metrics = {k: jax.lax.pmean(jnp.mean(v), AXIS) for k, v in metrics.items()}
        metrics["amp/noise_std"] = state.noise_std
        new_state = state.replace(
            params=params,
            optimizer_state=opt_state,
            replay=replay_lib.insert(state.replay, windows),
            noise_std=self._next_noise_std(state.noise_std, metrics),
        )
        return new_state, metrics

    def _next_noise_std(self, noise_std: jax.Array, metrics: dict[str, jax.Array]) -> jax.Array:
        """The accuracy controller (as StyleGAN2-ADA's for its augmentation strength): after each
        iteration the noise grows by disc_noise_step when the discriminator's accuracy (the mean of
        both classes over this iteration's steps, on what it saw) was above disc_noise_target, and
        shrinks by as much when below, within [0, MAX_NOISE_STD]. A target of 1 never adds noise."""
        accuracy = disc.mean_accuracy(metrics)
        step = self.spec.disc_noise_step * jnp.sign(accuracy - self.spec.disc_noise_target)
        return jnp.clip(noise_std + step, 0.0, MAX_NOISE_STD).astype(noise_std.dtype)
