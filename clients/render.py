"""How jobs, checkpoints and progress look in a terminal (rich renderables and plain strings)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from wildrobot.specs import JobState

from .parsing import format_count
from .types import CheckpointInfo, Job

STATE_STYLE = {
    JobState.PENDING: "yellow",
    JobState.RUNNING: "cyan",
    JobState.SUCCEEDED: "green",
    JobState.FAILED: "red",
    JobState.CANCELLED: "magenta",
    JobState.RECOVERING: "yellow",
    JobState.CANCELLING: "magenta",
}
# Metric names the trainer reports for the latest finished episodes, most preferred first.
REWARD_KEYS = ("episode/reward", "eval/episode_reward")
LENGTH_KEYS = ("episode/length", "eval/avg_episode_length")
# Training-health metrics `watch` shows besides reward when a job reports them (an amp job's
# discriminator and reward mix; a maml job's pre/post-adaptation returns, the adaptation gain and
# the inner-loop gradient norms): these first, in this order, then any other ones by name.
HEALTH_PREFIXES = ("amp/", "maml/")
HEALTH_KEYS = (
    "amp/disc_loss",
    "amp/accuracy_ref",
    "amp/accuracy_policy",
    "amp/logit_ref",
    "amp/logit_policy",
    "amp/grad_penalty",
    "amp/noise_std",
    "amp/style_reward",
    "amp/task_reward",
    "amp/pose_distance",
    "maml/pre_adaptation_return",
    "maml/post_adaptation_return",
    "maml/adaptation_gain",
    "maml/inner_grad_norm",
    "maml/inner_grad_norm_max",
)


def state_text(state: JobState | None) -> str:
    if state is None:
        return "UNKNOWN"
    return f"[{STATE_STYLE.get(state, 'white')}]{state.value}[/]"


def first_metric(values: Mapping[str, float], keys: Iterable[str]) -> float | None:
    return next((values[k] for k in keys if k in values), None)


def health_metrics(values: Mapping[str, float]) -> dict[str, float]:
    """The health metrics among `values` (HEALTH_PREFIXES), in HEALTH_KEYS order then by name."""
    found = [k for k in values if k.startswith(HEALTH_PREFIXES)]
    order = {key: index for index, key in enumerate(HEALTH_KEYS)}
    found.sort(key=lambda k: (order.get(k, len(order)), k))
    return {k: values[k] for k in found}


def health_text(values: Mapping[str, float]) -> str:
    """`amp/disc_loss 0.25  amp/accuracy_ref 0.9 ...` (empty when there are none)."""
    return "  ".join(f"{k} {v:.3g}" for k, v in health_metrics(values).items())


def format_duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    seconds = int(round(seconds))
    hours, rest = divmod(seconds, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}"


def format_time(value: dt.datetime | None) -> str:
    return value.astimezone().strftime("%Y-%m-%d %H:%M") if value else "-"


def format_bytes(size: int) -> str:
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")


def progress_text(job: Job) -> str:
    p = job.progress
    if not p.steps_total:
        return "-"
    return f"{format_count(p.steps_done)}/{format_count(p.steps_total)} ({p.fraction:.0%})"


def jobs_table(jobs: list[Job]) -> Table:
    table = Table(box=None, header_style="bold")
    table.add_column("JOB", no_wrap=True)
    for column in ("NAME", "KIND", "STATE", "PROGRESS", "REWARD", "CREATED"):
        table.add_column(column)
    for job in jobs:
        reward = first_metric(job.last_metrics, REWARD_KEYS)
        table.add_row(
            job.job_id,
            job.name or "-",
            job.kind.value if job.kind else "-",
            state_text(job.state),
            progress_text(job),
            f"{reward:.3g}" if reward is not None else "-",
            format_time(job.created_at),
        )
    return table


def job_detail(job: Job) -> RenderableType:
    table = Table.grid(padding=(0, 2))
    table.add_column(style="bold")
    table.add_column()
    rows = [
        ("job", job.job_id),
        ("name", job.name or "-"),
        ("kind", job.kind.value if job.kind else "-"),
        ("state", state_text(job.state)),
        ("attempt", str(job.attempt)),
        ("progress", progress_text(job)),
        (
            "steps/s",
            format_count(job.progress.steps_per_second) if job.progress.steps_per_second else "-",
        ),
        ("created", format_time(job.created_at)),
        ("started", format_time(job.started_at)),
        ("finished", format_time(job.finished_at)),
    ]
    if job.error:
        rows.append(("error", f"[red]{job.error}[/]"))
    rows += [(f"  {k}", f"{v:.6g}") for k, v in sorted(job.last_metrics.items())]
    for key, value in rows:
        table.add_row(key, value)
    if not job.spec:
        return table
    spec = Text("spec      ", style="bold") + Text(
        ", ".join(f"{k}={v}" for k, v in job.spec.items())
    )
    return Group(table, spec)


def checkpoints_table(checkpoints: list[CheckpointInfo]) -> Table:
    table = Table(box=None, header_style="bold")
    for column in ("STEP", "ATTEMPT", "SIZE", "CREATED", "BEST"):
        table.add_column(column, justify="right" if column not in ("CREATED", "BEST") else "left")
    for c in checkpoints:
        table.add_row(
            f"{c.step:,}",
            str(c.attempt),
            format_bytes(c.size_bytes),
            format_time(c.created_at),
            "best" if c.best else "",
        )
    return table
