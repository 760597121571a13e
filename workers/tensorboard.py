"""An attempt's metrics as TensorBoard event files: <run_dir>/tensorboard/ in the artifact store.

Written by the runner after each fenced metrics write succeeded (a stale attempt writes nothing
here either): one event per iteration holding every scalar. A resumed attempt opens its own file
and first writes a SessionLog START at the step it resumed from, so TensorBoard drops what the
lost attempt wrote after that checkpoint (what SummaryWriter's `purge_step` does).
`tensorboard --logdir <artifact_dir>/<job_id>/tensorboard` opens the run.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)


class ScalarLog:
    def __init__(self, log_dir: Path, attempt: int, purge_step: int | None = None) -> None:
        self._log_dir = log_dir
        self._attempt = attempt
        self._purge_step = purge_step
        self._writer: Any = None
        self._broken = False

    def _open(self) -> Any:
        from tensorboardX import FileWriter
        from tensorboardX.proto.event_pb2 import Event, SessionLog

        # The writer's thread flushes every 10 s and at close, never per iteration.
        writer = FileWriter(
            str(self._log_dir), flush_secs=10, filename_suffix=f".attempt{self._attempt}"
        )
        if self._purge_step is not None:
            start = SessionLog(status=SessionLog.START)
            writer.add_event(Event(step=self._purge_step, session_log=start))
        return writer

    @property
    def enabled(self) -> bool:
        """False once an I/O error turned the log off for this attempt."""
        return not self._broken

    def write(self, step: int, values: Mapping[str, float], wall_time: float) -> None:
        """Every metric at `step` in one event; an I/O error turns the log off, never the job."""
        if self._broken:
            return
        try:
            from tensorboardX.proto.summary_pb2 import Summary

            if self._writer is None:
                self._writer = self._open()
            summary = Summary(
                value=[Summary.Value(tag=name, simple_value=v) for name, v in values.items()]
            )
            self._writer.add_summary(summary, global_step=step, walltime=wall_time)
        except OSError as exc:
            log.warning("tensorboard log off for this attempt: %s", exc)
            self._broken = True

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None
