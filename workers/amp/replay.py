"""A fixed-size ring buffer of past policy windows, inside the jitted training state.

The discriminator sees half its policy samples from here (earlier iterations' policies) and half
from the current rollout, so it does not over-fit the latest batch (AMP paper, MimicKit).
"""

from __future__ import annotations

import flax
import jax
import jax.numpy as jnp


@flax.struct.dataclass
class Replay:
    data: jax.Array  # [capacity, D]
    position: jax.Array  # int32: the next row to write
    size: jax.Array  # int32: rows holding data (<= capacity)


def empty(capacity: int, dim: int) -> Replay:
    zero = jnp.zeros((), jnp.int32)
    return Replay(data=jnp.zeros((capacity, dim), jnp.float32), position=zero, size=zero)


def insert(replay: Replay, batch: jax.Array) -> Replay:
    """Writes `batch` [n, D] after the last write, wrapping; n > capacity keeps the last rows."""
    capacity = replay.data.shape[0]
    batch = batch[-capacity:]
    n = batch.shape[0]
    rows = (replay.position + jnp.arange(n)) % capacity
    return Replay(
        data=replay.data.at[rows].set(batch.astype(replay.data.dtype)),
        position=(replay.position + n) % capacity,
        size=jnp.minimum(replay.size + n, capacity),
    )


def sample(replay: Replay, key: jax.Array, n: int) -> jax.Array:
    """n rows drawn uniformly (with replacement) from the filled part; zeros when it is empty."""
    rows = jax.random.randint(key, (n,), 0, jnp.maximum(replay.size, 1))
    return replay.data[rows]
