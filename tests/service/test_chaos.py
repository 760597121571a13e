"""A minimal round of bench/chaos.py (a few faults, two workers, real Redis with AOF restarted):
every acknowledged job ends exactly once, no event is lost or repeated, no checkpoint is corrupt,
nothing is stuck. The full soak is `bench/chaos.py --quick`."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.slow, pytest.mark.redis, pytest.mark.integration]

BENCH = Path(__file__).resolve().parents[2] / "bench" / "chaos.py"


def test_minimal_chaos_round() -> None:
    args = ["--jobs", "2", "--faults", "6", "--workers", "2", "--fault-s", "50", "--drain-s", "120"]
    done = subprocess.run(
        [sys.executable, str(BENCH), *args, "--seed", "7"],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["jobs"] == 2
    assert result["faults_injected"] >= 5, result
    problems = {k: result[k] for k in ("lost", "duplicated", "corrupt", "stuck")}
    assert problems == {"lost": 0, "duplicated": 0, "corrupt": 0, "stuck": 0}, done.stdout[-4000:]
    assert result["checkpoints_checked"] >= 2 * 3  # every job's three checkpoints loaded
