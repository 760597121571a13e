"""AMP's discriminator: an MLP over a window of feature frames, its losses and the style reward.

Two losses, chosen by AmpSpec.disc_loss:
- "lsgan" (the AMP paper's, default): E_ref[(D - 1)^2] + E_policy[(D + 1)^2], style reward
  max(0, 1 - 0.25 (D - 1)^2) in [0, 1]. A least-squares loss keeps a gradient for samples the
  discriminator already classifies confidently, so the reward does not flatten to 0 when the
  discriminator wins (the saturation users of BCE-based AMP report); the reward is bounded.
- "bce" (MimicKit's): softplus(-D_ref) + softplus(D_policy) (binary cross-entropy on logits),
  style reward -log(max(1 - sigmoid(D), 1e-4)).
Both: gradient penalty (grad_penalty / 2) E[||dD/dx||^2] on reference AND policy samples (x the
normalized window), and logit regularization logit_reg * ||W_out||^2 on the output layer's
weights (MimicKit's `disc_logit_reg`), which keeps the logits from growing without bound.
Accuracy: D > 0 counts as "reference", D < 0 as "policy".
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
from brax.training import networks as brax_networks
from flax import linen

LOSSES = ("lsgan", "bce")


def make_discriminator(hidden_sizes: Sequence[int]) -> linen.Module:
    """MLP -> one logit per window (ReLU hidden layers, as MimicKit's)."""
    return brax_networks.MLP(
        layer_sizes=tuple(hidden_sizes) + (1,),
        activation=linen.relu,
        kernel_init=jax.nn.initializers.lecun_uniform(),
    )


def logits(module: linen.Module, params: Any, x: jax.Array) -> jax.Array:
    """D(x) for normalized windows x [..., D] -> [...]."""
    return module.apply(params, x)[..., 0]


def output_kernel(params: Any) -> jax.Array:
    layers = params["params"]
    last = sorted(layers, key=lambda name: int(name.rsplit("_", 1)[1]))[-1]
    return layers[last]["kernel"]


def style_reward(d: jax.Array, loss: str) -> jax.Array:
    if loss == "lsgan":
        return jnp.maximum(0.0, 1.0 - 0.25 * jnp.square(d - 1.0))
    return -jnp.log(jnp.maximum(1.0 - jax.nn.sigmoid(d), 1e-4))


def class_losses(d_ref: jax.Array, d_policy: jax.Array, loss: str) -> jax.Array:
    """The classification part of the loss (means over each class, summed)."""
    if loss == "lsgan":
        return jnp.mean(jnp.square(d_ref - 1.0)) + jnp.mean(jnp.square(d_policy + 1.0))
    return jnp.mean(jax.nn.softplus(-d_ref)) + jnp.mean(jax.nn.softplus(d_policy))


def mean_accuracy(metrics: dict) -> Any:
    """The accuracy the controller holds and the docs' band refers to: the mean of the two classes'
    accuracies (`amp/accuracy_ref`, `amp/accuracy_policy`), from a metrics dict."""
    return 0.5 * (metrics["amp/accuracy_ref"] + metrics["amp/accuracy_policy"])


def loss_fn(
    params: Any,
    module: linen.Module,
    x_ref: jax.Array,
    x_policy: jax.Array,
    loss: str,
    grad_penalty: float,
    logit_reg: float,
) -> tuple[jax.Array, dict[str, jax.Array]]:
    """The discriminator's loss on normalized windows [B, D] of each class, and its metrics."""
    d_ref = logits(module, params, x_ref)
    d_policy = logits(module, params, x_policy)
    classify = class_losses(d_ref, d_policy, loss)

    def grad_sq(x):  # ||dD/dx||^2 per sample
        grads = jax.vmap(jax.grad(lambda v: logits(module, params, v)))(x)
        return jnp.sum(jnp.square(grads), axis=-1)

    penalty = jnp.mean(jnp.concatenate([grad_sq(x_ref), grad_sq(x_policy)]))
    logit_l2 = jnp.sum(jnp.square(output_kernel(params)))
    total = classify + 0.5 * grad_penalty * penalty + logit_reg * logit_l2
    metrics = {
        "amp/disc_loss": classify,
        "amp/grad_penalty": penalty,
        "amp/logit_l2": logit_l2,
        "amp/accuracy_ref": jnp.mean(d_ref > 0),
        "amp/accuracy_policy": jnp.mean(d_policy < 0),
        "amp/logit_ref": jnp.mean(d_ref),
        "amp/logit_policy": jnp.mean(d_policy),
    }
    return total, metrics
