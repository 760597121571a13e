"""scripts/setup prints one line per step and keeps the installers' output in a log file."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

from tests.deploy.test_manifests import ROOT

NOISY = 'for i in $(seq 1 200); do echo "SetuptoolsDeprecationWarning number $i" >&2; done'


def run_steps(script: str, log: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["bash", "-c", f". scripts/steps.sh; step_log_init; {script}"],
        cwd=ROOT,
        env={"PATH": "/usr/bin:/bin", "STEP_LOG": str(log)},
        capture_output=True,
        text=True,
        timeout=30,
    )


def test_a_step_prints_one_line_naming_the_log(tmp_path: Path) -> None:
    log = tmp_path / "logs" / "setup.log"
    done = run_steps(f"step 'installing things' bash -c '{NOISY}'; step 'again' true", log)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        f"setup: installing things ... ok (log: {log})",
        f"setup: again ... ok (log: {log})",
    ]
    assert done.stderr == ""
    assert (
        len(re.findall(r"^SetuptoolsDeprecationWarning number \d+$", log.read_text(), re.M)) == 200
    )


def test_a_failed_step_shows_the_end_of_the_log_and_stops(tmp_path: Path) -> None:
    log = tmp_path / "setup.log"
    done = run_steps(f"step 'breaking' bash -c '{NOISY}; exit 3'; echo not reached", log)
    assert done.returncode == 3
    assert done.stdout == f"setup: breaking ... FAILED (exit 3; full log: {log})\n"
    shown = re.findall(r"number (\d+)", done.stderr)
    assert shown == [str(i) for i in range(161, 201)]  # the last 40 lines


def test_setup_runs_every_installer_as_a_step() -> None:
    """No pip, apt-get or venv command in scripts/setup writes to the terminal directly."""
    lines = (ROOT / "scripts" / "setup").read_text().splitlines()
    installers = [
        (i, line)
        for i, line in enumerate(lines)
        if re.search(r"pip install|apt-get (install|update)|-m venv", line)
        and not line.lstrip().startswith("#")
    ]
    assert len(installers) >= 6
    for i, line in installers:
        statement = line if not lines[i - 1].rstrip().endswith("\\") else lines[i - 1] + line
        assert re.match(r"\s*step ", statement) or re.match(r"\s*step ", lines[i - 2]), line
