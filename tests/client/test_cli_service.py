"""`wildrobot-client` against the real front end and Redis (no worker): dry-run, the error
messages, and list/status/cancel/checkpoints on a job that stays queued."""

from __future__ import annotations

import io
import json

import pytest

from tests.conftest import free_port
from tests.live_service import *  # noqa: F403 (fixtures: service, worker_factory)
from tests.live_service import Service
from wildrobot.clients.cli import main

pytestmark = [pytest.mark.redis, pytest.mark.integration]

TOKEN = "alice-token"


def run_cli(address: str, *argv: str, token: str | None = TOKEN) -> tuple[int, str, str]:
    """Runs the CLI in-process; returns (exit code, stdout, stderr)."""
    out, err = io.StringIO(), io.StringIO()
    auth = ["--token", token] if token else []
    code = main(["--address", address, *auth, *argv], stdout=out, stderr=err)
    return code, out.getvalue(), err.getvalue()


def test_dry_run_with_4096_envs_validates_and_queues_nothing(service: Service) -> None:
    code, out, err = run_cli(service.address, "submit", "ppo", "--num-envs", "4096", "--dry-run")
    assert (code, err) == (0, "")
    assert "valid" in out and "4096" in out
    code, out, _ = run_cli(service.address, "list", "--json")
    assert code == 0 and json.loads(out) == []


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["--num-envs", "100k"], ["num_envs", "less than or equal to 65536"]),
        (["--num-envs", "3"], ["divisible by num_envs"]),
        (["--set", "learning_rate=0"], ["learning_rate", "greater than 0"]),
        (
            ["--set", "env_overrides.push.magnitde=3,8"],
            ["env_overrides", "push.magnitde: not a setting", "did you mean 'push.magnitude'"],
        ),
        (["--set", "env_overrides.push.enable=2"], ["push.enable: must be true or false"]),
        (["--set", "env_overrides.sim_dt=0.0005"], ["40 physics substeps", "max_substeps"]),
        (["--set", "num_hosts=64"], ["num_hosts 64 is above the limit 1", "max_hosts"]),
        (["--set", "learning_rate_schedule=step"], ["learning_rate_schedule", "'cosine'"]),
        (["--lr-schedule", "warm"], ["learning_rate_schedule", "'linear'"]),
    ],
)
def test_invalid_spec_names_field_and_rule(service: Service, argv, expected) -> None:
    code, out, err = run_cli(service.address, "submit", "ppo", *argv, "--dry-run")
    assert code == 5 and out == ""
    assert "invalid spec" in err and all(text in err for text in expected), err
    assert "Traceback" not in err


def test_learning_rate_schedule_through_set_and_flag(service: Service) -> None:
    for argv in (["--set", "learning_rate_schedule=cosine"], ["--lr-schedule", "cosine"]):
        code, out, err = run_cli(service.address, "submit", "ppo", *argv, "--dry-run", "--json")
        assert (code, err) == (0, "")
        assert json.loads(out)["job"]["spec"]["learning_rate_schedule"] == "cosine"


def test_preset_fills_the_fields_left_out(service: Service) -> None:
    code, out, err = run_cli(
        service.address,
        "submit",
        "ppo",
        "--preset",
        "walk-gpu",
        "--seed",
        "3",
        "--set",
        "env_overrides.push.magnitude=1,4",
        "--dry-run",
        "--json",
    )
    assert (code, err) == (0, "")
    spec = json.loads(out)["job"]["spec"]
    assert spec["num_envs"] == 4096 and spec["task"] == "WildRobotWalk" and int(spec["seed"]) == 3
    assert spec["policy_hidden_sizes"] == [512, 256, 128]
    assert spec["env_overrides"] == {"push.magnitude": [1.0, 4.0]}
    code, _, err = run_cli(service.address, "submit", "ppo", "--preset", "fly", "--dry-run")
    assert code == 5 and "preset: unknown 'fly' (known: walk-gpu" in err


def test_bad_token_is_an_auth_error(service: Service) -> None:
    code, _, err = run_cli(service.address, "list", token="not-a-token")
    assert code == 4 and "refused the token" in err and "Traceback" not in err
    code, _, err = run_cli(service.address, "list", token=None)
    assert code == 4 and "no token given" in err


def test_unreachable_server_names_the_address() -> None:
    address = f"127.0.0.1:{free_port()}"
    code, _, err = run_cli(address, "--timeout", "2", "status", "any")
    assert code == 3 and f"cannot reach the WildRobot server at {address}" in err
    assert "Traceback" not in err


def test_every_job_command_exits_6_naming_an_unknown_job(service: Service) -> None:
    for command in ("status", "cancel", "watch", "checkpoints"):
        code, _, err = run_cli(service.address, command, "no-such-job")
        assert code == 6 and "no-such-job" in err, (command, err)
    code, _, err = run_cli(service.address, "download", "no-such-job", "-o", "/tmp/x")
    assert code == 6 and "no-such-job" in err


