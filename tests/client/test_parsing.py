"""What people type: human numbers, --set, config precedence, server error messages."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from wildrobot import presets
from wildrobot.clients import config
from wildrobot.clients.cli import build_parser
from wildrobot.clients.commands.submit import KINDS, spec_fields
from wildrobot.clients.errors import parse_violations
from wildrobot.clients.parsing import (
    UsageError,
    format_count,
    parse_assignments,
    parse_count,
    parse_scalar,
    parse_step,
)
from wildrobot.specs import AmpSpec, PpoSpec


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("4096", 4096),
        ("4k", 4_000),
        ("4K", 4_000),
        ("200M", 200_000_000),
        ("200m", 200_000_000),
        ("1.5B", 1_500_000_000),
        ("2G", 2_000_000_000),
        ("1e8", 100_000_000),
        ("2.5e3", 2_500),
        ("10_000", 10_000),
        ("1,024", 1_024),
        (" 0 ", 0),
    ],
)
def test_parse_count(text: str, value: int) -> None:
    assert parse_count(text) == value


@pytest.mark.parametrize("text", ["", "abc", "1.5", "1.0001k", "-4", "4x", "inf", "nan", "1e-3"])
def test_parse_count_rejects(text: str) -> None:
    with pytest.raises(UsageError):
        parse_count(text)


def test_parse_step_names_latest_best_or_a_count() -> None:
    assert parse_step("latest") is None and parse_step("best") == "best"
    assert parse_step("BEST") == "best" and parse_step("4k") == 4_000
    with pytest.raises(UsageError, match="'latest' or 'best'"):
        parse_step("bestest")


def test_sdk_step_goes_on_the_wire_as_step_or_best() -> None:
    from wildrobot.clients.types import set_step
    from wildrobot.v1 import jobs_pb2

    latest, best, step = (jobs_pb2.DownloadCheckpointRequest() for _ in range(3))
    set_step(latest, None)
    set_step(best, "best")
    set_step(step, 4096)
    assert not latest.HasField("step") and not latest.best
    assert best.best and not best.HasField("step")
    assert step.step == 4096 and not step.best
    for bad in ("latest", True, 1.5):
        with pytest.raises(ValueError, match="step: an env step, None"):
            set_step(jobs_pb2.DownloadArtifactRequest(), bad)


def test_parse_scalar_keeps_types() -> None:
    assert parse_scalar("true") is True
    assert parse_scalar("False") is False
    assert parse_scalar("3") == 3 and isinstance(parse_scalar("3"), int)
    assert parse_scalar("-3") == -3
    assert parse_scalar("4k") == 4000
    assert parse_scalar("1.0") == 1.0 and isinstance(parse_scalar("1.0"), float)
    assert parse_scalar("-0.25") == -0.25
    assert parse_scalar("rough") == "rough"


def test_set_coerces_by_spec_field_type() -> None:
    fields = parse_assignments(
        PpoSpec,
        [
            "batch_size=1k",
            "learning_rate=1e-4",
            "normalize_observations=no",
            "policy_hidden_sizes=512,256",
            "value-hidden-sizes=[64, 64]",
            "task=stand",
            "env_overrides.reward_weights.tracking_lin_vel=1.5",
            "env_overrides.push.enable=false",
            "env_overrides.push.magnitude=3,8",
            "env_overrides.push.interval_steps=[20, 60]",
        ],
    )
    assert fields == {
        "batch_size": 1000,
        "learning_rate": 1e-4,
        "normalize_observations": False,
        "policy_hidden_sizes": (512, 256),
        "value_hidden_sizes": (64, 64),
        "task": "stand",
        "env_overrides": {
            "reward_weights.tracking_lin_vel": 1.5,
            "push.enable": False,
            "push.magnitude": (3, 8),
            "push.interval_steps": (20, 60),
        },
    }
    spec = PpoSpec(**{**fields, "batch_size": 1024})  # what --set builds is what the spec accepts
    assert spec.env_overrides["push.magnitude"] == (3.0, 8.0)


@pytest.mark.parametrize(
    ("item", "message"),
    [
        ("num_env=3", "did you mean 'num_envs'"),
        ("kind=amp", "not a PpoSpec field"),
        ("num_envs", "expected key=value"),
        ("num_envs=lots", "num_envs: 'lots' is not a number"),
        ("normalize_observations=maybe", "not true/false"),
    ],
)
def test_set_errors_name_the_key(item: str, message: str) -> None:
    with pytest.raises(UsageError, match=message):
        parse_assignments(PpoSpec, [item])


def test_submit_sends_only_what_the_user_set() -> None:
    args = build_parser().parse_args(
        ["submit", "ppo", "--num-envs", "4k", "--timesteps", "200M", "--set", "seed=7"]
    )
    assert spec_fields(KINDS[0], args) == {
        "num_envs": 4000,
        "num_timesteps": 200_000_000,
        "seed": 7,
    }
    args = build_parser().parse_args(["submit", "ppo"])
    assert spec_fields(KINDS[0], args) == {}


def test_submit_rejects_a_field_given_twice() -> None:
    args = build_parser().parse_args(["submit", "ppo", "--num-envs", "8", "--set", "num_envs=16"])
    with pytest.raises(UsageError, match="given twice"):
        spec_fields(KINDS[0], args)


def test_connection_options_go_before_or_after_the_command() -> None:
    parser = build_parser()
    assert parser.parse_args(["--address", "a:1", "list"]).address == "a:1"
    assert parser.parse_args(["list", "--address", "b:2"]).address == "b:2"
    assert parser.parse_args(["submit", "ppo", "--token", "t"]).token == "t"


def test_config_precedence_flag_env_file(tmp_path) -> None:
    path = tmp_path / "client.toml"
    path.write_text('address = "file:1"\ntoken = "file-token"\n')
    env = {config.CONFIG_ENV: str(path)}
    assert config.resolve(environ=env).address == "file:1"
    assert config.resolve(environ=env).token == "file-token"
    env |= {config.ADDRESS_ENV: "env:2", config.TOKEN_ENV: "env-token"}
    assert (config.resolve(environ=env).address, config.resolve(environ=env).token) == (
        "env:2",
        "env-token",
    )
    flagged = config.resolve("flag:3", "flag-token", environ=env)
    assert (flagged.address, flagged.token, flagged.source) == ("flag:3", "flag-token", "--address")
    assert config.resolve(environ={config.CONFIG_ENV: str(tmp_path / "none.toml")}).address == (
        config.DEFAULT_ADDRESS
    )


def test_config_file_errors_name_the_file(tmp_path) -> None:
    path = tmp_path / "client.toml"
    path.write_text("address = \n")
    with pytest.raises(config.ConfigError, match=str(path)):
        config.resolve(environ={config.CONFIG_ENV: str(path)})


def test_server_violations_parse_into_field_and_rule() -> None:
    message = (
        "invalid argument: spec.ppo.num_envs: Input should be less than or equal to 65536; "
        "spec.ppo: Value error, batch_size * num_minibatches must be divisible by num_envs"
    )
    assert parse_violations(message) == [
        ("num_envs", "Input should be less than or equal to 65536"),
        (None, "Value error, batch_size * num_minibatches must be divisible by num_envs"),
    ]
    assert parse_violations("job_id is required") == [(None, "job_id is required")]


def test_format_count() -> None:
    assert [format_count(v) for v in (512, 4096, 12_345, 1_500_000, 200_000_000, 2e9)] == [
        "512",
        "4,096",
        "12.3k",
        "1.5M",
        "200M",
        "2G",
    ]


def test_submit_ppo_with_an_ssm_policy_through_set() -> None:
    args = build_parser().parse_args(
        ["submit", "ppo", "--preset", "walk-cpu-ssm", "--set", "policy_arch=ssm",
         "--set", "ssm_layers=3", "--set", "ssm_state_size=32", "--set", "ssm_width=64"]
    )  # fmt: skip
    fields = spec_fields(KINDS[0], args)
    assert fields == {"policy_arch": "ssm", "ssm_layers": 3, "ssm_state_size": 32, "ssm_width": 64}
    assert args.preset == "walk-cpu-ssm"
    spec = PpoSpec(**presets.apply_preset(args.preset, fields))
    assert (spec.policy_arch, spec.ssm_layers, spec.ssm_state_size) == ("ssm", 3, 32)


@pytest.mark.parametrize(
    ("item", "limit"),
    [("ssm_layers=5", "4"), ("ssm_state_size=257", "256"), ("ssm_width=4", "8"),
     ("policy_arch=lstm", "mlp")],
)  # fmt: skip
def test_ssm_settings_are_bounded(item: str, limit: str) -> None:
    fields = parse_assignments(PpoSpec, [item])
    with pytest.raises(ValidationError, match=limit):
        PpoSpec(**fields)


def test_amp_refuses_an_ssm_policy() -> None:
    with pytest.raises(ValidationError, match="policy_arch: AMP trains mlp policies only"):
        AmpSpec(policy_arch="ssm")
