"""The `ppo` job: train_ppo with hooks that publish through the (fenced) job context.

After a run that was not stopped, the final checkpoint (and the `best` one) gets its exports (wildrobot.exports):
the policy as ONNX (`spec.export_onnx`) and a rollout video (`spec.video_seconds`, WildRobot
tasks). They are extras: a failure there is logged at error level on the job and the job still
succeeds with its checkpoint. Each is written under a hidden name and renamed into place only
after the fenced log line that reports it succeeded (a stale attempt makes nothing visible).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from wildrobot import exports
from wildrobot.specs import PpoSpec

from . import HandlerResult, JobContext

if TYPE_CHECKING:  # the trainer's module imports JAX: only the runner process loads it
    from ..training.api import TrainResult


class JobHooks:
    """A trainer's hooks (workers.training.api.TrainHooks) over the job context: every metric
    and checkpoint goes out as a fenced write; the amp handler uses them too."""

    def __init__(self, context: JobContext) -> None:
        self._context = context

    def on_metrics(self, step: int, metrics: Mapping[str, float]) -> None:
        self._context.publish.metrics(step, dict(metrics))

    def on_checkpoint(self, step: int, path: Path, best: bool = False) -> None:
        self._context.publish.checkpoint(step, path, best=best)

    def should_stop(self) -> bool:
        return self._context.should_stop()


def run(context: JobContext, spec: PpoSpec) -> HandlerResult:
    if spec.num_hosts > 1:  # launched on num_hosts hosts; this process only watches it
        from ..launch.run import run_multi_host

        return run_multi_host(context, spec)
    from ..training.ppo import train_ppo  # JAX: only in the runner process

    result = train_ppo(spec, context.run_dir, JobHooks(context), resume_from=context.resume_from)
    return finish(context, spec, result)


def finish(context: JobContext, spec: PpoSpec, result: TrainResult) -> HandlerResult:
    """What a finished trainer run becomes: the final checkpoint's exports (unless stopped), and
    the same for the best checkpoint (periodic evaluation) when it is another one."""
    if not result.stopped and result.checkpoint_dir is not None:
        make_exports(context, spec, Path(result.checkpoint_dir))
        best = result.best_checkpoint_dir
        final = Path(result.checkpoint_dir).resolve()
        if best is not None and Path(best).is_dir() and Path(best).resolve() != final:
            make_exports(context, spec, Path(best))
    return HandlerResult(final_step=result.final_step, stopped=result.stopped)


def wants_video(spec: PpoSpec) -> bool:
    return spec.video_seconds > 0 and spec.task.startswith("WildRobot")


def make_exports(context: JobContext, spec: PpoSpec, checkpoint_dir: Path) -> None:
    """Writes the ONNX policy and the video into `<checkpoint_dir>/exports/`, as the spec asks."""
    from ..export.onnx_policy import export_policy
    from ..export.video import render_video

    step = int(checkpoint_dir.name)
    if spec.export_onnx:
        final = exports.artifact_path(checkpoint_dir, exports.ArtifactKind.ONNX)
        try:
            path = export_policy(checkpoint_dir, staged(final), job_id=context.job_id)
        except Exception as exc:  # noqa: BLE001 - an extra: the job keeps its checkpoint
            context.publish.log("error", f"onnx export of step {step} failed: {exc}")
        else:
            size = path.stat().st_size
            context.publish.log("info", f"onnx export of step {step}: {final.name} ({size} bytes)")
            os.replace(path, final)  # visible only after the fenced write above succeeded
    if wants_video(spec) and not context.should_stop():
        final = exports.artifact_path(checkpoint_dir, exports.ArtifactKind.VIDEO)
        try:
            report = render_video(checkpoint_dir, staged(final), seconds=spec.video_seconds)
        except Exception as exc:  # noqa: BLE001
            context.publish.log("error", f"video of step {step} failed: {exc}")
        else:
            context.publish.log(
                "info",
                f"video of step {step}: {report['frames']} frames ({report['seconds']:.1f} s), "
                f"rendered in {report['render_s'] + report['encode_s']:.1f} s",
            )
            os.replace(staged(final), final)


def staged(final: Path) -> Path:
    """Where an export is written before its fenced log line lets it take its final name: a
    stale attempt (its lease lost) never makes a file visible."""
    return final.with_name(f".staged-{final.name}")
