"""The robot as it is (shared/WILDROBOT.md): action delay line, IMU latency, servo backlash and
pushes, each drawn per episode from the env config's ranges. Pure functions of the config,
the per-episode info entries and keys; WildRobotEnv (base.py) calls them from `reset`, `step`
and its physics substeps.

- action delay (`latency.action_substeps`): the new servo targets reach the servos after this
  many physics substeps; until then the previous control step's targets (or the one before)
  act. The delay line holds the targets of the last two control steps (`info["targets"]`).
- IMU latency (`latency.imu_steps`): the observed gravity and gyro lag the truth by this
  fraction of a control step (linear interpolation between the last two control-step readings).
- servo backlash (`backlash`): a dead band of this half-width (rad) on each servo's position
  error, re-applied at every physics substep: inside the band the servo exerts no holding torque.
- pushes (`push.*`): a horizontal force on the torso for `duration_steps` control steps, the next
  one `interval_steps` later, in a random direction with a random magnitude.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import ml_collections

from . import constants


def episode_draws(
    cfg: ml_collections.ConfigDict,
    key_push: jax.Array,
    key_delay: jax.Array,
    key_imu: jax.Array,
    key_backlash: jax.Array,
) -> dict[str, jax.Array]:
    """The per-episode info entries of the delay line, IMU latency, backlash and pushes."""
    delay = cfg.latency.action_substeps
    return {
        "push_timer": jnp.zeros((), jnp.int32),
        **sample_push(cfg.push, key_push),
        "action_substeps": jax.random.randint(key_delay, (), delay[0], delay[1] + 1),
        "imu_lag": jax.random.uniform(
            key_imu, (), minval=cfg.latency.imu_steps[0], maxval=cfg.latency.imu_steps[1]
        ),
        "backlash": jax.random.uniform(
            key_backlash,
            (constants.NUM_ACTUATORS,),
            minval=cfg.backlash[0],
            maxval=cfg.backlash[1],
        ),
    }


def initial_targets(home_ctrl: jax.Array) -> jax.Array:
    """The delay line at the start of an episode [2, 17]: the home targets twice."""
    return jnp.broadcast_to(home_ctrl, (2, constants.NUM_ACTUATORS))


def push_targets(line: jax.Array, target: jax.Array) -> jax.Array:
    """[3, 17]: the targets of two control steps ago, of the last one, and the new `target`."""
    return jnp.concatenate([line, target[None]])


def delayed_target(
    targets: jax.Array, substep: jax.Array, delay: jax.Array, num_substeps: int
) -> jax.Array:
    """The targets acting at physics `substep` of this control step [17]: those issued
    (substep - delay) substeps after this step began (targets [3, 17] from `push_targets`)."""
    age = jnp.clip(2 + jnp.floor_divide(substep - delay, num_substeps), 0, 2)
    return targets[age]


def backlash_ctrl(target: jax.Array, measured: jax.Array, backlash: jax.Array) -> jax.Array:
    """The position command [17] a servo with a dead band of half-width `backlash` acts on."""
    error = target - measured
    dead_band = jnp.sign(error) * jnp.maximum(jnp.abs(error) - backlash, 0.0)
    return measured + dead_band


def lagged_imu(imu: jax.Array, imu_prev: jax.Array, lag: jax.Array) -> jax.Array:
    """The observed IMU reading [6]: `imu` lagging by `lag` control steps towards `imu_prev`."""
    return imu + lag * (imu_prev - imu)


def sample_push(push: ml_collections.ConfigDict, rng: jax.Array) -> dict[str, jax.Array]:
    """The next push: its start (control steps after the last) and its force [3]."""
    key_start, key_angle, key_magnitude = jax.random.split(rng, 3)
    start = jax.random.randint(key_start, (), push.interval_steps[0], push.interval_steps[1] + 1)
    angle = jax.random.uniform(key_angle, (), minval=-jnp.pi, maxval=jnp.pi)
    magnitude = jax.random.uniform(
        key_magnitude, (), minval=push.magnitude[0], maxval=push.magnitude[1]
    )
    force = magnitude * jnp.array([jnp.cos(angle), jnp.sin(angle), 0.0])
    return {"push_start": start, "push_force": force}


def push_step(
    push: ml_collections.ConfigDict, info: dict[str, Any], rng: jax.Array
) -> tuple[jax.Array, dict[str, jax.Array]]:
    """This control step's push force [3] and the push schedule after it."""
    timer = info["push_timer"] + 1
    end = info["push_start"] + push.duration_steps
    active = (timer >= info["push_start"]) & (timer < end) & push.enable
    force = jnp.where(active, info["push_force"], 0.0)
    finished = timer >= end
    fresh = sample_push(push, rng)
    schedule = {
        "push_timer": jnp.where(finished, 0, timer),
        "push_start": jnp.where(finished, fresh["push_start"], info["push_start"]),
        "push_force": jnp.where(finished, fresh["push_force"], info["push_force"]),
    }
    return force, schedule
