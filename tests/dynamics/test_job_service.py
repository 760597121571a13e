"""The inverse_dynamics job end to end: submit through the real front end, a real worker takes it
from Redis, and its .npz artifact holds the torques the simulation applied."""

from __future__ import annotations

import io
import time

import numpy as np
import pytest

from tests.live_service import *  # noqa: F403 (fixtures: service, worker_factory)
from tests.live_service import Service
from wildrobot import convert
from wildrobot.clients import Client
from wildrobot.envs.dynamics import trial as trial_io
from wildrobot.specs import TERMINAL_STATES, InverseDynamicsSpec, JobState

TOKEN = "alice-token"


@pytest.mark.slow
@pytest.mark.integration
@pytest.mark.redis
def test_inverse_dynamics_job_through_the_queue(
    service: Service, worker_factory, sim_trial, tmp_path
):
    upload = io.BytesIO()
    trial_io.save_npz(sim_trial, upload)
    spec = InverseDynamicsSpec(trials_npz=(upload.getvalue(),), float64=True)
    with Client(service.address, TOKEN) as client:
        job_id = client.submit(convert.spec_to_proto(spec)).job.job_id
        worker = worker_factory()
        deadline = time.monotonic() + 300
        job = client.get(job_id)
        while job.state not in TERMINAL_STATES and time.monotonic() < deadline:
            time.sleep(0.5)
            job = client.get(job_id)
        assert job.state == JobState.SUCCEEDED, f"{job.state}: {job.error}\n{worker.log()[-3000:]}"
        assert job.attempt == 1
        # The upload went to alice's inputs; the job holds its name, the worker read it there.
        (name,) = job.spec["trial_names"]
        assert name.startswith("uploads/sha256-") and "trials_npz" not in job.spec
        # The output is reachable through the service, not only on the worker's disk.
        (listed,) = client.list_artifacts(job_id)
        stem = name.rsplit("/", 1)[1].removesuffix(".npz")
        assert listed["name"] == f"attempt-1/inverse_dynamics/0000_{stem}.npz"
        assert listed["kind"] == "inverse_dynamics"
        path = client.download_file(job_id, listed["name"], tmp_path / "out.npz")
    with np.load(path) as out:
        torque, valid = out["joint_torque"], out["valid"]
    assert torque.shape == sim_trial.truth["joint_torque"].shape
    # float64 with finite differences of the simulated qpos: the handler's own tolerance (1e-6).
    assert np.abs(torque - sim_trial.truth["joint_torque"])[valid].max() < 1e-6
