"""Env overrides and cost limits are checked at submit (dry-run too), through the real server."""

from __future__ import annotations

from pathlib import Path

import grpc
import pytest

from tests.live_service import ServerThread, Service, server_config
from tests.service.test_api import code_of, db_keys, submit
from wildrobot.v1 import jobs_pb2

pytestmark = [pytest.mark.redis, pytest.mark.integration]

WALK = jobs_pb2.PpoSpec(task="WildRobotWalk", num_envs=4, batch_size=4, num_minibatches=2)


def walk_with(**overrides: object) -> jobs_pb2.PpoSpec:
    spec = jobs_pb2.PpoSpec()
    spec.CopyFrom(WALK)
    for key, value in overrides.items():
        key = key.replace("__", ".")
        if isinstance(value, tuple):
            spec.env_overrides[key].list_value.values.add().number_value = value[0]
            spec.env_overrides[key].list_value.values.add().number_value = value[1]
        elif isinstance(value, bool):
            spec.env_overrides[key].bool_value = value
        elif isinstance(value, str):
            spec.env_overrides[key].string_value = value
        else:
            spec.env_overrides[key].number_value = value
    return spec


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"reward_weights__tracking_lin_vl": 1.0}, "reward_weights.tracking_lin_vl: not a setting"),
        ({"push__enable": "yes"}, "push.enable: must be true or false"),
        ({"push__magnitude": 3.0}, "push.magnitude: must be a range"),
        ({"action_scale": 9.0}, "action_scale: 9 is outside [0, 1.5]"),
        ({"sim_dt": 0.003}, "not a whole multiple of sim_dt"),
    ],
)
@pytest.mark.parametrize("validate_only", [False, True])
def test_bad_env_overrides_are_refused_at_submit(
    service, overrides: dict, message: str, validate_only: bool
) -> None:
    before = db_keys(service.redis_url)
    with pytest.raises(grpc.RpcError) as err:
        submit(service.stub("alice"), spec=walk_with(**overrides), validate_only=validate_only)
    assert code_of(err) == grpc.StatusCode.INVALID_ARGUMENT
    assert "spec.ppo.env_overrides" in err.value.details() and message in err.value.details()
    assert db_keys(service.redis_url) == before


def test_good_overrides_round_trip_in_their_types(service) -> None:
    spec = walk_with(push__interval_steps=(20, 60), push__magnitude=(1, 3), push__enable=False)
    job = submit(service.stub("alice"), spec=spec).job
    stored = job.spec.ppo.env_overrides
    assert [v.number_value for v in stored["push.interval_steps"].list_value.values] == [20, 60]
    assert stored["push.enable"].bool_value is False


@pytest.mark.parametrize(
    ("fields", "overrides", "field", "rule"),
    [
        (
            {"num_envs": 64, "batch_size": 4096, "num_minibatches": 1024, "unroll_length": 1000},
            {},
            "spec.ppo.batch_size",
            "env steps per iteration is above the limit 16777216",
        ),
        (
            {"num_eval_envs": 65536, "episode_length": 100_000, "eval_every": 1},
            {},
            "spec.ppo.num_eval_envs",
            "env steps per evaluation is above the limit 16777216",
        ),
        ({}, {"sim_dt": 0.0005}, "spec.ppo.env_overrides", "40 physics substeps"),
        (
            {"num_hosts": 2},
            {},
            "spec.ppo.num_hosts",
            "num_hosts 2 is above the limit 1 hosts per job on this deployment (max_hosts)",
        ),
    ],
)
def test_cost_limits_name_the_rule(service, fields, overrides, field, rule) -> None:
    spec = walk_with(**overrides)
    for name, value in fields.items():
        setattr(spec, name, value)
    for validate_only in (True, False):
        with pytest.raises(grpc.RpcError) as err:
            submit(service.stub("alice"), spec=spec, validate_only=validate_only)
        assert code_of(err) == grpc.StatusCode.INVALID_ARGUMENT
        assert field in err.value.details() and rule in err.value.details()


def test_a_deployment_can_raise_the_limits(redis_url: str, tmp_path: Path) -> None:
    artifact_dir = tmp_path / "artifacts"
    artifact_dir.mkdir()
    config = server_config(redis_url, artifact_dir, max_substeps=40, max_hosts=2)
    thread = ServerThread(config).start()
    service = Service(thread, redis_url, artifact_dir)
    try:
        response = submit(service.stub("alice"), spec=walk_with(sim_dt=0.0005), validate_only=True)
        assert response.job.spec.ppo.env_overrides["sim_dt"].number_value == 0.0005
        two_hosts = walk_with()
        two_hosts.num_hosts = 2
        response = submit(service.stub("alice"), spec=two_hosts, validate_only=True)
        assert response.job.spec.ppo.num_hosts == 2
        two_hosts.num_hosts = 4
        with pytest.raises(grpc.RpcError) as err:
            submit(service.stub("alice"), spec=two_hosts)
        assert code_of(err) == grpc.StatusCode.INVALID_ARGUMENT
        assert "spec.ppo.num_hosts: num_hosts 4 is above the limit 2" in err.value.details()
    finally:
        service.close()
        thread.stop()


def test_progress_total_is_what_the_run_will_do(service) -> None:
    # 400 steps asked, 4 x 2 x 20 = 160 per iteration: 3 iterations, 480 steps.
    spec = jobs_pb2.PpoSpec()
    spec.CopyFrom(WALK)
    spec.num_timesteps = 400
    spec.unroll_length = 20
    job = submit(service.stub("alice"), spec=spec).job
    assert job.progress.steps_total == 480
