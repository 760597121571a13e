"""The wire: generated stubs are fresh, and proto <-> spec conversion round-trips every field."""

from __future__ import annotations

import subprocess
import sys

import pytest
from pydantic import ValidationError

from wildrobot import convert
from wildrobot.specs import (
    AmpSpec,
    JobKind,
    JobState,
    MamlSpec,
    PpoSpec,
    TtaEvalSpec,
    spec_from_json,
)
from wildrobot.v1 import jobs_pb2

from .conftest import REPO_ROOT


def test_generated_stubs_are_fresh() -> None:
    result = subprocess.run(
        [sys.executable, str(REPO_ROOT / "proto" / "generate.py"), "--check"],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr


def _non_default_ppo() -> PpoSpec:
    # Every field differs from its default, so a dropped field cannot round-trip by accident.
    return PpoSpec(
        task="WildRobotStand",
        num_envs=64,
        num_timesteps=123_456,
        episode_length=500,
        unroll_length=10,
        batch_size=32,
        num_minibatches=4,
        num_updates_per_batch=2,
        learning_rate=1e-3,
        learning_rate_schedule="cosine",
        entropy_cost=1e-2,
        discounting=0.97,
        gae_lambda=0.9,
        clipping_epsilon=0.3,
        max_grad_norm=1.0,
        reward_scaling=0.5,
        normalize_observations=False,
        policy_hidden_sizes=(64, 32),
        value_hidden_sizes=(128,),
        policy_layer_norm=True,
        policy_arch="ssm",
        ssm_layers=3,
        ssm_state_size=16,
        ssm_width=32,
        seed=7,
        checkpoint_every=5,
        num_eval_envs=16,
        eval_every=3,
        # One of each setting type: float, bool, int, int range, float range.
        env_overrides={
            "reward_weights.alive": 1.5,
            "push.enable": False,
            "push.duration_steps": 3,
            "push.interval_steps": (20, 60),
            "push.magnitude": (1.0, 2.5),
        },
        num_hosts=2,
        export_onnx=False,
        video_seconds=2.5,
    )


def test_ppo_spec_round_trips_every_field() -> None:
    spec = _non_default_ppo()
    defaults = PpoSpec()
    differing = {f for f in PpoSpec.model_fields if getattr(spec, f) != getattr(defaults, f)}
    assert differing == set(PpoSpec.model_fields) - {"kind"}
    wire = convert.spec_to_proto(spec)
    back = convert.spec_from_proto(jobs_pb2.JobSpec.FromString(wire.SerializeToString()))
    assert back == spec


def test_tta_eval_spec_round_trips_every_field() -> None:
    spec = TtaEvalSpec(
        checkpoint_job_id="0123456789abcdef" * 2,
        checkpoint_step=2048,
        shifts=("kp", "push"),
        severities=(2, 5),
        methods=("none", "tent", "sysid"),
        episodes=16,
        episode_length=300,
        seeds=(3, 4),
        mode="continual",
        best_of_n_samples=4,
        lookahead_steps=3,
        obs_norm_rate=0.05,
        tent_learning_rate=0.01,
        tent_kl_weight=2.0,
        sysid_rate=0.5,
        adapt_steps=3,
        adapt_episodes=2,
        maml_rate=0.1,
    )
    defaults = TtaEvalSpec(checkpoint_job_id=spec.checkpoint_job_id)
    differing = {f for f in TtaEvalSpec.model_fields if getattr(spec, f) != getattr(defaults, f)}
    assert differing == set(TtaEvalSpec.model_fields) - {"kind", "checkpoint_job_id"}
    wire = convert.spec_to_proto(spec)
    back = convert.spec_from_proto(jobs_pb2.JobSpec.FromString(wire.SerializeToString()))
    assert back == spec
    bare = jobs_pb2.JobSpec(tta_eval=jobs_pb2.TtaEvalSpec(checkpoint_job_id=spec.checkpoint_job_id))
    assert convert.spec_from_proto(bare) == defaults


def _non_default_amp() -> AmpSpec:
    # Every PPO field as in _non_default_ppo except the task (AmpSpec's default is the stand task).
    ppo = _non_default_ppo().model_dump(exclude={"kind", "task", "env_overrides", "policy_arch"})
    overrides = dict(_non_default_ppo().env_overrides)
    del overrides["reward_weights.alive"]  # a stand setting
    return AmpSpec(
        **ppo,
        task="WildRobotWalk",
        env_overrides={**overrides, "reward_weights.tracking_lin_vel": 1.5},
        motions=("stand", "motions/mocap.npz"),
        task_weight=0.7,
        style_weight=0.3,
        disc_loss="bce",
        disc_hidden_sizes=(64, 32),
        disc_learning_rate=3e-4,
        disc_updates_per_iteration=2,
        disc_batch_size=64,
        grad_penalty=10.0,
        logit_reg=0.05,
        replay_size=1000,
        window=3,
        disc_noise_target=0.8,
        disc_noise_step=0.02,
    )


def test_amp_spec_round_trips_every_field() -> None:
    spec = _non_default_amp()
    defaults = AmpSpec()
    differing = {f for f in AmpSpec.model_fields if getattr(spec, f) != getattr(defaults, f)}
    # AMP trains mlp policies only (AmpSpec refuses policy_arch=ssm), so that one stays default.
    assert differing == set(AmpSpec.model_fields) - {"kind", "policy_arch"}
    wire = convert.spec_to_proto(spec)
    assert wire.WhichOneof("kind") == "amp"  # not ppo, although an AmpSpec is a PpoSpec
    assert wire.amp.ppo.num_envs == 64 and list(wire.amp.motions) == ["stand", "motions/mocap.npz"]
    back = convert.spec_from_proto(jobs_pb2.JobSpec.FromString(wire.SerializeToString()))
    assert type(back) is AmpSpec and back == spec
    # The queue's JSON path (worker side) gives an AmpSpec back too.
    queued = spec_from_json(JobKind.AMP, spec.model_dump_json())
    assert type(queued) is AmpSpec and queued == spec


def test_amp_defaults_round_trip_and_unset_fields_take_them() -> None:
    defaults = AmpSpec()
    wire = convert.spec_to_proto(defaults)
    assert (
        convert.spec_from_proto(jobs_pb2.JobSpec.FromString(wire.SerializeToString())) == defaults
    )
    for bare in (jobs_pb2.AmpSpec(), jobs_pb2.AmpSpec(ppo=jobs_pb2.PpoSpec())):
        assert convert.spec_from_proto(jobs_pb2.JobSpec(amp=bare)) == defaults


def test_amp_fields_to_proto_splits_ppo_and_amp_fields() -> None:
    msg = convert.amp_spec_fields_to_proto({"motions": ("walk_0.2",), "num_envs": 64, "window": 3})
    assert msg.ppo.num_envs == 64 and not msg.ppo.HasField("task")
    assert list(msg.motions) == ["walk_0.2"] and msg.window == 3
    assert not msg.HasField("style_weight")
    with pytest.raises(KeyError, match="bogus"):
        convert.amp_spec_fields_to_proto({"bogus": 1})
    with pytest.raises(ValueError, match="^window: "):
        convert.amp_spec_fields_to_proto({"window": -1})


@pytest.mark.parametrize(
    ("amp", "field", "words"),
    [
        (jobs_pb2.AmpSpec(window=1), "window", "greater than or equal to 2"),
        (jobs_pb2.AmpSpec(disc_loss="wgan"), "disc_loss", "'lsgan' or 'bce'"),
        (jobs_pb2.AmpSpec(motions=["../x.npz"]), "motions", "not a clip name or a safe .npz path"),
        (jobs_pb2.AmpSpec(ppo=jobs_pb2.PpoSpec(num_envs=0)), "num_envs", "greater than or equal"),
        (jobs_pb2.AmpSpec(ppo=jobs_pb2.PpoSpec(task="PointMass")), "task", "WildRobotStand"),
    ],
)
def test_bad_amp_fields_are_named(amp: jobs_pb2.AmpSpec, field: str, words: str) -> None:
    with pytest.raises(ValidationError) as info:
        convert.spec_from_proto(jobs_pb2.JobSpec(amp=amp))
    error = info.value.errors()[0]
    assert ".".join(str(p) for p in error["loc"]).startswith(field)
    assert words in str(info.value)


def test_unset_proto_fields_take_spec_defaults() -> None:
    assert convert.spec_from_proto(jobs_pb2.JobSpec(ppo=jobs_pb2.PpoSpec())) == PpoSpec()


def test_spec_json_round_trip() -> None:
    spec = _non_default_ppo()
    assert PpoSpec.model_validate_json(spec.model_dump_json()) == spec


def test_enums_map_both_ways() -> None:
    for kind in JobKind:
        assert convert.kind_from_proto(convert.kind_to_proto(kind)) is kind
    for state in JobState:
        assert convert.state_from_proto(convert.state_to_proto(state)) is state
    assert convert.kind_from_proto(jobs_pb2.JOB_KIND_UNSPECIFIED) is None


@pytest.mark.parametrize(
    ("fields", "field", "words"),
    [
        ({"num_envs": 0}, "num_envs", "greater than or equal to 1"),
        ({"num_envs": 10**6}, "num_envs", "less than or equal to 65536"),
        ({"learning_rate": float("nan")}, "learning_rate", "finite"),
        ({"task": "fly"}, "task", "WildRobotStand"),
        ({"num_envs": 3}, "", "must be divisible by num_envs (3)"),
        ({"policy_hidden_sizes": ()}, "policy_hidden_sizes", "at least 1"),
        ({"env_overrides": {"a b": 1}}, "env_overrides", "dotted config name"),
        ({"env_overrides": {"push.enabled": True}}, "env_overrides", "not a setting"),
        ({"env_overrides": {"push.magnitude": (3, 1)}}, "env_overrides", "above max"),
        ({"bogus": 1}, "bogus", "Extra inputs are not permitted"),
        ({"num_hosts": 0}, "num_hosts", "greater than or equal to 1"),
        ({"num_hosts": 65}, "num_hosts", "less than or equal to 64"),
        ({"num_hosts": 3}, "", "num_envs (1024) must be divisible by num_hosts (3)"),
        ({"learning_rate_schedule": "step"}, "learning_rate_schedule", "'linear' or 'cosine'"),
    ],
)
def test_bad_fields_are_named(fields: dict, field: str, words: str) -> None:
    with pytest.raises(ValidationError) as info:
        PpoSpec(**fields)
    error = info.value.errors()[0]
    assert ".".join(str(p) for p in error["loc"]).startswith(field)
    assert words in str(info.value)


def test_task_aliases_and_frozen() -> None:
    spec = PpoSpec(task="walk")
    assert spec.task == "WildRobotWalk"
    with pytest.raises(ValidationError):
        spec.num_envs = 8  # type: ignore[misc]
    assert spec.env_steps_per_iteration == 256 * 32 * 20


def test_spec_without_kind_is_rejected() -> None:
    with pytest.raises(ValueError, match="no job kind"):
        convert.spec_from_proto(jobs_pb2.JobSpec())


def _non_default_maml() -> MamlSpec:
    return MamlSpec(
        task="PointNav",
        policy_arch="mlp",
        num_iterations=77,
        tasks_per_batch=5,
        episodes_per_task=9,
        episode_length=33,
        inner_steps=3,
        inner_lr=0.05,
        first_order=False,
        outer_learning_rate=2e-3,
        outer_updates=3,
        clipping_epsilon=0.3,
        entropy_cost=0.01,
        discounting=0.97,
        gae_lambda=0.9,
        max_grad_norm=2.0,
        reward_scaling=2.0,
        normalize_observations=False,
        policy_hidden_sizes=(32, 16),
        value_hidden_sizes=(48,),
        seed=9,
        checkpoint_every=7,
    )


def test_maml_spec_round_trips_every_field() -> None:
    spec = _non_default_maml()
    defaults = MamlSpec()
    differing = {f for f in MamlSpec.model_fields if getattr(spec, f) != getattr(defaults, f)}
    # policy_arch has one value until the SSM policy lands; every other field differs.
    assert differing == set(MamlSpec.model_fields) - {"kind", "policy_arch"}
    wire = convert.spec_to_proto(spec)
    back = convert.spec_from_proto(jobs_pb2.JobSpec.FromString(wire.SerializeToString()))
    assert back == spec
    assert convert.spec_from_proto(jobs_pb2.JobSpec(maml=jobs_pb2.MamlSpec())) == defaults
    assert MamlSpec.model_validate_json(spec.model_dump_json()) == spec


@pytest.mark.parametrize(
    ("fields", "field", "words"),
    [
        ({"tasks_per_batch": 0}, "tasks_per_batch", "greater than or equal to 1"),
        ({"tasks_per_batch": 257}, "tasks_per_batch", "less than or equal to 256"),
        ({"inner_steps": 11}, "inner_steps", "less than or equal to 10"),
        ({"inner_lr": 0.0}, "inner_lr", "greater than 0"),
        ({"inner_lr": float("inf")}, "inner_lr", "finite"),
        ({"policy_arch": "transformer"}, "policy_arch", "'mlp'"),
        ({"task": "fly"}, "task", "PointNav"),
        (
            {"tasks_per_batch": 256, "episodes_per_task": 4096, "episode_length": 100},
            "",
            "env steps per iteration, limit 50000000",
        ),
    ],
)
def test_bad_maml_fields_are_named(fields: dict, field: str, words: str) -> None:
    with pytest.raises(ValidationError) as info:
        MamlSpec(**fields)
    error = info.value.errors()[0]
    assert ".".join(str(p) for p in error["loc"]).startswith(field)
    assert words in str(info.value)
    assert MamlSpec(task="stand").task == "WildRobotStand"
