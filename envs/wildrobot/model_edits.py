"""Edits of WildRobot's MJX model that callers outside envs/ need (TTA shifts, system
identification): public through `WildRobotEnv.shifted_model` and `WildRobotEnv.using_model`,
so no caller reaches into the env's ids."""

from __future__ import annotations

import jax
import jax.numpy as jnp
from mujoco import mjx


def shifted_model(
    model: mjx.Model,
    *,
    floor_geom: int,
    torso_body: int,
    floor_friction: jax.Array | float = -1.0,
    mass_scale: jax.Array | float = 1.0,
    kp_scale: jax.Array | float = 1.0,
    com_offset: jax.Array | None = None,
    gravity_scale: jax.Array | float = 1.0,
) -> mjx.Model:
    """`model` with the floor's friction set (a negative value keeps it), every body but the world
    scaled in mass and inertia, every servo gain scaled, the torso's centre of mass moved by
    `com_offset` [3] and gravity scaled. Unbatched and traceable: vmap it over episodes."""
    friction = jnp.asarray(floor_friction)
    pair = jnp.asarray(model.pair_friction)
    pair = pair.at[:, :2].set(jnp.where(friction >= 0, friction, pair[:, :2]))
    geom = jnp.asarray(model.geom_friction)
    geom = geom.at[floor_geom, 0].set(jnp.where(friction >= 0, friction, geom[floor_geom, 0]))
    scale = jnp.ones(model.nbody).at[1:].set(mass_scale)
    gain = jnp.asarray(model.actuator_gainprm)
    bias = jnp.asarray(model.actuator_biasprm)
    # Position servo: force = kp * ctrl - kp * q (- kp * offset): every kp term scales.
    gain = gain.at[:, 0].multiply(kp_scale)
    bias = bias.at[:, 0].multiply(kp_scale).at[:, 1].multiply(kp_scale)
    offset = jnp.zeros(3) if com_offset is None else jnp.asarray(com_offset)
    ipos = jnp.asarray(model.body_ipos).at[torso_body].add(offset)
    opt = model.opt.replace(gravity=jnp.asarray(model.opt.gravity) * gravity_scale)
    return model.replace(opt=opt).tree_replace(
        {
            "pair_friction": pair,
            "geom_friction": geom,
            "body_mass": jnp.asarray(model.body_mass) * scale,
            "body_inertia": jnp.asarray(model.body_inertia) * scale[:, None],
            "body_ipos": ipos,
            "actuator_gainprm": gain,
            "actuator_biasprm": bias,
        }
    )
