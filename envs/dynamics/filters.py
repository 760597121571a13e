"""Kinematics from sampled positions: zero-phase smoothing and MuJoCo-consistent differences.

All functions take arrays of a padded length `[T_pad, ...]` plus the true length `length` (a
traced scalar), so one compiled program serves every trial length up to `T_pad`. Frames at or
beyond `length` are padding: they are never read by frames before it.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp


def _clip_index(index: jax.Array, length: jax.Array) -> jax.Array:
    return jnp.clip(index, 0, length - 1)


def align_quaternions(quat: jax.Array) -> jax.Array:
    """Flips signs so consecutive quaternions lie in the same hemisphere.

    quat: [T, 4] (w, x, y, z). Smoothing averages components, which is only meaningful when q and
    -q (the same rotation) are not mixed.
    """
    dots = jnp.sum(quat[1:] * quat[:-1], axis=-1)
    flips = jnp.concatenate([jnp.ones((1,), quat.dtype), jnp.where(dots < 0, -1.0, 1.0)])
    return quat * jnp.cumprod(flips)[:, None]


def moving_average(x: jax.Array, window: int, length: jax.Array) -> jax.Array:
    """Centered (zero-phase) moving average of odd `window` over axis 0.

    x: [T_pad, ...]. Beyond both ends of the first `length` frames the signal is extended by odd
    reflection (2 x_end - x_mirror), which keeps straight lines straight, so the ends are not
    pulled toward a constant.
    """
    if window <= 1:
        return x
    half = window // 2
    t = jnp.arange(x.shape[0])[:, None] + jnp.arange(-half, half + 1)[None, :]  # [T_pad, W]
    last = length - 1
    below, above = t < 0, t > last
    mirror = jnp.where(below, -t, jnp.where(above, 2 * last - t, t))
    anchor = jnp.where(below, 0, last)
    values = x[_clip_index(mirror, length)]  # [T_pad, W, ...]
    ends = x[_clip_index(anchor, length)]
    outside = (below | above).reshape(t.shape + (1,) * (x.ndim - 1))
    values = jnp.where(outside, 2 * ends - values, values)
    return jnp.mean(values, axis=1)


def quat_log(q: jax.Array) -> jax.Array:
    """Rotation vector (axis * angle) of a unit quaternion [4]; gradient-safe at zero rotation."""
    q = jnp.where(q[0] < 0, -q, q)
    vec = q[1:]
    sin2 = jnp.sum(vec * vec)
    small = sin2 < 1e-12
    sin = jnp.sqrt(jnp.where(small, 1.0, sin2))
    angle = 2.0 * jnp.arctan2(sin, q[0])
    scale = jnp.where(small, 2.0 / q[0], angle / sin)
    return vec * scale


def quat_mul(u: jax.Array, v: jax.Array) -> jax.Array:
    w = u[0] * v[0] - jnp.dot(u[1:], v[1:])
    xyz = u[0] * v[1:] + v[0] * u[1:] + jnp.cross(u[1:], v[1:])
    return jnp.concatenate([w[None], xyz])


def quat_conj(q: jax.Array) -> jax.Array:
    return q * jnp.array([1.0, -1.0, -1.0, -1.0], q.dtype)


def differentiate_pos(q1: jax.Array, q0: jax.Array, h: jax.Array) -> jax.Array:
    """MuJoCo's mj_differentiatePos for a free root followed by hinge/slide joints.

    q1, q0: [nq] with nq = 7 + n; returns [nv] = [6 + n]: world linear velocity, local angular
    velocity (log(q0^-1 q1) / h), then joint rates.
    """
    lin = (q1[:3] - q0[:3]) / h
    ang = quat_log(quat_mul(quat_conj(q0[3:7]), q1[3:7])) / h
    joints = (q1[7:] - q0[7:]) / h
    return jnp.concatenate([lin, ang, joints])


def discrete_velocity(qpos: jax.Array, h: jax.Array, length: jax.Array) -> jax.Array:
    """qvel_t = (q_t - q_{t-1}) / h, the velocity MuJoCo's Euler step used to reach q_t.

    qpos: [T_pad, nq] -> [T_pad, nv]. Frame 0 has no predecessor; it copies frame 1.
    """
    t = jnp.arange(qpos.shape[0])
    cur = jnp.clip(t, 1, jnp.maximum(length - 1, 1))
    prev = cur - 1
    return jax.vmap(differentiate_pos, in_axes=(0, 0, None))(qpos[cur], qpos[prev], h)


def discrete_acceleration(
    qvel: jax.Array, h: jax.Array, length: jax.Array, first: int = 0
) -> jax.Array:
    """qacc_t = (v_{t+1} - v_t) / h, MuJoCo's discrete (INVDISCRETE) acceleration.

    qvel: [T_pad, nv] -> [T_pad, nv]. `first` is the first frame whose velocity is real (1 when
    the velocities themselves came from differences); frames before it and the last frame (no
    successor) copy their nearest neighbour.
    """
    t = jnp.arange(qvel.shape[0])
    cur = jnp.clip(t, first, jnp.maximum(length - 2, first))
    nxt = jnp.minimum(cur + 1, length - 1)
    return (qvel[nxt] - qvel[cur]) / h
