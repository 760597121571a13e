"""The discriminator's input noise and its accuracy controller (AmpSpec.disc_noise_target,
disc_noise_step): the noise std moves by exactly disc_noise_step per iteration towards holding the
accuracy at the target, never below 0, and a target of 1 never adds noise (AmpSpec's default is
0.7).

AmpExtension.update runs as in training (under the named axis, here a vmap over one device) on
policy windows made from the reference windows.
"""

from __future__ import annotations

from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from brax.training import types as brax_types

from wildrobot.envs import registry
from wildrobot.envs.motions.format import load_motion
from wildrobot.specs import AmpSpec
from wildrobot.workers.amp.discriminator import mean_accuracy as accuracy
from wildrobot.workers.amp.extension import AmpExtension
from wildrobot.workers.training.iteration import AXIS

# Builds the reference windows and compiles the update (~20 s on a 2-core CPU).
pytestmark = pytest.mark.slow

CLIPS = Path(__file__).resolve().parents[2] / "envs" / "motions" / "clips"
ROLLOUT = 256  # policy windows per update
STEP = 0.25


def make_extension(target: float) -> AmpExtension:
    spec = AmpSpec(
        motions=("walk_0.2",),
        disc_hidden_sizes=(32,),
        disc_batch_size=128,
        disc_updates_per_iteration=4,
        disc_learning_rate=3e-3,
        replay_size=1024,
        disc_noise_target=target,
        disc_noise_step=STEP,
    )
    return AmpExtension(
        spec, registry.make("WildRobotStand"), [load_motion(CLIPS / "walk_0.2.npz")]
    )


def run_updates(ext: AmpExtension, policy_windows: np.ndarray, iterations: int, noise_std=0.0):
    windows = jnp.asarray(policy_windows)
    zeros = jnp.zeros((len(windows),))
    data = brax_types.Transition(
        observation=zeros,
        action=zeros,
        reward=zeros,
        discount=zeros,
        next_observation=zeros,
        extras={"state_extras": {"amp_window": windows[:, None, :]}},
    )
    update = jax.jit(jax.vmap(ext.update, in_axes=(0, None, None), axis_name=AXIS))
    state = ext.init(jax.random.PRNGKey(0)).replace(noise_std=jnp.float32(noise_std))
    state = jax.tree.map(lambda x: jnp.asarray(x)[None], state)
    history = []
    for i in range(iterations):
        state, metrics = update(state, data, jax.random.PRNGKey(i + 1))
        history.append({k: float(v[0]) for k, v in metrics.items()})
    return history, float(state.noise_std[0])


@pytest.fixture(scope="module")
def separable():
    """A noiseless extension, and policy windows it tells from the reference within a few steps."""
    ext = make_extension(1.0)
    rng = np.random.default_rng(0)
    reference = ext.reference
    # Shifted by 0.2 of each column's spread: in normalized units the classes are about 2 apart.
    return ext, reference[rng.integers(0, len(reference), ROLLOUT)] + 0.2 * reference.std(axis=0)


def test_a_target_of_one_never_adds_noise(separable) -> None:
    history, final = run_updates(*separable, 8)
    assert [m["amp/noise_std"] for m in history] == [0.0] * 8 and final == 0.0
    assert accuracy(history[-1]) > 0.9  # without noise it wins


def test_the_noise_grows_while_the_accuracy_is_above_the_target(separable) -> None:
    history, final = run_updates(make_extension(0.6), separable[1], 16)
    noise = [m["amp/noise_std"] for m in history] + [final]
    # Every change is one step: up after an iteration above the target, else down (not below 0).
    for i, m in enumerate(history):
        expected = max(0.0, noise[i] + (STEP if accuracy(m) > 0.6 else -STEP))
        assert noise[i + 1] == pytest.approx(expected, abs=1e-6), (i, m)
    assert max(noise) >= 1.0
    # The noise blurs the classes: the accuracy it reaches is far below the noiseless run's.
    assert np.mean([accuracy(m) for m in history[-4:]]) < 0.7


def test_the_noise_shrinks_to_zero_when_the_classes_are_alike() -> None:
    ext = make_extension(0.9)
    rng = np.random.default_rng(1)
    alike = ext.reference[rng.integers(0, len(ext.reference), ROLLOUT)]  # policy = reference
    history, final = run_updates(ext, alike, 6, noise_std=1.0)
    assert [m["amp/noise_std"] for m in history] == pytest.approx([1.0, 0.75, 0.5, 0.25, 0.0, 0.0])
    assert final == 0.0  # clipped at 0, never negative
