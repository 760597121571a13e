"""A tta_eval job end to end: a real front end, Redis and worker; the CLI submits and reports.

A tiny stand policy is trained by a real ppo job first (one iteration: the mechanics, not the
science; docs/tta.md has the full report of a trained policy). ~1-2 minutes on a 2-core CPU.
"""

from __future__ import annotations

import json
import time

import pytest

from tests.client.test_cli_training import cli
from tests.live_service import *  # noqa: F403 (fixtures: service, worker_factory)
from tests.live_service import Service
from tests.training.tiny_runs import STAND_TINY as STAND
from wildrobot.clients import Client
from wildrobot.clients.errors import InvalidSpec
from wildrobot.specs import TERMINAL_STATES, JobState

pytestmark = [pytest.mark.redis, pytest.mark.integration, pytest.mark.slow]

STAND_TINY = {**STAND, "num_eval_envs": 4, "export_onnx": False, "video_seconds": 0.0}


def _finish(client: Client, job_id: str, worker, timeout: float = 600):
    deadline = time.monotonic() + timeout
    job = client.get(job_id)
    while job.state not in TERMINAL_STATES and time.monotonic() < deadline:
        time.sleep(0.5)
        job = client.get(job_id)
    assert job.state == JobState.SUCCEEDED, f"{job.state}: {job.error}\n{worker.log()[-3000:]}"
    return job


@pytest.mark.timeout(1200)
def test_tta_eval_job_end_to_end(service: Service, worker_factory, tmp_path) -> None:
    worker = worker_factory()
    with Client(service.address, "alice-token") as alice:
        source = alice.submit_ppo(**STAND_TINY).job.job_id
        _finish(alice, source, worker)

        # What the service refuses, naming the field: another tenant's job, a missing step.
        with Client(service.address, "bob-token") as bob, pytest.raises(InvalidSpec) as foreign:
            bob.submit_tta(checkpoint_job_id=source, validate_only=True)
        assert "checkpoint_job_id" in str(foreign.value) and "no job" in str(foreign.value)
        with pytest.raises(InvalidSpec, match="checkpoint_step.*no checkpoint at step 7"):
            alice.submit_tta(checkpoint_job_id=source, checkpoint_step=7, validate_only=True)

        done = cli(
            service,
            "submit",
            "tta",
            "--checkpoint",
            f"{source}:16",
            "--methods",
            "none,obs_norm,best_of_n",
            "--shifts",
            "push,kp",
            "--severities",
            "1,5",
            "--episodes",
            "4",
            "--episode-length",
            "20",
            "--seeds",
            "0",
            "--set",
            "best_of_n_samples=2",
            "--set",
            "lookahead_steps=2",
            "--watch",
            timeout=900,
        )
        assert done.returncode == 0, done.stdout + done.stderr + worker.log()[-3000:]
        job_id = done.stdout.split()[1]
        assert "finished SUCCEEDED" in done.stdout
        job = alice.get(job_id)
        # Progress counts simulated control steps: 5 cells x 4 episodes x 20 steps for none and
        # obs_norm, x (1 + 2 x 2) for best_of_n.
        assert job.progress.steps_done == job.progress.steps_total == 5 * 4 * 20 * (1 + 1 + 5)

        report = cli(service, "report", job_id)
        assert report.returncode == 0, report.stderr
        lines = report.stdout.splitlines()
        header = next(line for line in lines if line.startswith("cell"))
        assert header.split() == ["cell", "none", "obs_norm", "best_of_n"]
        cells = [line.split()[0] for line in lines if line[:1].isalpha() and "/" in line.split()[0]]
        assert cells == ["push/1", "push/5", "kp/1", "kp/5"]
        # 1 acting + 1 sampling + 2 candidates x 1 lookahead forward; 2 x 2 x 5 physics steps.
        assert (
            "best_of_n  policy_forwards 4, value_forwards 2, backward_passes 0, "
            "lookahead_sim_steps 20" in report.stdout
        )
        # The paired figures against none, per method and cell.
        assert "best_of_n - none (inputs: observation, nominal_model)" in report.stdout
        assert "McNemar p" in report.stdout
        full = json.loads(cli(service, "report", job_id, "--json").stdout)
        assert full["checkpoint_job_id"] == source and full["checkpoint_step"] == 16
        cell = full["methods"]["none"]["cells"]["kp/5"]
        assert cell["episodes"] == 4 and 0.0 <= cell["fall_rate"] <= 1.0
        low, high = cell["fall_rate_ci95"]
        assert low <= cell["fall_rate"] <= high
        paired = full["methods"]["best_of_n"]["cells"]["kp/5"]["paired_vs_none"]
        assert paired["pairs"] == 4 and 0.0 <= paired["mcnemar_p"] <= 1.0

        names = sorted(a["name"] for a in alice.list_artifacts(job_id))
        assert names == [
            "attempt-1/tta_report/degradation.png",
            "attempt-1/tta_report/heatmap_best_of_n.png",
            "attempt-1/tta_report/heatmap_obs_norm.png",
            "attempt-1/tta_report/report.json",
        ]
        png = alice.download_file(job_id, names[1], tmp_path / "heatmap.png")
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

        # A tta_eval job is no checkpoint to evaluate.
        with pytest.raises(InvalidSpec, match="is a tta_eval job, not ppo"):
            alice.submit_tta(checkpoint_job_id=job_id, validate_only=True)
