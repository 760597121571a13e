"""`wildrobot-client export` / `video` end to end: real front end, Redis and a JAX worker.

A PointMass job's final checkpoint gets its ONNX export on the worker (DownloadArtifact sends
it); an earlier checkpoint has none, so the client makes it here from the checkpoint. PointMass
has nothing to render: `video` says so (the video itself is tested in tests/export/).
"""

from __future__ import annotations

import json

import numpy as np
import onnx
import pytest

from tests.client.test_cli_training import STEPS_PER_ITERATION, TINY, TOKEN, cli
from tests.live_service import *  # noqa: F403 (fixtures: service, worker_factory)
from tests.live_service import Service
from wildrobot.clients import Client, ExportNotFound
from wildrobot.workers.export import onnx_policy

pytestmark = [pytest.mark.redis, pytest.mark.integration, pytest.mark.slow]


def test_export_from_the_worker_and_made_here(service: Service, worker_factory, tmp_path) -> None:
    worker_factory()
    total = 2 * STEPS_PER_ITERATION
    done = cli(
        service, "submit", "ppo", *TINY, "--timesteps", str(total),
        "--set", "checkpoint_every=1", "--watch",
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    job_id = done.stdout.split()[1]
    assert f"onnx export of step {total}" in done.stdout  # the worker's log line

    final = cli(service, "export", job_id, "-o", str(tmp_path / "final.onnx"), "--json")
    assert final.returncode == 0, final.stderr
    report = json.loads(final.stdout)
    assert report["made_here"] is False and report["checkpoint"]["step"] == total
    model = onnx.load(str(tmp_path / "final.onnx"))
    meta = onnx_policy.read_metadata(model)
    assert meta["job_id"] == job_id and meta["step"] == total and meta["task"] == "PointMass"
    session = onnx_policy.onnx_session(tmp_path / "final.onnx")
    actions = onnx_policy.run_onnx(session, np.zeros((3, 6), np.float32))
    assert actions.shape == (3, 2) and np.all(np.abs(actions) <= 1.0)

    # The first checkpoint has no export on the server: --server-only fails, the default makes it.
    first = f"{job_id}:{STEPS_PER_ITERATION}"
    refused = cli(service, "export", first, "--server-only", "-o", str(tmp_path / "x.onnx"))
    assert refused.returncode == 6 and "no onnx export" in refused.stderr
    made = cli(service, "export", first, "-o", str(tmp_path / "first.onnx"))
    assert made.returncode == 0, made.stderr
    assert "made here from the checkpoint" in made.stdout
    meta = onnx_policy.read_metadata(onnx.load(str(tmp_path / "first.onnx")))
    assert meta["job_id"] == job_id and meta["step"] == STEPS_PER_ITERATION

    video = cli(service, "video", job_id, "-o", str(tmp_path / "v.mp4"))
    assert video.returncode == 7 and "no MuJoCo model" in video.stderr
    assert not (tmp_path / "v.mp4").exists()
    with Client(service.address, TOKEN) as client, pytest.raises(ExportNotFound):
        client.download_artifact(job_id, "video", tmp_path / "v.mp4")
