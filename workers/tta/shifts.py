"""The shift suite: dynamics and sensing changes a trained policy meets at test time.

A shift is a pure function (env config, severity, rng) -> `ShiftParams`, the traced values the
TTA rollout applies (`apply_to_model` edits the MJX model; the rollout applies the rest to the
env state and observation). Every field's neutral value leaves the env as trained, so one
compiled rollout serves every shift and severity. Severity 0 is the clean env; level 1 sits at
the edge of the training randomization and levels 2-5 go beyond it (ladders in LADDERS and
docs/tta.md). The rng draws per-episode directions (centre-of-mass offset, IMU bias).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import flax
import jax
import jax.numpy as jnp
import ml_collections
from mujoco import mjx

SEVERITIES = (1, 2, 3, 4, 5)


@flax.struct.dataclass
class ShiftParams:
    """Per-episode shift values; the defaults are the env as trained."""

    gravity_scale: jax.Array = 1.0  # x |g|
    floor_friction: jax.Array = -1.0  # sliding friction of floor contacts; < 0 keeps the model's
    mass_scale: jax.Array = 1.0  # x every body's mass (and inertia)
    com_offset: jax.Array = dataclasses.field(default_factory=lambda: jnp.zeros(3))  # torso, m
    kp_scale: jax.Array = 1.0  # x every servo's position gain
    action_substeps: jax.Array = -1  # physics substeps before an action acts; < 0 keeps the env's
    push_magnitude: jax.Array = -1.0  # N of every torso push; < 0 keeps the env's
    imu_noise: jax.Array = 0.0  # extra uniform noise, in units of the env's IMU noise scales
    gravity_bias: jax.Array = dataclasses.field(default_factory=lambda: jnp.zeros(3))
    gyro_bias: jax.Array = dataclasses.field(default_factory=lambda: jnp.zeros(3))  # rad/s


def _pick(levels: tuple[float, ...], severity: int) -> float:
    if severity not in SEVERITIES:
        raise ValueError(f"severity must be one of {SEVERITIES}, got {severity}")
    return levels[severity - 1]


def _unit_xy(rng: jax.Array) -> jax.Array:
    angle = jax.random.uniform(rng, (), minval=-jnp.pi, maxval=jnp.pi)
    return jnp.array([jnp.cos(angle), jnp.sin(angle), 0.0])


def _unit(rng: jax.Array) -> jax.Array:
    v = jax.random.normal(rng, (3,))
    return v / jnp.linalg.norm(v)


# Level 1 is the edge of training (or, for what training never varied, a small first step).
LADDERS: dict[str, tuple[float, ...]] = {
    "gravity": (1.05, 1.15, 1.3, 1.5, 1.75),  # x 9.81; training never varies gravity
    "friction": (0.4, 0.3, 0.2, 0.12, 0.06),  # training: U(0.4, 1.0)
    "mass": (1.1, 1.25, 1.4, 1.6, 1.8),  # x all masses; training U(0.9, 1.1)
    "com_offset": (0.0, 0.01, 0.02, 0.03, 0.04),  # m, torso, with "mass"
    "kp": (0.9, 0.75, 0.6, 0.45, 0.3),  # x servo kp; training U(0.9, 1.1)
    "latency": (6, 7, 8, 9, 10),  # substeps of 4 ms; training 4-6; 10 = two control steps
    "push": (1.0, 1.5, 2.0, 2.5, 3.0),  # x the top of the task's training push range
    "imu_noise": (0.0, 2.0, 5.0, 9.0, 14.0),  # extra noise, x the env's IMU noise scales
    "gravity_bias": (0.0, 0.02, 0.04, 0.07, 0.1),  # gravity-direction bias (unit vector)
    "gyro_bias": (0.0, 0.05, 0.1, 0.2, 0.3),  # rad/s
}


def gravity(config: ml_collections.ConfigDict, severity: int, rng: jax.Array) -> ShiftParams:
    """Stronger gravity: a heavier load on every servo and faster falls."""
    del config, rng
    return ShiftParams(gravity_scale=jnp.float32(_pick(LADDERS["gravity"], severity)))


def friction(config: ml_collections.ConfigDict, severity: int, rng: jax.Array) -> ShiftParams:
    """A slippery floor, down to ice (0.06)."""
    del config, rng
    return ShiftParams(floor_friction=jnp.float32(_pick(LADDERS["friction"], severity)))


def mass(config: ml_collections.ConfigDict, severity: int, rng: jax.Array) -> ShiftParams:
    """Heavier links and the torso's centre of mass moved sideways in a random direction."""
    del config
    offset = _pick(LADDERS["com_offset"], severity) * _unit_xy(rng)
    return ShiftParams(mass_scale=jnp.float32(_pick(LADDERS["mass"], severity)), com_offset=offset)


