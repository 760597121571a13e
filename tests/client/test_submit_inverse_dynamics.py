"""Batch inverse-dynamics jobs from the SDK and `submit inverse-dynamics` against the real front
end (no worker: what is uploaded and what the queued job names), and INVALID_ARGUMENT mapped by
call: InvalidSpec for a spec, InvalidRequest for anything else."""

from __future__ import annotations

import json

import numpy as np
import pytest

from tests.client.test_cli_service import run_cli
from tests.live_service import *  # noqa: F403 (fixtures: service, worker_factory)
from tests.live_service import Service
from wildrobot.clients import Client, InvalidRequest, InvalidSpec
from wildrobot.clients.cli import _message as cli_message
from wildrobot.specs import JobState

pytestmark = [pytest.mark.redis, pytest.mark.integration]

TOKEN = "alice-token"


def _trial(path, frames: int = 8, seed: int = 0):
    rng = np.random.default_rng(seed)
    np.savez(
        path,
        qpos=rng.normal(size=(frames, 24)).astype(np.float32),
        grf=rng.normal(size=(frames, 2, 3)).astype(np.float32),
        cop=rng.normal(size=(frames, 2, 3)).astype(np.float32),
        rate_hz=np.float64(250.0),
    )
    return path


def _inputs(service: Service):
    return service.artifact_dir / "tenants" / "alice" / "inputs"


def test_sdk_uploads_local_trials_and_names_them_in_the_job(service: Service, tmp_path) -> None:
    walk, stand = _trial(tmp_path / "walk 1.npz"), _trial(tmp_path / "stand.npz", seed=1)
    with Client(service.address, TOKEN) as client:
        client.upload_trial(stand, "lab/stand.npz")
        dry = client.submit_inverse_dynamics([walk], smooth_window=3, validate_only=True)
        assert client.list() == []  # a dry run queues nothing
        result = client.submit_inverse_dynamics(
            [walk], trial_names=["lab/stand.npz"], smooth_window=3, float64=True, name="batch"
        )
        job = result.job
        assert result.created and job.state == JobState.PENDING and job.name == "batch"
        lab, uploaded = job.spec["trial_names"]
        assert lab == "lab/stand.npz" and dry.job.spec["trial_names"] == [uploaded]
        # Content-addressed, the file name kept (its space made safe), the bytes as sent.
        assert uploaded.startswith("trials/sha256-") and uploaded.endswith("/walk_1.npz")
        assert (_inputs(service) / uploaded).read_bytes() == walk.read_bytes()
        assert job.spec["smooth_window"] == 3 and job.spec["float64"] is True
        # Another file under the same name is another upload: the queued job's input stays.
        _trial(walk, seed=2)
        again = client.submit_inverse_dynamics([walk]).job.spec["trial_names"]
        assert again != [uploaded] and again[0].endswith("/walk_1.npz")
        assert (_inputs(service) / uploaded).read_bytes() != walk.read_bytes()


def test_sdk_rejects_bad_trials_and_options_before_uploading(service: Service, tmp_path) -> None:
    (tmp_path / "pickle.npz").write_bytes(b"\x80\x04 a pickle")
    with Client(service.address, TOKEN) as client:
        with pytest.raises(InvalidSpec) as info:
            client.submit_inverse_dynamics([_trial(tmp_path / "ok.npz"), tmp_path / "pickle.npz"])
        assert info.value.field == "trials[1]" and "is not an .npz file" in info.value.rule
        with pytest.raises(InvalidSpec) as info:
            client.submit_inverse_dynamics([tmp_path / "ok.npz"], smooth_window=2)
        assert info.value.field == "smooth_window"
        with pytest.raises(InvalidSpec) as info:
            client.submit_inverse_dynamics()
        assert "exactly one of trials_npz or trial_names" in str(info.value)
        with pytest.raises(InvalidSpec) as info:  # the server: not among alice's inputs
            client.submit_inverse_dynamics(trial_names=["lab/missing.npz"], validate_only=True)
        assert info.value.field == "trial_names[0]"
        assert "is not among your uploaded inputs" in info.value.rule
        assert client.list_uploads() == []


def test_cli_submit_inverse_dynamics(service: Service, tmp_path) -> None:
    trial = _trial(tmp_path / "walk.npz")
    code, out, err = run_cli(
        service.address, "submit", "inverse-dynamics", str(trial), "--smooth-window", "5",
        "--set", "smooth_forces=false", "--json",
    )  # fmt: skip
    assert (code, err) == (0, "")
    spec = json.loads(out)["job"]["spec"]
    (name,) = spec["trial_names"]
    assert name.endswith("/walk.npz") and spec["smooth_window"] == 5
    assert spec["smooth_forces"] is False
    code, out, err = run_cli(
        service.address, "submit", "inverse-dynamics", "--trial-names", name, "--dry-run"
    )
    assert (code, err) == (0, "") and "valid inverse-dynamics spec" in out
    code, _, err = run_cli(service.address, "submit", "inverse-dynamics", str(tmp_path / "x.txt"))
    assert code == 5 and "trials[0]" in err and "not an .npz or .csv" in err
    code, _, err = run_cli(service.address, "submit", "inverse-dynamics")
    assert code == 2 and "give trial files" in err


def test_invalid_argument_is_invalid_spec_only_for_specs(service: Service) -> None:
    with Client(service.address, TOKEN) as client:
        with pytest.raises(InvalidRequest) as info:
            client.list(page_size=501)
        assert not isinstance(info.value, InvalidSpec)
        assert (info.value.field, info.value.rule) == ("page_size", "0..500")
        assert str(info.value).startswith("ListJobs: ")
        with pytest.raises(InvalidSpec) as spec:
            client.submit_ppo(num_envs=100_000, validate_only=True)
        assert spec.value.field == "num_envs"
    assert cli_message(info.value) == ("ListJobs: page_size: 0..500", 5)
