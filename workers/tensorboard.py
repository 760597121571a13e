"""An attempt's metrics as TensorBoard event files: <run_dir>/tensorboard/ in the artifact store.

Written by the runner after each fenced metrics write succeeded (a stale attempt writes nothing
here either). A resumed attempt opens its own file with `purge_step` = the step it resumed from,
so TensorBoard drops what the lost attempt wrote after that checkpoint. `tensorboard --logdir
<artifact_dir>/<job_id>/tensorboard` opens the run.
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

    def write(self, step: int, values: Mapping[str, float], wall_time: float) -> None:
        """One scalar per metric at `step`; an I/O error turns the log off, never the job."""
        if self._broken:
            return
        try:
            if self._writer is None:
                from tensorboardX import SummaryWriter

                self._writer = SummaryWriter(
                    logdir=str(self._log_dir),
                    purge_step=self._purge_step,
                    filename_suffix=f".attempt{self._attempt}",
                    flush_secs=10,
                )
            for name, value in values.items():
                self._writer.add_scalar(name, value, global_step=step, walltime=wall_time)
            # No flush per iteration: the writer's thread flushes every 10 s and at close.
        except OSError as exc:
            log.warning("tensorboard log off for this attempt: %s", exc)
            self._broken = True

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None
