"""`wildrobot-client` end to end: real front end, real Redis, a real worker training PointMass.

The console script runs as a subprocess (the way people run it); the reconnect test drives the
CLI in-process so the test can cut its stream at a chosen event through a proxy it controls.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from tests.client.proxy import CuttableProxy
from tests.live_service import *  # noqa: F403 (fixtures: service, worker_factory)
from tests.live_service import Service
from wildrobot.clients import Client
from wildrobot.clients.cli import main
from wildrobot.clients.parsing import format_count

# Each starts a JAX worker and trains for real: ~20-30 s on a 2-core CPU.
pytestmark = [pytest.mark.redis, pytest.mark.integration, pytest.mark.slow]

TOKEN = "alice-token"
CLIENT = str(Path(sys.executable).with_name("wildrobot-client"))
# 32 envs x 4 minibatches x 10 unroll steps = 1280 env steps per iteration (see tests/training).
STEPS_PER_ITERATION = 1280
TINY = [
    "--task",
    "point_mass",
    "--num-envs",
    "32",
    "--episode-length",
    "50",
    "--set",
    "batch_size=32",
    "--set",
    "num_minibatches=4",
    "--set",
    "unroll_length=10",
    "--set",
    "num_updates_per_batch=2",
    "--set",
    "policy_hidden_sizes=32,32",
    "--set",
    "value_hidden_sizes=32,32",
    "--set",
    "num_eval_envs=8",
]


def cli(service: Service, *argv: str, timeout: float = 240) -> subprocess.CompletedProcess:
    """The installed `wildrobot-client`, with address and token from the environment."""
    env = dict(os.environ, WILDROBOT_ADDRESS=service.address, WILDROBOT_TOKEN=TOKEN)
    return subprocess.run([CLIENT, *argv], capture_output=True, text=True, env=env, timeout=timeout)


def test_submit_watch_checkpoints_download(service: Service, worker_factory, tmp_path) -> None:
    worker_factory()
    iterations = 6
    done = cli(
        service,
        "submit",
        "ppo",
        *TINY,
        "--timesteps",
        str(iterations * STEPS_PER_ITERATION),
        "--set",
        "checkpoint_every=2",
        "--name",
        "tiny",
        "--watch",
    )
    assert done.returncode == 0, done.stdout + done.stderr
    out = done.stdout
    job_id = out.split()[1]  # "submitted <job> PENDING"
    assert out.startswith(f"submitted {job_id}")
    assert "state RUNNING" in out and "checkpoint at step" in out
    assert "progress " in out and "steps/s" in out and "reward" in out
    assert "finished SUCCEEDED" in out and "Traceback" not in done.stderr
    final = [line for line in out.splitlines() if line.startswith("progress")][-1]
    total = iterations * STEPS_PER_ITERATION
    assert f"{format_count(total)}/{format_count(total)} steps (100%)" in final, final

    status = cli(service, "status", job_id, "--json")
    job = json.loads(status.stdout)
    assert job["state"] == "SUCCEEDED" and job["progress"]["steps_done"] >= total

    listed = json.loads(cli(service, "list", "--state", "succeeded", "--json").stdout)
    assert [j["job_id"] for j in listed] == [job_id]

    checkpoints = json.loads(cli(service, "checkpoints", job_id, "--json").stdout)
    steps = [c["step"] for c in checkpoints]
    assert steps == sorted(steps) and len(steps) >= 2 and steps[-1] == total

    latest = cli(service, "download", job_id, "-o", str(tmp_path / "latest"))
    assert latest.returncode == 0, latest.stderr
    assert f"step {total:,}" in latest.stdout
    spec_files = list((tmp_path / "latest").rglob("spec.json"))
    assert len(spec_files) == 1 and json.loads(spec_files[0].read_text())["task"] == "PointMass"

    first = cli(service, "download", job_id, "--step", str(steps[0]), "-o", str(tmp_path / "first"))
    assert first.returncode == 0, first.stderr
    assert list((tmp_path / "first").rglob("spec.json"))
    missing = cli(service, "download", job_id, "--step", "7", "-o", str(tmp_path / "none"))
    assert missing.returncode == 6 and "no checkpoint at step 7" in missing.stderr


class CutAfter(io.StringIO):
    """stdout for the CLI that cuts the proxy once `after` metric events have been printed."""

    def __init__(self, proxy: CuttableProxy, after: int) -> None:
        super().__init__()
        self.proxy, self.after, self.metrics, self.cut = proxy, after, 0, False

    def write(self, text: str) -> int:
        if '"type": "Metrics"' in text:
            self.metrics += 1
            if self.metrics == self.after and not self.cut:
                self.cut = True
                self.proxy.cut(down_s=0.5)
        return super().write(text)


def test_watch_survives_a_cut_stream_without_losing_or_repeating(
    service: Service, worker_factory
) -> None:
    # A warm PointMass iteration takes ~25 ms here, so 1000 iterations train for ~25 s: the cut
    # (after 3 iterations) and the reconnect (0.5 s outage plus backoff) land mid-job.
    iterations = 1000
    with Client(service.address, TOKEN) as client:
        fields = dict(
            task="point_mass",
            num_envs=32,
            episode_length=50,
            batch_size=32,
            num_minibatches=4,
            unroll_length=10,
            num_updates_per_batch=2,
            policy_hidden_sizes=(32, 32),
            value_hidden_sizes=(32, 32),
            num_eval_envs=8,
            checkpoint_every=1000,
            num_timesteps=iterations * STEPS_PER_ITERATION,
        )
        job_id = client.submit_ppo(**fields).job.job_id
    proxy = CuttableProxy(service.thread.port)
    out = CutAfter(proxy, after=3)
    err = io.StringIO()
    result: dict[str, int] = {}
    watcher = threading.Thread(
        target=lambda: result.setdefault(
            "code",
            main(
                ["--address", proxy.address, "--token", TOKEN, "watch", job_id, "--json"],
                stdout=out,
                stderr=err,
            ),
        )
    )
    watcher.start()  # watching from PENDING: the stream is live when the cut comes
    worker_factory()
    watcher.join(240)
    proxy.close()
    assert not watcher.is_alive()

    events = [json.loads(line) for line in out.getvalue().splitlines()]
    assert out.cut and proxy.connections >= 2, "the stream was cut and the watch reconnected"
    assert "connection lost" in err.getvalue() and "resuming after event" in err.getvalue()
    seqs = [e["seq"] for e in events if e["type"] != "Snapshot"]
    assert seqs == list(range(1, len(seqs) + 1)), "contiguous, in order, none repeated"
    snapshots = [i for i, e in enumerate(events) if e["type"] == "Snapshot"]
    assert len(snapshots) >= 2  # one per connection
    resumed = events[snapshots[1]]
    assert resumed["job"]["state"] == "RUNNING", "reconnected while the job was still training"
    assert any(e["type"] == "Metrics" for e in events[snapshots[1] :])
    assert events[-1]["type"] == "StateChanged" and events[-1]["state"] == "SUCCEEDED"
    assert result["code"] == 0
    metric_steps = [e["step"] for e in events if e["type"] == "Metrics"]
    assert metric_steps[-1] == iterations * STEPS_PER_ITERATION
    with Client(service.address, TOKEN) as client:
        assert seqs[-1] == client.get(job_id).last_seq


def test_cancel_a_running_job(service: Service, worker_factory, tmp_path) -> None:
    worker_factory()
    with Client(service.address, TOKEN) as client:
        job_id = client.submit_ppo(
            task="point_mass",
            num_envs=32,
            episode_length=50,
            batch_size=32,
            num_minibatches=4,
            unroll_length=10,
            num_updates_per_batch=2,
            policy_hidden_sizes=(32, 32),
            value_hidden_sizes=(32, 32),
            num_eval_envs=8,
            checkpoint_every=1000,
            num_timesteps=10_000 * STEPS_PER_ITERATION,
        ).job.job_id
        for event in client.watch(job_id):
            if type(event).__name__ == "Metrics":
                break  # training has started
    cancelled = cli(service, "cancel", job_id)
    assert cancelled.returncode == 0 and job_id in cancelled.stdout
    assert "CANCEL" in cancelled.stdout
    watched = cli(service, "watch", job_id)
    assert watched.returncode == 1, watched.stdout + watched.stderr
    assert "finished CANCELLED" in watched.stdout
    # The runner stops between iterations and writes a final checkpoint to resume from.
    checkpoints = json.loads(cli(service, "checkpoints", job_id, "--json").stdout)
    assert checkpoints and checkpoints[-1]["step"] < 10_000 * STEPS_PER_ITERATION
    got = cli(service, "download", job_id, "-o", str(tmp_path / "out"), "--json")
    assert (
        got.returncode == 0
        and json.loads(got.stdout)["checkpoint"]["step"] == (checkpoints[-1]["step"])
    )
