"""The `tta_eval` job: a trained checkpoint under the shift suite, per method (docs/tta.md).

The checkpoint is one of the job's tenant's own ppo, amp or maml jobs on a WildRobot task (the
server checked at submit; the worker checks again, as the record may have changed since). Progress:
one metrics event per cell (step = simulated control steps planned so far, the job's progress total
being spec.planned_env_steps). Output: `<artifact_dir>/<job>/attempt-<n>/tta_report/` with
report.json, heatmap_<method>.png and degradation.png, written under temporary names and registered
with a fenced write (publish.checkpoint) when complete.
"""

from __future__ import annotations

from pathlib import Path

from wildrobot.specs import TtaEvalSpec, tta_source_problem

from . import HandlerResult, JobContext, JobError

REPORT_DIR = "tta_report"


def resolve_checkpoint(context: JobContext, spec: TtaEvalSpec) -> Path:
    """The source checkpoint's folder; JobError when it is not the tenant's or not there."""
    import redis

    from wildrobot.queue import keys
    from wildrobot.queue.records import CheckpointRecord

    from .. import layout

    client = redis.Redis.from_url(context.redis_url, decode_responses=True)
    try:
        source = client.hmget(keys.job(spec.checkpoint_job_id), "tenant", "kind", "spec")
        entries = client.hvals(keys.checkpoints(spec.checkpoint_job_id))
    finally:
        client.close()
    if source[0] != context.tenant:
        raise JobError(f"checkpoint_job_id: no job {spec.checkpoint_job_id} of yours")
    problem = tta_source_problem(spec.checkpoint_job_id, source[1], source[2])
    if problem is not None:
        raise JobError(f"checkpoint_job_id: {problem}")
    records = sorted((CheckpointRecord.from_json(e) for e in entries), key=lambda r: r.step)
    if spec.checkpoint_step is not None:
        records = [r for r in records if r.step == spec.checkpoint_step]
    if not records:
        raise JobError(
            f"checkpoint_step: job {spec.checkpoint_job_id} has no checkpoint"
            + (f" at step {spec.checkpoint_step}" if spec.checkpoint_step is not None else "")
        )
    root = layout.artifact_root(context.run_dir)
    path = (root / records[-1].path).resolve()
    if not path.is_relative_to(root) or not path.is_dir():
        raise JobError(f"checkpoint at step {records[-1].step} is not in the artifact store")
    return path


def settings_of(spec: TtaEvalSpec):
    from ..tta.evaluate import TtaSettings

    return TtaSettings(
        shifts=tuple(spec.shifts),
        severities=tuple(spec.severities),
        methods=tuple(spec.methods),
        episodes=spec.episodes,
        episode_length=spec.episode_length,
        seeds=tuple(spec.seeds),
        mode=spec.mode,
        learning_rate={
            "obs_norm": spec.obs_norm_rate,
            "tent": spec.tent_learning_rate,
            "sysid": spec.sysid_rate,
            "maml": spec.maml_rate,
        },
        tent_kl_weight=spec.tent_kl_weight,
        best_of_n_samples=spec.best_of_n_samples,
        lookahead_steps=spec.lookahead_steps,
        adapt_steps=spec.adapt_steps,
        adapt_episodes=spec.adapt_episodes,
    )


def run(context: JobContext, spec: TtaEvalSpec) -> HandlerResult:
    from ..tta.evaluate import evaluate_checkpoint
    from ..tta.report import write_report

    checkpoint = resolve_checkpoint(context, spec)
    context.publish.log("info", f"evaluating {checkpoint.name} of job {spec.checkpoint_job_id}")
    settings = settings_of(spec)
    steps_per_cell = {
        m: spec.episodes * spec.episode_length * spec.sim_steps_per_control_step(m)
        for m in spec.methods
    }
    done = {"steps": 0}

    class Stopped(Exception):
        pass

    def progress(cell: dict) -> None:
        done["steps"] += steps_per_cell[cell["method"]]
        context.publish.metrics(
            done["steps"],
            {
                "cells_done": cell["cells_done"],
                "cells_total": cell["cells_total"],
                "fall_rate": cell["fall_rate"],
                "severity": cell["severity"],
            },
        )
        context.publish.log(
            "info",
            f"{cell['method']} seed {cell['seed']} {cell['shift']}"
            + (f"/{cell['severity']}" if cell["severity"] else "")
            + f": fall rate {cell['fall_rate']:.2f}",
        )
        if context.should_stop():
            raise Stopped

    try:
        report = evaluate_checkpoint(checkpoint, settings, progress)
    except Stopped:
        return HandlerResult(final_step=done["steps"], stopped=True)
    except ValueError as exc:  # e.g. tent on a policy without LayerNorm
        raise JobError(str(exc)) from None
    report["checkpoint_job_id"] = spec.checkpoint_job_id
    report["checkpoint_step"] = int(checkpoint.name)
    out_dir = context.run_dir / REPORT_DIR
    write_report(report, out_dir)
    context.publish.checkpoint(done["steps"], out_dir)  # fenced: a stale attempt is refused
    return HandlerResult(final_step=done["steps"], stopped=False)
