"""ONNX export: onnxruntime (CPU) against `load_policy` on real observations, closed loop, and
the metadata a robot needs."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import pytest

from tests.training.tiny_runs import RecordingHooks, point_mass_spec
from wildrobot.envs.wildrobot import base
from wildrobot.workers.export import check, onnx_policy
from wildrobot.workers.export.observation_layout import LayoutError, observation_layout
from wildrobot.workers.training import checkpoint as ckpt
from wildrobot.workers.training.ppo import load_policy
from wildrobot.workers.training.trainer import make_base_env

ACTION_TOLERANCE = 1e-5
# Closed loop: the ONNX-driven rollout stays within OBS_TOLERANCE of the JAX-driven one for at
# least FOLLOW_STEPS control steps (0.8 s at 50 Hz) from each of SEEDS starts. Float32 rounding
# differences (~1e-6 in the action) grow once the untrained robot falls, so not forever.
FOLLOW_STEPS, OBS_TOLERANCE, SEEDS = 40, 1e-3, 3


def _policies(checkpoint: Path, model_path: Path):
    session = onnx_policy.onnx_session(model_path)
    jax_policy = load_policy(checkpoint)
    return (
        lambda obs: np.asarray(jax_policy(obs)),
        lambda obs: onnx_policy.run_onnx(session, obs),
    )


@pytest.mark.slow
def test_stand_export_matches_jax_open_and_closed_loop(stand_checkpoint: Path, tmp_path: Path):
    env = make_base_env("WildRobotStand", {})
    path = onnx_policy.export_policy(stand_checkpoint, tmp_path / "policy.onnx", job_id="job-1")
    jax_policy, onnx_run = _policies(stand_checkpoint, path)
    stepper = check.Stepper(env)

    obs = check.rollout_observations(stepper, jax_policy, seeds=4, steps=25)
    assert obs.shape == (100, env.observation_size)
    assert np.all(np.std(obs[:, :40], axis=0) > 0)  # real, varying observations
    difference = check.batch_difference(jax_policy, onnx_run, obs)
    print(f"\nonnx vs jax, 100 rollout observations: max |action diff| = {difference:.2e}")
    assert difference < ACTION_TOLERANCE
    # Not a vacuous comparison: the actions vary and are not all saturated.
    actions = jax_policy(obs)
    assert np.std(actions) > 0.05 and np.mean(np.abs(actions) < 0.99) > 0.5

    for seed in range(SEEDS):
        gaps = check.closed_loop(stepper, jax_policy, onnx_run, FOLLOW_STEPS, seed=seed)
        followed = check.steps_followed(gaps, OBS_TOLERANCE)
        print(f"closed loop seed {seed}: max obs gap over {FOLLOW_STEPS} steps {gaps.max():.2e}")
        assert followed == FOLLOW_STEPS, gaps


@pytest.mark.slow
def test_stand_metadata_tells_the_robot_how_to_use_it(stand_checkpoint: Path, tmp_path: Path):
    path = onnx_policy.export_policy(stand_checkpoint, tmp_path / "policy.onnx", job_id="job-1")
    model = onnx.load(str(path))
    meta = onnx_policy.read_metadata(model)
    env = make_base_env("WildRobotStand", {})

    assert meta["task"] == "WildRobotStand" and meta["job_id"] == "job-1"
    assert meta["step"] == ckpt.read_meta(stand_checkpoint)["env_steps"] == 16
    assert meta["control_rate_hz"] == pytest.approx(50.0)
    names = [part["name"] for part in meta["observation_layout"]]
    assert names[:6] == ["gravity", "gyro", "joint_pos", "joint_vel", "last_action", "command"]
    assert names == [name for name, _ in base.OBSERVATION_LAYOUT]  # the env's own declaration
    layout = meta["observation_layout"]
    assert layout[2] == {"name": "joint_pos", "start": 6, "stop": 23}
    assert all(a["stop"] == b["start"] for a, b in zip(layout, layout[1:], strict=False))
    assert layout[-1]["stop"] == meta["observation_size"] == env.observation_size
    assert meta["action_scale"] == pytest.approx(env.config.action_scale)
    assert meta["action_filter_alpha"] == pytest.approx(env.config.action_filter_alpha)
    assert len(meta["home_ctrl"]) == len(meta["joint_names"]) == env.action_size == 17
    assert meta["joint_names"][0] == "waist_yaw"
    assert meta["home_ctrl"][3] == pytest.approx(0.49)  # left knee bent at home
    graph = model.graph
    assert [i.name for i in graph.input] == ["obs"] and [o.name for o in graph.output] == ["action"]


def test_point_mass_export_matches_jax(point_mass_checkpoint: Path, tmp_path: Path):
    path = onnx_policy.export_policy(point_mass_checkpoint, tmp_path / "p.onnx")
    jax_policy, onnx_run = _policies(point_mass_checkpoint, path)
    obs = check.rollout_observations(
        check.Stepper(make_base_env("PointMass", {})), jax_policy, 4, 25
    )
    assert check.batch_difference(jax_policy, onnx_run, obs) < ACTION_TOLERANCE
    # Any leading shape, like load_policy.
    assert onnx_run(obs.reshape(4, 25, -1)).shape == (4, 25, 2)
    meta = onnx_policy.read_metadata(onnx.load(str(path)))
    assert meta["job_id"] == point_mass_checkpoint.parent.parent.name  # the run folder
    assert [p["name"] for p in meta["observation_layout"]] == ["position", "velocity", "target"]
    assert "action_scale" not in meta  # no servos
    # What the README shows: onnxruntime hands the metadata out as strings.
    custom = onnx_policy.onnx_session(path).get_modelmeta().custom_metadata_map
    assert json.loads(custom["wildrobot.observation_layout"])[0]["name"] == "position"


def test_normalizer_is_in_the_graph(point_mass_checkpoint: Path, tmp_path: Path):
    # Shifting the saved normalizer's mean must change the exported actions.
    params = onnx_policy.read_policy_params(point_mass_checkpoint)
    config = ckpt.read_network_config(point_mass_checkpoint)
    obs = np.random.default_rng(0).normal(size=(8, 6)).astype(np.float32)

    def actions(p):
        model = onnx_policy.build_model(p, 2, config.activation, True, {"wildrobot.task": "x"})
        return onnx_policy.run_onnx(onnx_policy.onnx_session(model.SerializeToString()), obs)

    shifted = {**params, "mean": params["mean"] + 1.0}
    assert np.max(np.abs(actions(params) - actions(shifted))) > 1e-3


def test_layout_must_cover_the_observation():
    class Appended:
        observation_size, action_size = 61, 17
        observation_parts = (("gravity", 3), ("rest", 57))

    with pytest.raises(LayoutError, match="update"):
        observation_layout(Appended())
    Appended.observation_parts = (("gravity", 3), ("rest", 57), ("reset_pending", 1))
    layout = observation_layout(Appended())
    assert json.dumps([p.to_dict() for p in layout]).count("name") == 3
    assert layout[-1].start == 60 and layout[-1].stop == 61


def test_layer_norm_policy_exports_and_matches_jax(tmp_path: Path):
    """A policy with LayerNorm (policy_layer_norm, what TTA's tent adapts) exports exactly."""
    from wildrobot.workers.training.ppo import train_ppo

    result = train_ppo(
        point_mass_spec(1, policy_layer_norm=True), tmp_path / "run", RecordingHooks()
    )
    checkpoint = Path(result.checkpoint_dir)
    params = onnx_policy.read_policy_params(checkpoint)
    assert len(params["norms"]) == len(params["layers"]) - 1 == 2
    path = onnx_policy.export_policy(checkpoint, tmp_path / "p.onnx")
    jax_policy, onnx_run = _policies(checkpoint, path)
    obs = check.rollout_observations(
        check.Stepper(make_base_env("PointMass", {})), jax_policy, 4, 25
    )
    assert check.batch_difference(jax_policy, onnx_run, obs) < ACTION_TOLERANCE
    # The norms are in the graph: without them the same weights give other actions.
    without = dict(params, norms=[])
    plain = onnx_policy.build_model(without, 2, "elu", True, {})
    import onnxruntime

    session = onnxruntime.InferenceSession(plain.SerializeToString())
    plain_actions = session.run(None, {"obs": obs[:8].astype("float32")})[0]
    assert abs(plain_actions - onnx_run(obs[:8])).max() > 1e-3
