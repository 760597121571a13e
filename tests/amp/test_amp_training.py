"""AMP training through train_amp on the real WildRobot env with tiny networks: the health
metrics are reported and finite, the style reward changes what PPO optimizes, and a resumed run
ends bitwise equal to an uninterrupted one (discriminator, its optimizer and normalizer, replay
buffer and reference windows included). A few compiles: ~2-3 minutes on a 2-core CPU."""

from __future__ import annotations

from pathlib import Path

import jax
import numpy as np
import pytest

from tests.training.tiny_runs import STAND_TINY, RecordingHooks
from wildrobot.clients.render import HEALTH_KEYS
from wildrobot.envs.motions.format import load_motion
from wildrobot.specs import AmpSpec
from wildrobot.workers.amp.train import train_amp
from wildrobot.workers.training import checkpoint as ckpt

pytestmark = pytest.mark.slow

CLIPS = Path(__file__).resolve().parents[2] / "envs" / "motions" / "clips"
# The health metrics `watch` shows: every one must be reported, finite.
HEALTH = tuple(key for key in HEALTH_KEYS if key.startswith("amp/"))  # watch shows these for amp


def amp_tiny(iterations: int, **overrides) -> AmpSpec:
    fields = {
        **STAND_TINY,
        "num_envs": 4,
        "batch_size": 4,
        "num_minibatches": 2,
        "unroll_length": 5,
        "num_timesteps": iterations * 4 * 2 * 5,
        "export_onnx": False,
        "video_seconds": 0.0,
        "motions": ("walk_0.2",),
        "disc_hidden_sizes": (16,),
        "disc_batch_size": 16,
        "disc_updates_per_iteration": 2,
        "replay_size": 64,
        "checkpoint_every": 100,
    }
    return AmpSpec(**{**fields, **overrides})


@pytest.fixture(scope="module")
def motions():
    return [load_motion(CLIPS / "walk_0.2.npz")]


def _saved_state(checkpoint_dir: Path):
    import orbax.checkpoint as ocp

    with ocp.StandardCheckpointer() as checkpointer:
        return checkpointer.restore(Path(checkpoint_dir).absolute() / ckpt.STATE_DIR)


def test_amp_reports_health_and_resumes_exactly(tmp_path: Path, motions) -> None:
    k = 2
    hooks = RecordingHooks()
    straight = train_amp(amp_tiny(2 * k), tmp_path / "a", hooks, motions)
    assert straight.iterations == 2 * k
    for _, metrics in hooks.metrics:
        for name in HEALTH:
            assert name in metrics and np.isfinite(metrics[name]), (name, metrics)
        assert 0.0 <= metrics["amp/accuracy_ref"] <= 1.0
        assert 0.0 <= metrics["amp/style_reward"] <= 1.0  # lsgan's reward is bounded
    assert ckpt.read_spec(straight.checkpoint_dir) == amp_tiny(2 * k)

    first = train_amp(amp_tiny(k), tmp_path / "b", RecordingHooks(), motions)
    resumed = train_amp(
        amp_tiny(2 * k), tmp_path / "b", RecordingHooks(), motions, resume_from=first.checkpoint_dir
    )
    assert resumed.iterations == 2 * k
    expected, actual = _saved_state(straight.checkpoint_dir), _saved_state(resumed.checkpoint_dir)
    assert any("extension" in name and "replay" in name for name in expected)
    jax.tree.map(np.testing.assert_array_equal, expected, actual)
