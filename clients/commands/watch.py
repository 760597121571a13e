"""`watch JOB`: follow a job live until it ends; exit 0 when it SUCCEEDED, 1 otherwise.

In a terminal it draws a rich progress bar (steps done of total, env steps/s, ETA, latest reward
and episode length, and an amp job's health metrics, render.HEALTH_KEYS); piped, it prints one
line per state change, checkpoint and log line and a progress line at most every few seconds;
with --json, one JSON object per event. Dropped streams are resumed by the SDK from the last
event, so nothing is shown twice or missed.
"""

from __future__ import annotations

import argparse
import collections
import dataclasses
import time

from rich.progress import BarColumn, Progress, TextColumn

from wildrobot.specs import JobState

from .. import render
from ..parsing import format_count
from ..types import (
    CheckpointSaved,
    EventsTrimmed,
    JobEvent,
    Log,
    Metrics,
    Snapshot,
    StateChanged,
)
from .base import Command, Context

PLAIN_PROGRESS_EVERY_S = 2.0
EXIT_NOT_SUCCEEDED = 1


@dataclasses.dataclass
class WatchState:
    """What the view shows, folded from the events seen so far."""

    job_id: str
    state: JobState | None = None
    attempt: int = 0
    reason: str = ""
    steps_done: int = 0
    steps_total: int = 0
    rate: float = 0.0
    reward: float | None = None
    length: float | None = None
    health: dict = dataclasses.field(default_factory=dict)  # latest of each (render.HEALTH_KEYS)
    recent: collections.deque = dataclasses.field(
        default_factory=lambda: collections.deque(maxlen=8)
    )

    def apply(self, event: JobEvent) -> None:
        if isinstance(event, Snapshot):
            job = event.job
            self.state, self.attempt, self.reason = job.state, job.attempt, job.error
            self.steps_done = max(self.steps_done, job.progress.steps_done)
            self.steps_total = job.progress.steps_total or int(job.spec.get("num_timesteps", 0))
            self.rate = self.rate or job.progress.steps_per_second
            self._take_episode(job.last_metrics)
        elif isinstance(event, StateChanged):
            self.state, self.attempt, self.reason = event.state, event.attempt, event.reason
        elif isinstance(event, Metrics):
            self.steps_done = event.step
            self.recent.append((event.wall_time_s, event.step))
            (t0, s0), (t1, s1) = self.recent[0], self.recent[-1]
            if t1 > t0 and s1 >= s0:
                self.rate = (s1 - s0) / (t1 - t0)
            self._take_episode(event.values)

    def _take_episode(self, values: dict) -> None:
        self.reward = _or(render.first_metric(values, render.REWARD_KEYS), self.reward)
        self.length = _or(render.first_metric(values, render.LENGTH_KEYS), self.length)
        self.health.update(render.health_metrics(values))

    @property
    def eta_s(self) -> float | None:
        if self.rate <= 0 or not self.steps_total:
            return None
        return max(self.steps_total - self.steps_done, 0) / self.rate

    def fields(self) -> dict[str, str]:
        total = format_count(self.steps_total) if self.steps_total else "?"
        return {
            "counts": f"{format_count(self.steps_done)}/{total} steps",
            "rate": f"{format_count(self.rate)} steps/s" if self.rate else "- steps/s",
            "eta": render.format_duration(self.eta_s),
            "reward": f"{self.reward:.4g}" if self.reward is not None else "-",
            "length": f"{self.length:.0f}" if self.length is not None else "-",
            "health": render.health_text(self.health),
        }

    def line(self) -> str:
        f = self.fields()
        pct = f" ({self.steps_done / self.steps_total:.0%})" if self.steps_total else ""
        health = f"  {f['health']}" if f["health"] else ""
        return (
            f"{f['counts']}{pct}  {f['rate']}  ETA {f['eta']}  "
            f"reward {f['reward']}  episode length {f['length']}{health}"
        )


def _or(value: float | None, fallback: float | None) -> float | None:
    return fallback if value is None else value


def _describe(event: JobEvent) -> str | None:
    """A line for the events a person should see as they happen (None for metrics)."""
    if isinstance(event, StateChanged):
        reason = f": {event.reason}" if event.reason else ""
        return f"state {render.state_text(event.state)} (attempt {event.attempt}){reason}"
    if isinstance(event, CheckpointSaved):
        return f"checkpoint at step {event.checkpoint.step:,}"
    if isinstance(event, Log):
        return f"[{event.level.lower()}] {event.message}"
    if isinstance(event, EventsTrimmed):
        return (
            f"events {event.first_seq}..{event.last_seq} trimmed (no longer retained by the server)"
        )
    return None


def follow(ctx: Context, job_id: str, since_seq: int = 0) -> int:
    """Shows the job's events until it ends; returns the exit code for its final state."""
    view = WatchState(job_id)

    def note_reconnect(last_seq: int, why: str) -> None:
        ctx.err.print(f"[dim]connection lost ({why}); resuming after event {last_seq}[/]")

    events = ctx.client.watch(job_id, since_seq=since_seq, on_reconnect=note_reconnect)
    if ctx.json:
        for event in events:
            view.apply(event)
            ctx.print_json(event)
    elif ctx.out.is_terminal:
        _follow_live(ctx, view, events)
    else:
        _follow_plain(ctx, view, events)
    return _finish(ctx, view)


def _follow_live(ctx: Context, view: WatchState, events) -> None:
    progress = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.fields[counts]}"),
        TextColumn("{task.fields[rate]}"),
        TextColumn("ETA {task.fields[eta]}"),
        TextColumn("reward {task.fields[reward]}"),
        TextColumn("ep len {task.fields[length]}"),
        TextColumn("{task.fields[health]}"),  # empty unless the job reports health metrics
        console=ctx.out,
    )
    with progress:
        task = progress.add_task(view.job_id, total=None, **view.fields())
        for event in events:
            view.apply(event)
            line = _describe(event)
            if line:
                progress.console.print(line)
            progress.update(
                task,
                description=f"{view.job_id} {render.state_text(view.state)}",
                completed=view.steps_done,
                total=view.steps_total or None,
                **view.fields(),
            )


def _follow_plain(ctx: Context, view: WatchState, events) -> None:
    last_printed = 0.0
    for event in events:
        view.apply(event)
        line = _describe(event)
        if isinstance(event, Snapshot):
            line = f"{view.job_id}: {render.state_text(view.state)}  {view.line()}"
        if line:
            ctx.out.print(line)
        elif (
            isinstance(event, Metrics) and time.monotonic() - last_printed >= PLAIN_PROGRESS_EVERY_S
        ):
            ctx.out.print(f"progress {view.line()}")
            last_printed = time.monotonic()


def _finish(ctx: Context, view: WatchState) -> int:
    succeeded = view.state == JobState.SUCCEEDED
    if not ctx.json:
        reason = f": {view.reason}" if view.reason and not succeeded else ""
        if not ctx.out.is_terminal:  # in a terminal the finished bar already shows it
            ctx.out.print(f"progress {view.line()}")
        ctx.out.print(f"{view.job_id} finished {render.state_text(view.state)}{reason}")
    return 0 if succeeded else EXIT_NOT_SUCCEEDED


def _configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("job_id", metavar="JOB")
    parser.add_argument(
        "--since-seq", type=int, default=0, help="only events after this sequence number"
    )


def _run(ctx: Context, args: argparse.Namespace) -> int:
    return follow(ctx, args.job_id, since_seq=args.since_seq)


COMMAND = Command("watch", "follow a job live until it ends", _configure, _run)
