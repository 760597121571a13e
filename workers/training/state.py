"""The training state: one typed pytree, so a checkpoint of it resumes the same run exactly."""

from __future__ import annotations

from typing import Any

import flax
import jax
import optax
from brax.envs.base import State as EnvState
from brax.training import types as brax_types
from brax.training.acme import running_statistics
from brax.training.agents.ppo import losses as ppo_losses


@flax.struct.dataclass
class TrainingState:
    """Everything one jitted iteration reads and writes.

    Under pmap every leaf has a leading device axis: params, optimizer state, normalizer and
    counters are replicated; env_state and rng differ per device.
    """

    params: ppo_losses.PPONetworkParams
    optimizer_state: optax.OptState
    normalizer: running_statistics.RunningStatisticsState
    env_state: EnvState  # [num_envs_per_device, ...]
    env_steps: brax_types.UInt64  # env steps done in total, across devices and resumes
    iteration: jax.Array  # int32 scalar: training iterations done in total
    rng: jax.Array  # PRNG key (raw uint32[2]) for the next iteration
    # An extension's own state (AMP: discriminator, its optimizer and normalizer, replay buffer,
    # reference windows). None for plain PPO: no leaves, so PPO checkpoints are unchanged.
    extension: Any = None
    # An SSM policy's recurrent state per env [num_envs_per_device, layers, state_size], zeroed
    # at every auto-reset; None for MLP policies (no leaves: their checkpoints are unchanged).
    policy_state: Any = None
