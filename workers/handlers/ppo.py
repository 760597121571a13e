"""The `ppo` job: train_ppo with hooks that publish through the (fenced) job context."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from wildrobot.specs import PpoSpec
from wildrobot.workers.handlers import HandlerResult, JobContext


class _Hooks:
    def __init__(self, context: JobContext) -> None:
        self._context = context

    def on_metrics(self, step: int, metrics: Mapping[str, float]) -> None:
        self._context.publish.metrics(step, dict(metrics))

    def on_checkpoint(self, step: int, path: Path) -> None:
        self._context.publish.checkpoint(step, path)

    def should_stop(self) -> bool:
        return self._context.should_stop()


def run(context: JobContext, spec: PpoSpec) -> HandlerResult:
    if spec.num_hosts > 1:  # launched on num_hosts hosts; this process only watches it
        from wildrobot.workers.multihost import run_multi_host

        return run_multi_host(context, spec)
    from wildrobot.workers.training.ppo import train_ppo  # JAX: only in the runner process

    result = train_ppo(spec, context.run_dir, _Hooks(context), resume_from=context.resume_from)
    return HandlerResult(final_step=result.final_step, stopped=result.stopped)
