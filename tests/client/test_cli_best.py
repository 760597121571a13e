"""The `best` checkpoint end to end: real front end, Redis and a JAX worker on PointMass.

Evaluated every iteration with a linear learning-rate decay (set through --set), the job
registers its best checkpoint; the listing marks it, `download --step best`, `export JOB:best`
and `video JOB:best` resolve it by name on the server.
"""

from __future__ import annotations

import json

import onnx
import pytest

from tests.client.test_cli_training import STEPS_PER_ITERATION, TINY, cli
from tests.live_service import *  # noqa: F403 (fixtures: service, worker_factory)
from tests.live_service import Service
from wildrobot.workers.export import onnx_policy

pytestmark = [pytest.mark.redis, pytest.mark.integration, pytest.mark.slow]


def test_best_is_registered_listed_and_downloadable_by_name(
    service: Service, worker_factory, tmp_path
) -> None:
    worker_factory()
    total = 4 * STEPS_PER_ITERATION
    done = cli(
        service, "submit", "ppo", *TINY, "--timesteps", str(total),
        "--set", "eval_every=1", "--set", "checkpoint_every=100",
        "--set", "learning_rate_schedule=linear", "--watch",
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    job_id = done.stdout.split()[1]

    listed = cli(service, "checkpoints", job_id, "--json")
    assert listed.returncode == 0, listed.stderr
    checkpoints = json.loads(listed.stdout)
    bests = [c for c in checkpoints if c["best"]]
    assert len(bests) == 1, checkpoints  # only the current best is marked
    best_step = bests[0]["step"]
    assert checkpoints[-1]["step"] == total  # the final one is still the latest
    if best_step != total:  # the best got its own export at the end, like the final one
        assert f"onnx export of step {best_step}" in done.stdout

    got = cli(service, "download", job_id, "--step", "best", "-o", str(tmp_path / "ckpt"), "--json")
    assert got.returncode == 0, got.stderr
    assert json.loads(got.stdout)["checkpoint"]["step"] == best_step
    meta = json.loads((tmp_path / "ckpt" / f"{best_step:012d}" / "meta.json").read_text())
    assert meta["env_steps"] == best_step and meta["best"]["step"] == best_step

    out = tmp_path / "best.onnx"
    exported = cli(service, "export", f"{job_id}:best", "--server-only", "-o", str(out), "--json")
    assert exported.returncode == 0, exported.stderr
    assert json.loads(exported.stdout)["checkpoint"]["step"] == best_step
    assert onnx_policy.read_metadata(onnx.load(str(out)))["step"] == best_step

    # PointMass has nothing to render: video resolves `best`, then says so.
    video = cli(service, "video", f"{job_id}:best", "-o", str(tmp_path / "v.mp4"))
    assert video.returncode == 7 and "no MuJoCo model" in video.stderr
    bad = cli(service, "export", f"{job_id}:bestest", "-o", str(tmp_path / "x.onnx"))
    assert bad.returncode != 0 and "'latest' or 'best'" in bad.stderr
