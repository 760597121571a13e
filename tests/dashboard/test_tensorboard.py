"""Per-attempt TensorBoard event files (workers/tensorboard.py)."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from tests.dashboard.tensorboard_files import read_events, read_scalars
from wildrobot.workers.tensorboard import ScalarLog


def test_attempts_write_their_own_files_and_a_resume_purges(tmp_path: Path) -> None:
    first = ScalarLog(tmp_path, attempt=1)
    for step in (10, 20, 30):
        first.write(step, {"episode/reward": step / 10, "loss/total": 1.0}, 1000.0 + step)
    first.close()
    second = ScalarLog(tmp_path, attempt=2, purge_step=20)  # resumed from the step-20 checkpoint
    second.write(30, {"episode/reward": 9.0}, 2000.0)
    second.close()
    files = sorted(tmp_path.glob("events.out.tfevents.*"))
    assert [f.name.rsplit(".", 1)[-1] for f in files] == ["attempt1", "attempt2"]
    # TensorBoard drops earlier events at step >= 20 when it meets this SessionLog START.
    purge = [e for e in read_events(files[1]) if e.HasField("session_log")]
    assert [(e.step, e.session_log.status) for e in purge] == [(20, 1)]  # 1: START
    scalars = read_scalars(tmp_path)
    assert scalars["episode/reward"] == [(10, 1.0), (20, 2.0), (30, 3.0), (30, 9.0)]
    assert [s for s, _ in scalars["loss/total"]] == [10, 20, 30]


def test_an_unwritable_directory_turns_the_log_off_not_the_job(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    log = ScalarLog(blocker / "tensorboard", attempt=1)
    assert log.enabled
    with caplog.at_level(logging.WARNING, logger="wildrobot.workers.tensorboard"):
        log.write(1, {"x": 1.0}, 0.0)  # no exception: the job goes on
        log.write(2, {"x": 2.0}, 0.0)  # off: not tried again, not warned again
    log.close()
    assert not log.enabled
    warnings = [r for r in caplog.records if "tensorboard log off" in r.getMessage()]
    assert len(warnings) == 1
    assert not (blocker / "tensorboard").exists() and blocker.read_text() == "not a directory"