def kp(config: ml_collections.ConfigDict, severity: int, rng: jax.Array) -> ShiftParams:
    """Weaker servos (a low supply voltage, worn gears): position gain scaled down."""
    del config, rng
    return ShiftParams(kp_scale=jnp.float32(_pick(LADDERS["kp"], severity)))


def latency(config: ml_collections.ConfigDict, severity: int, rng: jax.Array) -> ShiftParams:
    """Actions act later: 6-10 physics substeps (24-40 ms) after the control step begins."""
    del config, rng
    return ShiftParams(action_substeps=jnp.int32(_pick(LADDERS["latency"], severity)))


def push(config: ml_collections.ConfigDict, severity: int, rng: jax.Array) -> ShiftParams:
    """Harder torso pushes, on the task's own schedule: 1x-3x the top of its training range."""
    del rng
    top = float(config.push.magnitude[1])
    return ShiftParams(push_magnitude=jnp.float32(top * _pick(LADDERS["push"], severity)))


def imu(config: ml_collections.ConfigDict, severity: int, rng: jax.Array) -> ShiftParams:
    """A worse IMU: extra noise and a constant bias (random direction) on gravity and gyro."""
    del config
    key_gravity, key_gyro = jax.random.split(rng)
    return ShiftParams(
        imu_noise=jnp.float32(_pick(LADDERS["imu_noise"], severity)),
        gravity_bias=_pick(LADDERS["gravity_bias"], severity) * _unit(key_gravity),
        gyro_bias=_pick(LADDERS["gyro_bias"], severity) * _unit(key_gyro),
    )


ShiftFn = Callable[[ml_collections.ConfigDict, int, jax.Array], ShiftParams]
SHIFTS: dict[str, ShiftFn] = {
    "gravity": gravity,
    "friction": friction,
    "mass": mass,
    "kp": kp,
    "latency": latency,
    "push": push,
    "imu": imu,
}


def clean(config: ml_collections.ConfigDict, severity: int, rng: jax.Array) -> ShiftParams:
    """No shift (severity ignored): the env as trained."""
    del config, severity, rng
    return ShiftParams()


def shift_params(
    name: str, config: ml_collections.ConfigDict, severity: int, rngs: jax.Array
) -> ShiftParams:
    """Per-episode params [num_episodes, ...] of shift `name` at `severity` ("clean": none)."""
    if name == "clean":
        fn: ShiftFn = clean
    elif name in SHIFTS:
        fn = SHIFTS[name]
    else:
        raise ValueError(f"unknown shift {name!r}; known: {', '.join(SHIFTS)}")
    return jax.vmap(lambda key: _as_arrays(fn(config, severity, key)))(rngs)


def _as_arrays(params: ShiftParams) -> ShiftParams:
    """Every field a float32 array, action_substeps int32 (one pytree type for jit)."""
    fields = {
        f.name: jnp.asarray(getattr(params, f.name), jnp.float32)
        for f in dataclasses.fields(params)
    }
    fields["action_substeps"] = fields["action_substeps"].astype(jnp.int32)
    return ShiftParams(**fields)


def apply_to_model(env: Any, params: ShiftParams, model: mjx.Model | None = None) -> mjx.Model:
    """`model` (default: the env's nominal model) under one episode's shift (unbatched; vmap it
    over episodes), through the env's public `shifted_model`."""
    return env.shifted_model(
        model,
        floor_friction=params.floor_friction,
        mass_scale=params.mass_scale,
        kp_scale=params.kp_scale,
        com_offset=params.com_offset,
        gravity_scale=params.gravity_scale,
    )


MODEL_FIELDS = (
    "pair_friction",
    "geom_friction",
    "body_mass",
    "body_inertia",
    "body_ipos",
    "actuator_gainprm",
    "actuator_biasprm",
)
