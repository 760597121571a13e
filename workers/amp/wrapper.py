"""AmpFeatureWrapper: the policy side's discriminator windows, kept in `state.info`.

    state.info["amp_history"]  [window, F]   the features of the last `window` states of this
                                             episode, oldest first (after reset: the reset
                                             state's features repeated).
    state.info["amp_window"]   [window * F]  `amp_history` flattened: after a step, the window
                                             ending at the state that step produced.

Where it goes: INSIDE Brax's EpisodeWrapper and AutoResetWrapper, so `amp_window` is computed
from the inner env's new pipeline_state before an auto-reset swaps it: on the step that ends an
episode (a fall or the time limit) `amp_window` holds that episode's real last transition.

Episode boundaries: AutoResetWrapper swaps `pipeline_state` and `obs` back to the first state
when `done`, but leaves `info` alone, so after a terminal step `amp_history` still holds the old
episode. The wrapper therefore starts a fresh history at the start of the next step when the
last step ended an episode: when its own record of the inner env's `done`
(`info["amp_episode_done"]`) is set, or when EpisodeWrapper's `info["steps"]` is 0 (the
auto-reset zeroes it for time limits, which the inner env never sees). The fresh history is the
features of the incoming pipeline_state (the swapped-in first state) repeated, as on reset; the
step then appends the new state's features.

Batching: the wrapper works on one world's state (directly around the base env, under a
VmapWrapper) or on a batch of worlds (leading axes) sitting between a vmap wrapper and the
EpisodeWrapper. With domain randomization it MUST sit outside Brax's
DomainRandomizationVmapWrapper, which calls `env.unwrapped.reset/step` and so skips any wrapper
between itself and the base env; `wrap_for_training` builds that stack.
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp
from brax.envs.base import Env, State, Wrapper
from brax.envs.wrappers import training as brax_training
from mujoco import mjx

from . import features


class AmpFeatureWrapper(Wrapper):
    """Keeps the last `window` frames of AMP features in `state.info` (see the module doc)."""

    def __init__(self, env: Env, window: int):
        super().__init__(env)
        if window < 1:
            raise ValueError(f"window: {window} must be >= 1")
        self.window = window
        self.num_features = features.num_features(env.unwrapped)
        self._feature_fn = features.make_feature_fn(env.unwrapped)

    def _features(self, data: mjx.Data) -> jax.Array:
        """Features [..., F] of a state with any leading (world) axes."""
        fn = self._feature_fn
        for _ in range(data.qpos.ndim - 1):
            fn = jax.vmap(fn)
        return fn(data)

    def _repeated(self, frame: jax.Array) -> jax.Array:
        """[..., F] -> [..., window, F]."""
        return jnp.repeat(frame[..., None, :], self.window, axis=-2)

    def _flat(self, history: jax.Array) -> jax.Array:
        return history.reshape(*history.shape[:-2], self.window * self.num_features)

    def reset(self, rng: jax.Array) -> State:
        state = self.env.reset(rng)
        history = self._repeated(self._features(state.pipeline_state))
        state.info["amp_history"] = history
        state.info["amp_window"] = self._flat(history)
        state.info["amp_episode_done"] = jnp.zeros_like(state.done)
        return state

    def step(self, state: State, action: jax.Array) -> State:
        info = state.info
        new_episode = info["amp_episode_done"] > 0
        if "steps" in info:
            new_episode = new_episode | (info["steps"] == 0)
        fresh = self._repeated(self._features(state.pipeline_state))
        history = jnp.where(new_episode[..., None, None], fresh, info["amp_history"])
        state = self.env.step(state, action)
        frame = self._features(state.pipeline_state)
        history = jnp.concatenate([history[..., 1:, :], frame[..., None, :]], axis=-2)
        state.info["amp_history"] = history
        state.info["amp_window"] = self._flat(history)
        state.info["amp_episode_done"] = state.done
        return state


def wrap_for_training(
    env: Env,
    window: int,
    episode_length: int,
    randomization_fn: Callable | None = None,
) -> Env:
    """Brax's `training.wrap` stack with the AMP features in it:
    AutoReset(Episode(AmpFeature(Vmap or DomainRandomizationVmap(env)))).

    `randomization_fn` as for `brax.envs.wrappers.training.wrap` (model -> (batched model,
    in_axes)), e.g. functools.partial(env.randomization_fn(), rng=keys [num_worlds, 2]).
    """
    if randomization_fn is None:
        batched = brax_training.VmapWrapper(env)
    else:
        batched = brax_training.DomainRandomizationVmapWrapper(env, randomization_fn)
    amp = AmpFeatureWrapper(batched, window)
    episodes = brax_training.EpisodeWrapper(amp, episode_length, action_repeat=1)
    return brax_training.AutoResetWrapper(episodes)
