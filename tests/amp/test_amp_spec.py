"""Every AmpSpec limit in docs/amp.md is enforced, at the limit and one step past it, with the
field named in the error (the RPC, SDK and CLI validate through this same model)."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from wildrobot.specs import MAX_AMP_MOTIONS, MAX_AMP_REPLAY, MAX_NUM_ENVS, AmpSpec

# (field, accepted at the limits, refused just past them)
LIMITS = [
    ("task_weight", (0.0, 10.0), (-0.001, 10.001)),
    ("style_weight", (0.0, 10.0), (-0.001, 10.001)),
    ("disc_learning_rate", (1e-9, 1.0), (0.0, 1.001)),
    ("disc_updates_per_iteration", (1, 256), (0, 257)),
    ("disc_batch_size", (2, MAX_NUM_ENVS), (1, MAX_NUM_ENVS + 1)),
    ("grad_penalty", (0.0, 1000.0), (-0.001, 1000.001)),
    ("logit_reg", (0.0, 100.0), (-0.001, 100.001)),
    ("replay_size", (16, MAX_AMP_REPLAY), (15, MAX_AMP_REPLAY + 1)),
    ("window", (2, 10), (1, 11)),
    ("disc_noise_target", (0.5, 1.0), (0.499, 1.001)),
    ("disc_noise_step", (0.0, 1.0), (-0.001, 1.001)),
]


@pytest.mark.parametrize(("field", "ok", "bad"), LIMITS, ids=[row[0] for row in LIMITS])
def test_numeric_limits(field: str, ok: tuple, bad: tuple) -> None:
    for value in ok:
        assert getattr(AmpSpec(**{field: value}), field) == value
    for value in bad:
        with pytest.raises(ValidationError, match=field):
            AmpSpec(**{field: value})


def test_motions_limits() -> None:
    names = tuple(f"clip_{i}" for i in range(MAX_AMP_MOTIONS))
    assert AmpSpec(motions=names).motions == names
    assert AmpSpec(motions=("motions/mine.npz",)).motions == ("motions/mine.npz",)
    for bad, words in [
        ((), "motions"),
        (names + ("one_more",), "motions"),
        (("walk_0.2", "walk_0.2"), "given twice"),
        (("../secret.npz",), "not a clip name"),
        (("/abs/path.npz",), "not a clip name"),
        (("a/../b.npz",), "not a clip name"),
    ]:
        with pytest.raises(ValidationError, match=words):
            AmpSpec(motions=bad)


def test_weights_sum_and_choices() -> None:
    with pytest.raises(ValidationError, match="task_weight \\+ style_weight"):
        AmpSpec(task_weight=0.0, style_weight=0.0)
    assert AmpSpec(task_weight=0.0, style_weight=1.0).style_weight == 1.0
    for loss in ("lsgan", "bce"):
        assert AmpSpec(disc_loss=loss).disc_loss == loss
    with pytest.raises(ValidationError, match="disc_loss"):
        AmpSpec(disc_loss="wgan")
    with pytest.raises(ValidationError, match="task"):
        AmpSpec(task="PointMass")  # no robot to take features from


def test_an_amp_spec_is_a_ppo_spec_with_ppo_bounds() -> None:
    with pytest.raises(ValidationError, match="num_envs"):
        AmpSpec(num_envs=0)
    assert AmpSpec().kind == "amp"
