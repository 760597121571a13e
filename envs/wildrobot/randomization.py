"""Domain randomization: a pure function of (MJX model, rng) -> randomized model.

`randomize` draws one world; `make_randomization_fn` batches it in the shape Brax's
`DomainRandomizationVmapWrapper` (and `ppo.train(randomization_fn=...)`) expects:
`fn(model, rng[N, 2]) -> (batched model, in_axes)`. Pushes are not a model parameter: the envs
apply them during the episode (see `base.py`).

Joint offsets model a servo calibration error delta: the servo computes its error from q + delta,
so it holds q = ctrl - delta while its encoder reads q + delta. Both live in the actuator bias
(biasprm[0] = -kp * delta), so the env recovers the encoder reading from the model alone.

The ranges are the task config's `randomization` settings (wildrobot.task_settings; defaults from
shared/WILDROBOT.md).
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp
import ml_collections
from mujoco import mjx

RANDOMIZED_FIELDS = (
    "pair_friction",
    "geom_friction",
    "body_mass",
    "body_inertia",
    "actuator_gainprm",
    "actuator_biasprm",
    "dof_frictionloss",
)


def randomize(
    model: mjx.Model, rng: jax.Array, config: ml_collections.ConfigDict, floor_geom_id: int
) -> mjx.Model:
    """One randomized world. model: an unbatched mjx.Model; rng: one PRNG key."""
    key_friction, key_mass, key_kp, key_frictionloss, key_offset = jax.random.split(rng, 5)

    friction = jax.random.uniform(
        key_friction, (), minval=config.floor_friction[0], maxval=config.floor_friction[1]
    )
    pair_friction = jnp.asarray(model.pair_friction).at[:, :2].set(friction)
    geom_friction = jnp.asarray(model.geom_friction).at[floor_geom_id, 0].set(friction)

    # Every body but the world; inertia scales with mass so the radius of gyration is kept.
    mass_scale = (
        jax.random.uniform(
            key_mass, (model.nbody,), minval=config.mass_scale[0], maxval=config.mass_scale[1]
        )
        .at[0]
        .set(1.0)
    )
    body_mass = jnp.asarray(model.body_mass) * mass_scale
    body_inertia = jnp.asarray(model.body_inertia) * mass_scale[:, None]

    kp = jnp.asarray(model.actuator_gainprm)[:, 0] * jax.random.uniform(
        key_kp, (model.nu,), minval=config.kp_scale[0], maxval=config.kp_scale[1]
    )
    offset = jax.random.uniform(
        key_offset, (model.nu,), minval=-config.joint_offset, maxval=config.joint_offset
    )
    gainprm = jnp.asarray(model.actuator_gainprm).at[:, 0].set(kp)
    biasprm = jnp.asarray(model.actuator_biasprm).at[:, 1].set(-kp).at[:, 0].set(-kp * offset)

    # The free joint's six dofs have no friction loss; scaling zero keeps them so.
    frictionloss = jnp.asarray(model.dof_frictionloss) * jax.random.uniform(
        key_frictionloss,
        (model.nv,),
        minval=config.frictionloss_scale[0],
        maxval=config.frictionloss_scale[1],
    )

    return model.tree_replace(
        {
            "pair_friction": pair_friction,
            "geom_friction": geom_friction,
            "body_mass": body_mass,
            "body_inertia": body_inertia,
            "actuator_gainprm": gainprm,
            "actuator_biasprm": biasprm,
            "dof_frictionloss": frictionloss,
        }
    )


def make_randomization_fn(
    config: ml_collections.ConfigDict, floor_geom_id: int
) -> Callable[[mjx.Model, jax.Array], tuple[mjx.Model, mjx.Model]]:
    """A Brax `randomization_fn`: (model, rng [N, 2]) -> (model with [N, ...] fields, in_axes)."""

    def randomization_fn(model: mjx.Model, rng: jax.Array) -> tuple[mjx.Model, mjx.Model]:
        # vmap only the randomized fields: every other field keeps one shared, unbatched copy.
        def fields(key: jax.Array) -> dict[str, jax.Array]:
            world = randomize(model, key, config, floor_geom_id)
            return {field: getattr(world, field) for field in RANDOMIZED_FIELDS}

        batched = model.tree_replace(jax.vmap(fields)(rng))
        in_axes = jax.tree_util.tree_map(lambda _: None, model)
        in_axes = in_axes.tree_replace({field: 0 for field in RANDOMIZED_FIELDS})
        return batched, in_axes

    return randomization_fn
