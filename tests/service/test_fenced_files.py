"""Issue 15, defect 9: every attempt writes in its own folder, atomically, and a file becomes
part of the job only through a fenced registration. A stale attempt (lower fencing token) that
keeps writing after a new attempt started can neither register nor clobber nor delete anything."""

from __future__ import annotations

import json
import multiprocessing as mp
import time
from pathlib import Path

import pytest
import redis.exceptions

from tests.service.test_queue import LEASE_S, reap, submit, take
from wildrobot.queue.client import LeaseLost, QueueClient
from wildrobot.workers import layout, runner
from wildrobot.workers.handlers import HandlerResult, JobContext

pytestmark = pytest.mark.redis


def write_checkpoint(run_dir: Path, step: int, payload: bytes) -> Path:
    """What save_checkpoint does, without JAX: a hidden temporary folder renamed into place."""
    final = run_dir / "checkpoints" / f"{step:012d}"
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = final.parent / f".tmp-{final.name}"
    tmp.mkdir()
    (tmp / "state.bin").write_bytes(payload)
    layout.install_dir(tmp, final)
    return final


def run_attempt(monkeypatch, redis_url: str, artifact_dir: Path, lease, handler) -> tuple:
    monkeypatch.setattr(runner, "get_handler", lambda kind: handler)
    parent, child = mp.Pipe()
    args = runner.RunnerArgs(lease, redis_url, str(artifact_dir), retry_s=1.0)
    runner.run(args, mp.Event(), mp.Event(), child)
    messages = []
    try:
        while True:
            messages.append(parent.recv())
    except EOFError:  # the runner closed its end
        pass
    return messages[-1]


def test_stale_attempt_cannot_register_clobber_or_be_deleted(
    monkeypatch, redis_url: str, queue: QueueClient, tmp_path: Path
) -> None:
    artifacts = tmp_path / "artifacts"
    job_id = submit(redis_url)
    first = take(queue)
    seen: dict[str, JobContext] = {}

    def attempt_one(context: JobContext, spec: object) -> HandlerResult:
        seen["one"] = context
        context.publish.checkpoint(
            128, write_checkpoint(context.run_dir, 128, b"one@128"), best=True
        )
        return HandlerResult(128, stopped=False)

    assert run_attempt(monkeypatch, redis_url, artifacts, first, attempt_one)[1][0] == "succeeded"
    time.sleep(LEASE_S + 0.1)  # attempt 1 hangs (SIGSTOP, partition): its lease expires
    assert reap(redis_url) == {job_id: "RECOVERING"}
    second = take(queue, "w2")
    assert second.attempt == first.attempt + 1
    stale = seen["one"]

    def attempt_two(context: JobContext, spec: object) -> HandlerResult:
        assert context.resume_from is not None
        assert (context.resume_from / "state.bin").read_bytes() == b"one@128"
        assert context.run_dir != stale.run_dir
        path = write_checkpoint(context.run_dir, 256, b"two@256")
        context.publish.checkpoint(256, path)
        # Attempt 1 wakes up and goes on writing the same step, then tries to register it.
        stale_path = write_checkpoint(stale.run_dir, 256, b"one@256 (stale)")
        with pytest.raises(LeaseLost):
            stale.publish.checkpoint(256, stale_path)
        with pytest.raises(LeaseLost):  # nor as a new best (the same fenced registration)
            stale.publish.checkpoint(256, stale_path, best=True)
        # ...and crashes half-way through its next checkpoint (between write and rename).
        half = stale.run_dir / "checkpoints" / f".tmp-{384:012d}"
        half.mkdir()
        (half / "state.bin").write_bytes(b"\x00")
        return HandlerResult(256, stopped=False)

    assert run_attempt(monkeypatch, redis_url, artifacts, second, attempt_two)[1][0] == "succeeded"
    registered = {c.step: c for c in map(_record, queue.redis.hvals(f"wr:job:{job_id}:ckpt"))}
    assert sorted(registered) == [128, 256]
    assert registered[256].attempt == second.attempt
    assert (artifacts / registered[256].path / "state.bin").read_bytes() == b"two@256"
    # Attempt 1's registered checkpoint was never deleted by the new attempt.
    assert (artifacts / registered[128].path / "state.bin").read_bytes() == b"one@128"
    latest = queue.latest_checkpoint(job_id)
    assert latest is not None and latest.step == 256 and latest.attempt == second.attempt
    # The job's best is still attempt 1's registered one: the stale best was refused.
    assert best_checkpoint(registered.values()) == registered[128]
    assert not registered[256].best


def best_checkpoint(records):
    from wildrobot.queue.records import best_checkpoint

    return best_checkpoint(records)


def _record(payload: str):
    from wildrobot.queue.records import CheckpointRecord

    return CheckpointRecord.from_json(payload)


def test_a_checkpoint_is_never_swapped_in_place(tmp_path: Path) -> None:
    first = write_checkpoint(tmp_path, 128, b"first")
    again = write_checkpoint(tmp_path, 128, b"second")
    assert first == again
    assert (first / "state.bin").read_bytes() == b"first"
    assert [p.name for p in first.parent.iterdir()] == [first.name]  # no temporary left


def test_attempt_folders() -> None:
    root = Path("/a")
    assert layout.attempt_dir(root, "j", 3) == Path("/a/j/attempt-3")
    assert layout.artifact_root(Path("/a/j/attempt-3")) == Path("/a")


def test_a_write_retried_after_a_lost_reply_is_applied_once(redis_url: str, queue) -> None:
    """Redis ran the script, then died before answering: the client retries the same write,
    and the job still gets one event (no repeated metrics, checkpoint or log events)."""
    job_id = submit(redis_url)
    lease = take(queue)
    real, calls = queue._log, []

    def reply_lost(keys, args):
        result = real(keys=keys, args=args)
        if not calls:
            calls.append(args)
            raise redis.exceptions.ConnectionError("Connection closed by server.")
        return result

    queue._log = reply_lost
    queue.log_line(lease, "info", "once")
    queue.log_line(lease, "info", "twice")
    logs = [
        json.loads(fields["d"])["message"]
        for _, fields in queue.redis.xrange(f"wr:job:{job_id}:events")
        if fields["t"] == "log"
    ]
    assert logs == ["once", "twice"]
