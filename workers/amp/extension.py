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
   then go into the replay buffer.
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
from wildrobot.workers.amp import discriminator as disc
from wildrobot.workers.amp import replay as replay_lib
from wildrobot.workers.training.iteration import AXIS

NUM_REFERENCE_WINDOWS = 8192
POSE_SAMPLES = 256  # policy windows per iteration scored against POSE_REFERENCES reference ones
POSE_REFERENCES = 1024


@flax.struct.dataclass
class AmpState:
    params: Any  # discriminator
    optimizer_state: optax.OptState
    normalizer: running_statistics.RunningStatisticsState  # of the windows, both classes
    replay: replay_lib.Replay
    reference: jax.Array  # [R, window * F]: the clips' windows, the "real" class


class AmpExtension:
    state_extras = ("amp_window",)

    def __init__(self, spec: AmpSpec, base_env: Env, motions: Sequence[Any]) -> None:
        from wildrobot.envs.motions.library import MotionLibrary
        from wildrobot.workers.amp.features import feature_names
        from wildrobot.workers.amp.reference import reference_windows

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
        from wildrobot.workers.amp.wrapper import wrap_for_training

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
        )

    def trainable(self, state: AmpState) -> Any:
        return state.params

    def _normalize(self, state: AmpState, x: jax.Array) -> jax.Array:
        return running_statistics.normalize(x, state.normalizer)

    def shape_reward(
        self, state: AmpState, data: brax_types.Transition, key: jax.Array
    ) -> tuple[jax.Array, dict[str, jax.Array]]:
        spec = self.spec
        windows = data.extras["state_extras"]["amp_window"]  # [B, T, D]
        d = disc.logits(self.module, state.params, self._normalize(state, windows))
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
            (_, metrics), grads = jax.value_and_grad(loss, has_aux=True)(
                params, self._normalize(state, x_ref), self._normalize(state, x_policy)
            )
            grads = jax.lax.pmean(grads, AXIS)
            updates, opt_state = self.optimizer.update(grads, opt_state, params)
            return (optax.apply_updates(params, updates), opt_state), metrics

        (params, opt_state), metrics = jax.lax.scan(
            step,
            (state.params, state.optimizer_state),
            jax.random.split(key_steps, spec.disc_updates_per_iteration),
        )
        metrics = {k: jax.lax.pmean(jnp.mean(v), AXIS) for k, v in metrics.items()}
        new_state = state.replace(
            params=params,
            optimizer_state=opt_state,
            replay=replay_lib.insert(state.replay, windows),
        )
        return new_state, metrics
