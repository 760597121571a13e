"""`maml`: adaptation from the robot's own episodes before the evaluated one (docs/maml.md).

Before each evaluated episode the rollout (workers/tta/rollout.py) runs `adapt_episodes`
episodes of the same shifted env with the current policy *sampling* its actions, and hands them
to `prepare`: `adapt_steps` inner steps of MAML's policy-gradient surrogate (workers/maml/
algorithm.py: GAE advantages from the checkpoint's value network, normalized over the batch, no
bootstrap at the horizon) on the policy parameters, from the checkpoint's (the meta-initialization
when it comes from a `maml` job; any PPO checkpoint works too). The evaluated episode then acts
deterministically with the adapted parameters, as `none` does with the checkpoint's.

What it uses: the measured observations of its own adaptation episodes (the shift's sensor
corruption included), the actions it took and the task reward of those episodes (on a robot, the
reward comes from its own estimate of its motion; here it is the env's). Never the simulator
state, the shift or its values.

Guards (the shared `Guards`): the inner gradient is clipped to `max_grad_norm` (global), each
parameter moves at most `max_step` per inner step and at most `trust_radius` from the checkpoint
in all; a non-finite loss or parameter skips the step. At rate 0 the parameters stay the
checkpoint's exactly and `maml` acts as `none` does, to float rounding: its per-episode weights
make the policy's matmul a batched one (returns agree to about 1e-5 relative).
"""

from __future__ import annotations

import types
from typing import Any

import flax
import jax
import jax.numpy as jnp
import optax

from ..maml.algorithm import Batch, advantages, surrogate
from ..maml.policy import PolicyModel
from .adapters import Guards, Source, SourceParams, _clip_global, deterministic_action, register


@flax.struct.dataclass
class MamlState:
    policy: Any  # the adapted policy parameters (the checkpoint's until `prepare`)
    rate: jax.Array  # inner learning rate: state, so one compile serves every rate
    grad_norm: jax.Array  # mean inner-gradient norm (before clipping) of the last adaptation
    updates: jax.Array  # inner steps taken (skipped ones not counted)
    skipped: jax.Array  # inner steps skipped for a non-finite loss or parameter


@register("maml")
class MamlAdaptation:
    name = "maml"

    def __init__(
        self,
        source: Source,
        learning_rate: float = 0.05,
        adapt_steps: int = 1,
        adapt_episodes: int = 1,
        discount: float = 0.97,
        gae_lambda: float = 0.95,
        guards: Guards | None = None,
        **_: Any,
    ) -> None:
        if adapt_steps < 1 or adapt_episodes < 1:
            raise ValueError(
                f"maml needs adapt_steps >= 1 and adapt_episodes >= 1, got {adapt_steps} and "
                f"{adapt_episodes}"
            )
        self.networks, self.rate = source.networks, learning_rate
        self.adapt_steps, self.adapt_episodes = adapt_steps, adapt_episodes
        self.model = PolicyModel(config=None, networks=source.networks)
        # advantages() reads these three settings of a MamlSpec.
        self.gae = types.SimpleNamespace(
            reward_scaling=1.0, discounting=discount, gae_lambda=gae_lambda
        )
        self.guards = guards or Guards(max_grad_norm=1.0, max_step=0.05, trust_radius=0.5)

    def init(self, params: SourceParams) -> MamlState:
        count = jnp.zeros((), jnp.int32)
        return MamlState(
            params.policy, jnp.asarray(self.rate, jnp.float32), jnp.zeros(()), count, count
        )

    def behaviour_policy(self, state: MamlState) -> Any:
        """The parameters the adaptation episodes sample from."""
        return state.policy

    def prepare(self, params: SourceParams, state: MamlState, batch: Batch) -> MamlState:
        """`adapt_steps` guarded inner steps on one episode slot's batch [T, adapt_episodes]."""
        g = self.guards
        adv, _ = advantages(self.model, params.value, params.normalizer, batch, self.gae)

        def loss_fn(policy):
            return surrogate(self.model, policy, params.normalizer, batch, adv, clip=None)

        def inner(carry, _):
            policy, updates, skipped = carry
            loss, grads = jax.value_and_grad(loss_fn)(policy)
            norm = optax.tree.norm(grads)
            grads = _clip_global(grads, g.max_grad_norm)
            stepped = jax.tree.map(
                lambda p, grad, p0: jnp.clip(
                    p + jnp.clip(-state.rate * grad, -g.max_step, g.max_step),
                    p0 - g.trust_radius,
                    p0 + g.trust_radius,
                ),
                policy,
                grads,
                params.policy,
            )
            finite = jnp.isfinite(loss) & jnp.all(
                jnp.stack([jnp.all(jnp.isfinite(x)) for x in jax.tree.leaves(stepped)])
            )
            policy = jax.tree.map(lambda new, old: jnp.where(finite, new, old), stepped, policy)
            return (policy, updates + finite, skipped + ~finite), norm

        (policy, updates, skipped), norms = jax.lax.scan(
            inner, (state.policy, state.updates, state.skipped), None, length=self.adapt_steps
        )
        return state.replace(
            policy=policy, grad_norm=jnp.mean(norms), updates=updates, skipped=skipped
        )

    def act(self, params: SourceParams, state: MamlState, obs, key):
        del key
        return deterministic_action(self.networks, params.normalizer, state.policy, obs), state

    def reset(self, params: SourceParams, state: MamlState) -> MamlState:
        return self.init(params).replace(
            rate=state.rate, updates=state.updates, skipped=state.skipped
        )

    def counters(self, state: MamlState) -> dict[str, jax.Array]:
        return {"inner_steps": state.updates, "skipped_inner_steps": state.skipped}

    def diagnostics(self, state: MamlState) -> dict[str, jax.Array]:
        """Per episode, for the report (`diag/` values, averaged per cell)."""
        return {"inner_grad_norm": state.grad_norm}

    def cost(self) -> dict[str, float]:
        return {
            "policy_forwards": 1.0,
            "backward_passes": 0.0,
            # Per evaluated episode, before it: the adaptation episodes and the inner steps.
            "adapt_episodes_per_episode": float(self.adapt_episodes),
            "inner_steps_per_episode": float(self.adapt_steps),
        }
