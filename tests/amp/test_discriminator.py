"""AMP's discriminator loss, gradient penalty, logit regularization, style reward and replay
buffer on hand-worked numbers."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from wildrobot.workers.amp import discriminator as disc
from wildrobot.workers.amp import replay as replay_lib


@pytest.fixture
def linear_disc():
    """hidden 2 (ReLU, kept positive by the bias), so D(x) = w2 . (W1 x + b1) + b2 exactly:
    D(0, 0) = 1.5, D(2, -1) = 2.0, dD/dx = W1 w2 = (0.5, 0.5) everywhere here."""
    module = disc.make_discriminator((2,))
    params = module.init(jax.random.PRNGKey(0), jnp.zeros((1, 2)))
    names = sorted(params["params"])
    assert names == ["hidden_0", "hidden_1"]
    params = {
        "params": {
            "hidden_0": {"kernel": jnp.array([[1.0, 0.0], [0.0, 2.0]]), "bias": jnp.full(2, 10.0)},
            "hidden_1": {"kernel": jnp.array([[0.5], [0.25]]), "bias": jnp.array([-6.0])},
        }
    }
    return module, params


def test_logits_of_the_hand_built_discriminator(linear_disc):
    module, params = linear_disc
    d = disc.logits(module, params, jnp.array([[0.0, 0.0], [2.0, -1.0]]))
    np.testing.assert_allclose(d, [1.5, 2.0], rtol=1e-6)


def test_lsgan_loss_penalty_and_logit_regularization(linear_disc):
    module, params = linear_disc
    x_ref, x_policy = jnp.array([[0.0, 0.0]]), jnp.array([[2.0, -1.0]])
    total, m = disc.loss_fn(params, module, x_ref, x_policy, "lsgan", 10.0, 0.01)
    # (1.5 - 1)^2 + (2 + 1)^2 = 9.25; ||(0.5, 0.5)||^2 = 0.5; ||w2||^2 = 0.3125.
    np.testing.assert_allclose(m["amp/disc_loss"], 9.25, rtol=1e-6)
    np.testing.assert_allclose(m["amp/grad_penalty"], 0.5, rtol=1e-6)
    np.testing.assert_allclose(m["amp/logit_l2"], 0.3125, rtol=1e-6)
    np.testing.assert_allclose(total, 9.25 + 5.0 * 0.5 + 0.01 * 0.3125, rtol=1e-6)
    assert float(m["amp/accuracy_ref"]) == 1.0  # D = 1.5 > 0: called reference, right
    assert float(m["amp/accuracy_policy"]) == 0.0  # D = 2 > 0: called reference, wrong
    np.testing.assert_allclose(m["amp/logit_ref"], 1.5, rtol=1e-6)
    np.testing.assert_allclose(m["amp/logit_policy"], 2.0, rtol=1e-6)


def test_bce_loss(linear_disc):
    module, params = linear_disc
    _, m = disc.loss_fn(
        params, module, jnp.array([[0.0, 0.0]]), jnp.array([[2.0, -1.0]]), "bce", 0.0, 0.0
    )
    expected = np.log1p(np.exp(-1.5)) + np.log1p(np.exp(2.0))  # softplus(-1.5) + softplus(2)
    np.testing.assert_allclose(m["amp/disc_loss"], expected, rtol=1e-6)


def test_gradient_penalty_pushes_the_slope_down(linear_disc):
    module, params = linear_disc
    x = jnp.array([[0.0, 0.0]])

    def penalty_only(p):
        return disc.loss_fn(p, module, x, x, "lsgan", 10.0, 0.0)[1]["amp/grad_penalty"]

    grads = jax.grad(penalty_only)(params)
    stepped = jax.tree.map(lambda p, g: p - 0.01 * g, params, grads)
    assert penalty_only(stepped) < penalty_only(params)


def test_style_rewards():
    d = jnp.array([1.5, 2.0, 1.0, -1.0, -3.0])
    np.testing.assert_allclose(
        disc.style_reward(d, "lsgan"), [0.9375, 0.75, 1.0, 0.0, 0.0], rtol=1e-6
    )
    bce = disc.style_reward(jnp.array([0.0, -20.0, 20.0]), "bce")
    np.testing.assert_allclose(bce, [np.log(2.0), 0.0, -np.log(1e-4)], rtol=1e-5, atol=1e-7)


def test_replay_ring_buffer_wraps_and_samples_only_filled_rows():
    buf = replay_lib.empty(5, 2)
    buf = replay_lib.insert(buf, jnp.array([[1.0, 1.0], [2.0, 2.0], [3.0, 3.0]]))
    assert int(buf.size) == 3 and int(buf.position) == 3
    rows = replay_lib.sample(buf, jax.random.PRNGKey(0), 200)
    assert set(np.asarray(rows[:, 0]).tolist()) == {1.0, 2.0, 3.0}
    buf = replay_lib.insert(buf, jnp.array([[4.0, 4.0], [5.0, 5.0], [6.0, 6.0]]))
    assert int(buf.size) == 5 and int(buf.position) == 1
    np.testing.assert_array_equal(buf.data[:, 0], [6.0, 2.0, 3.0, 4.0, 5.0])
    # More rows than the capacity: the last ones are kept.
    buf = replay_lib.insert(buf, jnp.arange(14.0).reshape(7, 2))
    assert sorted(np.asarray(buf.data[:, 0]).tolist()) == [4.0, 6.0, 8.0, 10.0, 12.0]
