"""The `maml` job: train_maml with the PPO handler's hooks (every metric and checkpoint a fenced
write). Its checkpoints hold the meta-initialization (docs/maml.md)."""

from __future__ import annotations

from wildrobot.specs import MamlSpec

from . import HandlerResult, JobContext
from .ppo import JobHooks


def run(context: JobContext, spec: MamlSpec) -> HandlerResult:
    from ..maml.train import train_maml  # JAX: only in the runner process

    result = train_maml(spec, context.run_dir, JobHooks(context), resume_from=context.resume_from)
    return HandlerResult(final_step=result.final_step, stopped=result.stopped)