def test_list_status_cancel_on_a_queued_job(service: Service, tmp_path) -> None:
    code, out, _ = run_cli(
        service.address,
        "submit",
        "ppo",
        "--task",
        "point_mass",
        "--num-envs",
        "32",
        "--set",
        "batch_size=32",
        "--name",
        "queued",
        "--json",
    )
    assert code == 0
    submitted = json.loads(out)
    job_id = submitted["job"]["job_id"]
    assert submitted["created"] is True and submitted["job"]["state"] == "PENDING"
    # Only what the user set went on the wire; the rest are the server's defaults.
    assert submitted["job"]["spec"]["num_envs"] == 32

    code, out, _ = run_cli(service.address, "status", job_id)
    assert code == 0 and job_id in out and "PENDING" in out and "queued" in out
    code, out, _ = run_cli(service.address, "list", "--state", "pending", "--kind", "ppo")
    assert code == 0 and job_id in out
    code, out, _ = run_cli(service.address, "list", "--state", "running", "--json")
    assert code == 0 and json.loads(out) == []
    code, out, err = run_cli(service.address, "checkpoints", job_id)
    assert code == 0 and "no checkpoints" in err

    code, out, _ = run_cli(service.address, "cancel", job_id)
    assert code == 0 and job_id in out and "CANCEL" in out
    code, out, _ = run_cli(service.address, "status", job_id, "--json")
    assert json.loads(out)["state"] == "CANCELLED"
    # Watching a finished job shows its final state and exits non-zero (it did not succeed).
    code, out, _ = run_cli(service.address, "watch", job_id)
    assert code == 1 and "finished CANCELLED" in out
    code, _, err = run_cli(service.address, "download", job_id, "-o", str(tmp_path))
    assert code == 6 and "no checkpoints" in err


def test_list_pages_and_limits(service: Service) -> None:
    for index in range(5):
        code, _, _ = run_cli(
            service.address, "submit", "ppo", "--name", f"job{index}", "--task", "point_mass"
        )
        assert code == 0
    code, out, _ = run_cli(service.address, "list", "--limit", "3", "--json")
    assert code == 0 and len(json.loads(out)) == 3
    from wildrobot.clients import Client

    with Client(service.address, TOKEN) as client:
        assert len(client.list(page_size=2)) == 5
        bob = Client(service.address, "bob-token")
        assert bob.list() == []  # tenants see only their own jobs
        bob.close()


def test_submit_is_idempotent_by_request_id(service: Service) -> None:
    argv = ("submit", "ppo", "--task", "point_mass", "--request-id", "r-1", "--json")
    first = json.loads(run_cli(service.address, *argv)[1])
    second = json.loads(run_cli(service.address, *argv)[1])
    assert first["job"]["job_id"] == second["job"]["job_id"]
    assert (first["created"], second["created"]) == (True, False)


def test_sdk_errors_are_typed(service: Service) -> None:
    from wildrobot.clients import AuthError, Client, InvalidSpec, JobNotFound

    with Client(service.address, TOKEN) as client:
        with pytest.raises(InvalidSpec) as info:
            client.submit_ppo(num_envs=100_000, validate_only=True)
        assert info.value.field == "num_envs" and "65536" in info.value.rule
        with pytest.raises(InvalidSpec) as info:
            client.submit_ppo(num_envs=-1)  # does not even fit the wire type
        assert info.value.field == "num_envs"
        job_id = client.submit_ppo(task="point_mass").job.job_id
        assert client.get(job_id).name == ""
    with Client(service.address, "bob-token") as bob, pytest.raises(JobNotFound):
        bob.get(job_id)  # another tenant's job does not exist for bob
    with Client(service.address, "wrong") as stranger, pytest.raises(AuthError):
        stranger.list()


@pytest.mark.parametrize(
    ("assignment", "named"),
    [
        ("env_overrides.reward_weights.alive=nan", "reward_weights.alive: must be finite"),
        ("env_overrides.reward_weights.alive=inf", "reward_weights.alive: must be finite"),
        ("env_overrides.reward_weights.alive=-1e999", "reward_weights.alive: must be finite"),
        ("learning_rate=nan", "learning_rate"),
        ("discounting=inf", "discounting"),
    ],
)
def test_non_finite_set_values_name_the_field(service: Service, assignment, named) -> None:
    """`--set` with NaN/inf: the error names the field and the rule (not protobuf's JSON
    printer's "Fail to serialize NaN")."""
    code, out, err = run_cli(
        service.address, "submit", "ppo", "--task", "point_mass", "--set", assignment, "--dry-run"
    )
    assert code != 0 and named in err, (code, out, err)
    assert "serialize" not in err and "Traceback" not in err
