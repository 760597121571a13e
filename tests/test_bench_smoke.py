"""Every bench in bench/ runs at its `--smoke` size and ends with its JSON line.

Each bench declares the keys its last stdout line always has (`JSON_KEYS`, a literal read here
without importing the bench); a bench added to bench/ is picked up by the glob and fails here
until it has `--smoke` and JSON_KEYS. The smokes assert that the bench completes, not figures.
"""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
BENCHES = sorted(path.name for path in (REPO_ROOT / "bench").glob("*.py"))
# Seconds to a few minutes on the 2-core machine, alone (2026-12-07): env_throughput 18 s,
# maml_toy under 2 minutes, learning 119, train_throughput 131 (127 with tests' XLA flags,
# tests/conftest.py), amp 172. Three compile several bigger WildRobot programs or run a service
# under faults (chaos 57 s, gpu_check 259, tta_paired 346), more than .ci/run's time budget holds
# beside the rest: they run when WILDROBOT_BENCH_SMOKES=all
# (`WILDROBOT_BENCH_SMOKES=all scripts/test tests/test_bench_smoke.py`). The fast set
# (`-m "not slow"`) runs the QUICK ones.
QUICK = {"service_load.py", "dashboard_load.py", "inverse_dynamics.py", "env_throughput.py"}
EVERY_RUN = QUICK | {"maml_toy.py", "learning.py", "train_throughput.py", "amp.py"}  # slow, in CI
ALL_SMOKES = os.environ.get("WILDROBOT_BENCH_SMOKES") == "all"


def declared_keys(path: Path) -> tuple[str, ...]:
    """The bench's JSON_KEYS literal."""
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.Assign) and any(
            isinstance(target, ast.Name) and target.id == "JSON_KEYS" for target in node.targets
        ):
            return tuple(ast.literal_eval(node.value))
    raise AssertionError(f"bench/{path.name} declares no JSON_KEYS")


def test_every_bench_is_covered() -> None:
    assert {"service_load.py", "dashboard_load.py", "gpu_check.py"} <= set(BENCHES)
    for name in BENCHES:
        assert "--smoke" in (REPO_ROOT / "bench" / name).read_text(), f"bench/{name}: no --smoke"


def _marks(name: str) -> tuple[pytest.MarkDecorator, ...]:
    """Quick smokes are in the fast set; the others are slow, and those outside EVERY_RUN opt-in."""
    if name in QUICK:
        return ()
    if name in EVERY_RUN:
        return (pytest.mark.slow,)
    reason = "compiles WildRobot programs: WILDROBOT_BENCH_SMOKES=all"
    return (pytest.mark.slow, pytest.mark.skipif(not ALL_SMOKES, reason=reason))


@pytest.mark.parametrize("bench", [pytest.param(name, marks=_marks(name)) for name in BENCHES])
def test_smoke_prints_its_json(bench: str) -> None:
    path = REPO_ROOT / "bench" / bench
    keys = declared_keys(path)
    proc = subprocess.run(
        [sys.executable, str(path), "--smoke"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=840,
    )
    assert proc.returncode == 0, (
        f"bench/{bench} --smoke exited {proc.returncode}:\n{proc.stderr[-3000:]}"
    )
    lines = proc.stdout.strip().splitlines()
    assert lines, f"bench/{bench} printed nothing"
    result = json.loads(lines[-1])
    missing = [key for key in keys if key not in result]
    assert not missing, f"bench/{bench}: the last line lacks {missing}: {lines[-1][:500]}"
