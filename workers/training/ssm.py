"""A diagonal linear state-space model (LRU-style, real diagonal) with a resettable scan.

One layer maps inputs u_t [H] to outputs y_t [H] through a state x_t [P]:

    x_t = a * (1 - r_t) * x_{t-1} + (1 - a) * (u_t @ B)    a = exp(-exp(nu)) in (0, 1)
    y_t = u_t + elu(x_t @ C + d * u_t) @ W + w

r_t = 1 starts a new episode at step t: the state carried into it is zeroed. The decay a is
parametrized through nu so it stays in (0, 1) whatever the optimizer does (stable), and is
initialized uniformly in [R_MIN, R_MAX] (Orvieto et al. 2023). The input scale (1 - a) makes
each state an exponential moving average of its input projection (unit gain for a constant
input, whatever the time scale), where LRU's sqrt(1 - a^2) normalizes white-noise inputs:
robot observations vary slowly, and with sqrt(1 - a^2) the slow states grew to ~15x their input
and float32 rounding differences (JAX vs onnxruntime) grew with them. Training runs the recurrence over a whole segment with
`jax.lax.associative_scan` (`scan_layer`); acting steps it once per control step (`step_layer`);
both compute the same x_t (tests/training/test_ssm.py).

The policy (`SsmPolicy`): obs -> Dense(width) -> elu -> `layers` SSM layers -> Dense(2 * A),
the tanh-normal parameters Brax's PPO samples from. Its recurrent state is [layers, state_size]
per env; zeros at an episode's start.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import jax
import jax.numpy as jnp
from flax import linen

R_MIN = 0.5  # initial decay range: memory of ~1.4 to ~100 control steps (1/(1 - a))
R_MAX = 0.99


def reset_operator(left, right):
    """Associative: composes x -> a_l x + b_l then x -> a_r x + b_r, unless `right` resets.

    Elements are (a, b, reset); a reset element discards everything before it (its own a
    already multiplies a zeroed state), so the scan never carries state across an episode start.
    """
    a_l, b_l, r_l = left
    a_r, b_r, r_r = right
    return (
        jnp.where(r_r, a_r, a_r * a_l),
        jnp.where(r_r, b_r, a_r * b_l + b_r),
        jnp.logical_or(r_l, r_r),
    )


def resettable_scan(a: jax.Array, b: jax.Array, resets: jax.Array, x0: jax.Array) -> jax.Array:
    """x_t = (1 - r_t) a_t x_{t-1} + b_t for t = 0..T-1 from x_{-1} = x0, in parallel.

    a: [T, ..., P] or broadcastable to b (e.g. [P]); b: [T, ..., P]; resets: [T, ...] (bool or 0/1); x0: [..., P]. Returns x [T, ..., P].
    """
    r = resets.astype(bool)[..., None]
    a = jnp.broadcast_to(a, b.shape)
    # Fold the initial state into the first element; a reset there zeroes it too.
    b = b.at[0].add(jnp.where(r[0], 0.0, a[0] * x0))
    r = r.at[0].set(True)
    _, x, _ = jax.lax.associative_scan(reset_operator, (a, b, jnp.broadcast_to(r, b.shape)))
    return x


def sequential_scan(a: jax.Array, b: jax.Array, resets: jax.Array, x0: jax.Array) -> jax.Array:
    """The same recurrence one step at a time (the reference for `resettable_scan`)."""
    a = jnp.broadcast_to(a, b.shape)

    def step(x, inputs):
        a_t, b_t, r_t = inputs
        x = jnp.where(r_t.astype(bool)[..., None], 0.0, x) * a_t + b_t
        return x, x

    return jax.lax.scan(step, x0, (a, b, resets))[1]


def _nu_init(key, shape, dtype=jnp.float32):
    """nu with a = exp(-exp(nu)) uniform in [R_MIN, R_MAX]."""
    radius = jax.random.uniform(key, shape, dtype, R_MIN, R_MAX)
    return jnp.log(-jnp.log(radius))


class SsmLayer(linen.Module):
    """One diagonal SSM layer with a residual nonlinear readout (see the module docstring)."""

    width: int
    state_size: int

    def setup(self):
        h, p = self.width, self.state_size
        self.nu = self.param("nu", _nu_init, (p,))
        self.B = self.param("B", linen.initializers.normal(1.0 / math.sqrt(h)), (h, p))
        self.C = self.param("C", linen.initializers.normal(1.0 / math.sqrt(p)), (p, h))
        self.d = self.param("d", linen.initializers.normal(1.0), (h,))
        self.out = linen.Dense(h, kernel_init=linen.initializers.lecun_normal())

    def decay(self) -> tuple[jax.Array, jax.Array]:
        """(a, input scale 1 - a)."""
        a = jnp.exp(-jnp.exp(self.nu))
        return a, 1.0 - a

    def readout(self, u: jax.Array, x: jax.Array) -> jax.Array:
        return u + self.out(linen.elu(x @ self.C + self.d * u))

    def __call__(self, u: jax.Array, x0: jax.Array, resets: jax.Array):
        """u [T, B, H], x0 [B, P], resets [T, B] -> (y [T, B, H], x_T [B, P])."""
        a, scale = self.decay()
        x = resettable_scan(a, scale * (u @ self.B), resets, x0)
        return self.readout(u, x), x[-1]

    def step(self, u: jax.Array, x: jax.Array):
        """u [..., H], x [..., P] (already zeroed at an episode start) -> (y, x')."""
        a, scale = self.decay()
        x = a * x + scale * (u @ self.B)
        return self.readout(u, x), x


class SsmPolicy(linen.Module):
    """Encoder, `layers` SSM layers, decoder to `output_size` (2 x actions) distribution params."""

    output_size: int
    width: int
    state_size: int
    layers: int

    def setup(self):
        self.encoder = linen.Dense(self.width, kernel_init=linen.initializers.lecun_normal())
        self.ssm = [SsmLayer(self.width, self.state_size) for _ in range(self.layers)]
        self.decoder = linen.Dense(self.output_size, kernel_init=linen.initializers.lecun_normal())

    def __call__(self, obs: jax.Array, state: jax.Array, resets: jax.Array):
        """obs [T, B, O], state [B, layers, P] at the segment's start, resets [T, B]
        -> (params [T, B, output_size], state after the last step [B, layers, P])."""
        u = linen.elu(self.encoder(obs))
        finals = []
        for i, layer in enumerate(self.ssm):
            u, final = layer(u, state[:, i], resets)
            finals.append(final)
        return self.decoder(u), jnp.stack(finals, axis=1)

    def step(self, obs: jax.Array, state: jax.Array):
        """obs [..., O], state [..., layers, P] -> (params [..., output_size], state')."""
        u = linen.elu(self.encoder(obs))
        states = []
        for i, layer in enumerate(self.ssm):
            u, x = layer.step(u, state[..., i, :])
            states.append(x)
        return self.decoder(u), jnp.stack(states, axis=-2)


def state_shape(layers: int, state_size: int, batch: Sequence[int] = ()) -> tuple[int, ...]:
    return (*batch, layers, state_size)
