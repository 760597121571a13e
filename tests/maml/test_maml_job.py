"""The `maml` job kind through the service: `submit maml` parsing, the server's validation (dry
run, bounds and the cost limit named), the handler registry, and an end-to-end run on PointNav
whose stream carries the pre/post-adaptation returns, the gain and the inner gradient norms, and
whose checkpoint tta_eval refuses (PointNav has no robot dynamics to shift)."""

from __future__ import annotations

import io
import json

import pytest

from tests.live_service import *  # noqa: F403 (fixtures: service, worker_factory)
from tests.live_service import Service
from wildrobot.clients import Client, errors
from wildrobot.clients.cli import build_parser, main
from wildrobot.clients.commands.submit import KINDS, spec_fields
from wildrobot.specs import JobKind
from wildrobot.workers.handlers import get_handler
from wildrobot.workers.handlers import maml as maml_handler

MAML = next(kind for kind in KINDS if kind.name == "maml")


def run_cli(address: str, *argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(["--address", address, "--token", "alice-token", *argv], stdout=out, stderr=err)
    return code, out.getvalue(), err.getvalue()


def test_submit_maml_parses_its_flags() -> None:
    args = build_parser().parse_args(
        ["submit", "maml", "--task", "stand", "--tasks-per-batch", "8", "--inner-steps", "1",
         "--inner-lr", "1e-2", "--set", "first_order=false", "--dry-run"]
    )  # fmt: skip
    assert args.submit_kind is MAML
    assert spec_fields(MAML, args) == {
        "task": "stand",
        "tasks_per_batch": 8,
        "inner_steps": 1,
        "inner_lr": 0.01,
        "first_order": False,
    }


def test_the_handler_is_registered_for_maml() -> None:
    assert get_handler(JobKind.MAML) is maml_handler.run


@pytest.mark.redis
@pytest.mark.integration
def test_dry_run_and_refusals_name_the_field(service: Service) -> None:
    code, out, err = run_cli(
        service.address, "submit", "maml", "--task", "stand", "--tasks-per-batch", "8",
        "--inner-steps", "1", "--inner-lr", "1e-2", "--dry-run",
    )  # fmt: skip
    assert (code, err) == (0, ""), err
    assert "valid maml spec" in out and "tasks_per_batch=8" in out
    with Client(service.address, "alice-token") as alice:
        with pytest.raises(errors.InvalidSpec, match="inner_steps"):
            alice.submit_maml(inner_steps=11, validate_only=True)
        # Within the spec's own bound (5e7) but above the server's per-iteration cost limit.
        with pytest.raises(errors.InvalidSpec, match="episodes_per_task.*above the limit"):
            alice.submit_maml(
                tasks_per_batch=64, episodes_per_task=4096, episode_length=64, validate_only=True
            )
    code, out, _ = run_cli(service.address, "list", "--json")
    assert code == 0 and json.loads(out) == []


@pytest.mark.redis
@pytest.mark.integration
def test_maml_job_trains_and_watch_shows_adaptation(service: Service, worker_factory) -> None:
    worker_factory()
    # tests/maml/test_maml_training.py's tiny spec: the same program, so the compile is cached.
    argv = [
        "submit", "maml", "--task", "point_nav", "--iterations", "2", "--tasks-per-batch", "3",
        "--episodes-per-task", "4", "--episode-length", "8", "--inner-steps", "1",
        "--inner-lr", "0.5", "--set", "outer_updates=2", "--set", "policy_hidden_sizes=16",
        "--set", "value_hidden_sizes=16", "--set", "checkpoint_every=100", "--watch",
    ]  # fmt: skip
    code, out, err = run_cli(service.address, *argv)
    assert code == 0, out + err
    assert "finished SUCCEEDED" in out, out
    for name in ("maml/pre_adaptation_return", "maml/adaptation_gain", "maml/inner_grad_norm"):
        assert name in out, out
    code, out, _ = run_cli(service.address, "list", "--json")
    (job,) = json.loads(out)
    code, out, err = run_cli(service.address, "checkpoints", job["job_id"])
    assert code == 0 and str(2 * 2 * 3 * 4 * 8) in out, out + err
    # A maml job can be a tta_eval source only on a WildRobot task: the shift suite changes the
    # robot's dynamics, which PointNav does not have (tests/tta/test_source.py loads a
    # WildRobotStand meta-initialization).
    with Client(service.address, "alice-token") as alice, pytest.raises(errors.InvalidSpec) as no:
        alice.submit_tta(checkpoint_job_id=job["job_id"], validate_only=True)
    message = str(no.value)
    assert "checkpoint_job_id" in message and "trained on PointNav" in message, message
