"""What `watch` prints for a stream of events (no server: a fake SDK client feeds the events)."""

from __future__ import annotations

import argparse
import io
import json
import re

from rich.console import Console

from wildrobot.clients.commands import watch
from wildrobot.clients.commands.base import Context
from wildrobot.clients.types import (
    CheckpointInfo,
    CheckpointSaved,
    Job,
    Metrics,
    Progress,
    Snapshot,
    StateChanged,
)
from wildrobot.specs import JobKind, JobState

TOTAL = 12_800


def events(final: JobState, reason: str = "") -> list:
    job = Job(
        "j1",
        JobKind.PPO,
        JobState.PENDING,
        0,
        "",
        "alice",
        None,
        None,
        None,
        None,
        Progress(0, TOTAL, 0.0),
        {},
        "",
        {"num_timesteps": TOTAL},
        0,
    )
    # 1280 steps every 0.5 s: 2560 steps/s.
    metrics = [
        Metrics(
            i + 2,
            None,
            1280 * (i + 1),
            0.5 * (i + 1),
            {"episode/reward": float(i), "episode/length": 50.0},
        )
        for i in range(10)
    ]
    return [
        Snapshot(0, None, job),
        StateChanged(1, None, JobState.RUNNING, 1, ""),
        *metrics,
        CheckpointSaved(12, None, CheckpointInfo(TOTAL, 1, 2048, None)),
        StateChanged(13, None, final, 1, reason),
    ]


class FakeClient:
    def __init__(self, stream: list) -> None:
        self.stream = stream

    def watch(self, job_id: str, since_seq: int = 0, on_reconnect=None):
        return iter(self.stream)

    def close(self) -> None:
        pass


def follow(stream: list, *, json_mode: bool = False, terminal: bool = False) -> tuple[int, str]:
    out = io.StringIO()
    ctx = Context(argparse.Namespace(json=json_mode), stdout=out)
    if terminal:
        ctx.out = Console(file=out, force_terminal=True, width=160)
    ctx.__dict__["client"] = FakeClient(stream)
    return watch.follow(ctx, "j1"), out.getvalue()


def test_piped_watch_prints_progress_and_succeeds() -> None:
    code, out = follow(events(JobState.SUCCEEDED))
    assert code == 0
    lines = out.splitlines()
    assert lines[0].startswith("j1: PENDING")
    assert "state RUNNING (attempt 1)" in lines
    assert "checkpoint at step 12,800" in lines
    assert lines[-2] == (
        "progress 12.8k/12.8k steps (100%)  2,560 steps/s  ETA 0:00:00  reward 9  episode length 50"
    )
    assert lines[-1] == "j1 finished SUCCEEDED"
    # The first metric line is printed at once; later ones at most every couple of seconds.
    assert "progress 1,280/12.8k steps (10%)  - steps/s" in out


def test_watch_of_a_failed_job_exits_non_zero_with_the_reason() -> None:
    code, out = follow(events(JobState.FAILED, "non-finite loss/total at iteration 3"))
    assert code == 1
    assert out.splitlines()[-1] == "j1 finished FAILED: non-finite loss/total at iteration 3"


def test_json_watch_prints_one_object_per_event() -> None:
    code, out = follow(events(JobState.SUCCEEDED), json_mode=True)
    parsed = [json.loads(line) for line in out.splitlines()]
    assert code == 0 and len(parsed) == 14
    assert [p["type"] for p in parsed[:2]] == ["Snapshot", "StateChanged"]
    assert [p["seq"] for p in parsed[1:]] == list(range(1, 14))


def test_terminal_watch_draws_a_progress_bar() -> None:
    code, out = follow(events(JobState.SUCCEEDED), terminal=True)
    out = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", out)  # colours and cursor moves
    assert code == 0
    assert "━" in out and "2,560 steps/s" in out and "reward 9" in out and "ep len 50" in out
    assert "j1 finished SUCCEEDED" in out


def test_watch_shows_amp_health_metrics_when_reported() -> None:
    stream = events(JobState.SUCCEEDED)
    health = {
        "amp/style_reward": 0.4,
        "amp/disc_loss": 0.25,
        "amp/accuracy_ref": 0.9,
        "amp/accuracy_policy": 0.8,
        "amp/new_thing": 1.0,
    }
    last = stream[11]  # the last Metrics event
    stream[11] = Metrics(last.seq, None, last.step, last.wall_time_s, {**last.values, **health})
    code, out = follow(stream)
    assert code == 0
    # Known health metrics in render.HEALTH_KEYS order, then any other amp/ ones by name.
    assert out.splitlines()[-2].endswith(
        "reward 9  episode length 50  amp/disc_loss 0.25  amp/accuracy_ref 0.9  "
        "amp/accuracy_policy 0.8  amp/style_reward 0.4  amp/new_thing 1"
    )
    code, out = follow(stream, terminal=True)
    assert "amp/disc_loss 0.25" in re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", out)
    # A PPO job reports none: its line is unchanged (test_piped_watch_prints_progress_and_succeeds).
