"""The `amp` job kind through the service: CLI/SDK submit (dry run and real, through a real
front end on port 0 over the real Redis), the server's motion check, and the worker handler's
motion resolution and validation. The end-to-end run needs workers/amp/train.py (train_amp)."""

from __future__ import annotations

import io
import json
import sys
import types
from pathlib import Path

import grpc
import numpy as np
import pytest

from tests.live_service import *  # noqa: F403 (fixtures: service, worker_factory)
from tests.live_service import Service
from wildrobot.clients import Client, errors
from wildrobot.clients.cli import build_parser, main
from wildrobot.clients.commands.submit import KINDS, spec_fields
from wildrobot.specs import AmpSpec
from wildrobot.tenant_files import shipped_clips_dir, tenant_inputs
from wildrobot.v1 import jobs_pb2
from wildrobot.workers.handlers import HandlerResult, JobContext, JobError, get_handler
from wildrobot.workers.handlers import amp as amp_handler

REPO = Path(__file__).resolve().parents[2]
AMP = next(kind for kind in KINDS if kind.name == "amp")
# Enough for the spec's batch rule (64 * 4 divisible by 64) and the cost limits.
TINY = ["--num-envs", "64", "--set", "batch_size=64", "--set", "num_minibatches=4"]


def needs_service(test):
    return pytest.mark.redis(pytest.mark.integration(test))


def run_cli(address: str, *argv: str, token: str = "alice-token") -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(["--address", address, "--token", token, *argv], stdout=out, stderr=err)
    return code, out.getvalue(), err.getvalue()


def clip_bytes(name: str = "stand") -> bytes:
    return (shipped_clips_dir() / f"{name}.npz").read_bytes()


# -- CLI parsing (no server) ----------------------------------------------------------------------


def test_submit_amp_parses_amp_and_ppo_flags() -> None:
    args = build_parser().parse_args(
        ["submit", "amp", "--motions", "walk_0.2,stand", "--style-weight", "0.5",
         "--task-weight", "0.25", "--disc-loss", "bce", "--num-envs", "4k", "--task", "walk",
         "--set", "window=3", "--dry-run"]
    )  # fmt: skip
    assert args.dry_run and args.submit_kind is AMP
    assert spec_fields(AMP, args) == {
        "motions": ("walk_0.2", "stand"),
        "style_weight": 0.5,
        "task_weight": 0.25,
        "disc_loss": "bce",
        "num_envs": 4000,
        "task": "walk",
        "window": 3,
    }


# -- the front end (real server, real Redis) ------------------------------------------------------


@needs_service
def test_cli_dry_run_validates_and_queues_nothing(service: Service) -> None:
    code, out, err = run_cli(
        service.address, "submit", "amp", "--motions", "walk_0.2,stand", "--style-weight", "0.5",
        "--task-weight", "0.5", "--disc-loss", "lsgan", *TINY, "--dry-run",
    )  # fmt: skip
    assert (code, err) == (0, ""), err
    assert "valid amp spec" in out and "walk_0.2" in out and "num_envs=64" in out
    code, out, _ = run_cli(service.address, "list", "--json")
    assert code == 0 and json.loads(out) == []


@needs_service
def test_an_unknown_motion_is_refused_naming_it(service: Service) -> None:
    code, out, err = run_cli(
        service.address, "submit", "amp", "--motions", "stand,walk_9", *TINY, "--dry-run"
    )
    assert code == 5 and out == "", err
    assert "walk_9" in err and "motions" in err and "not a shipped clip" in err
    assert "Traceback" not in err
    # On the wire: INVALID_ARGUMENT naming the field and the motion, for real submits too.
    spec = jobs_pb2.JobSpec(amp=jobs_pb2.AmpSpec(motions=["stand", "missing/clip.npz"]))
    with pytest.raises(grpc.RpcError) as info:
        service.stub("alice").SubmitJob(jobs_pb2.SubmitJobRequest(spec=spec, request_id="r1"))
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert info.value.details().startswith("spec.amp.motions[1]: 'missing/clip.npz'")
    code, out, _ = run_cli(service.address, "list", "--json")
    assert json.loads(out) == []


@needs_service
def test_an_uploaded_motion_is_usable_by_its_tenant_only(service: Service) -> None:
    with Client(service.address, "alice-token") as alice:
        alice.upload_trial(clip_bytes(), "motions/mine.npz")  # the existing upload path
        fields = {"motions": ("motions/mine.npz", "walk_0.2"), "num_envs": 64, "batch_size": 64,
                  "num_minibatches": 4}  # fmt: skip
        assert alice.submit_amp(validate_only=True, **fields).job.spec["motions"] == [
            "motions/mine.npz",
            "walk_0.2",
        ]
        job = alice.submit_amp(name="amp1", **fields).job
        assert job.kind.value == "amp" and job.spec["num_envs"] == 64  # flat, as in the spec
        assert [j.job_id for j in alice.list(kind="amp")] == [job.job_id]
        assert alice.list(kind="ppo") == []
    with Client(service.address, "bob-token") as bob, pytest.raises(errors.InvalidSpec) as info:
        bob.submit_amp(validate_only=True, **fields)
    assert "motions/mine.npz" in str(info.value)
    code, out, _ = run_cli(service.address, "list", "--kind", "amp", "--json")
    assert [j["job_id"] for j in json.loads(out)] == [job.job_id]


@needs_service
def test_amp_on_several_hosts_is_refused(service: Service) -> None:
    code, _, err = run_cli(
        service.address, "submit", "amp", *TINY, "--set", "num_hosts=2", "--dry-run"
    )
    assert code == 5 and "num_hosts" in err and "one host" in err


# -- the worker handler (no server) ---------------------------------------------------------------


class Recorder:
    def __init__(self) -> None:
        self.logs: list[tuple[str, str]] = []
        self.points: list[tuple[int, dict]] = []

    def metrics(self, step: int, values: dict[str, float]) -> None:
        self.points.append((step, values))

    def checkpoint(self, step: int, path: Path, best: bool = False) -> None:
        pass

    def log(self, level: str, message: str) -> None:
        self.logs.append((level, message))


def context_for(artifact_dir: Path, tenant: str = "alice", resume: Path | None = None):
    run_dir = artifact_dir / ("0" * 32) / "attempt-2"
    run_dir.mkdir(parents=True, exist_ok=True)
    return JobContext("0" * 32, 2, run_dir, resume, Recorder(), lambda: False, tenant=tenant)


def upload(artifact_dir: Path, tenant: str, name: str, data: bytes) -> None:
    path = tenant_inputs(artifact_dir, tenant) / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


def test_the_handler_is_registered_for_amp() -> None:
    assert get_handler("amp") is amp_handler.run


def test_motions_resolve_to_shipped_clips_and_the_tenants_uploads(tmp_path: Path) -> None:
    upload(tmp_path, "alice", "motions/mine.npz", clip_bytes("walk_0.1"))
    spec = AmpSpec(motions=("walk_0.2", "motions/mine.npz"))
    motions = amp_handler.load_motions(context_for(tmp_path), spec)
    assert [m.name for m in motions] == ["walk_0.2", "walk_0.1"]  # the clip's own name inside
    assert all(m.qpos.shape[1] == 24 for m in motions)
    with pytest.raises(JobError, match=r"motions\[1\]: 'motions/mine.npz' is not a shipped"):
        amp_handler.load_motions(context_for(tmp_path, tenant="bob"), spec)


@pytest.mark.parametrize(
    ("data", "words"),
    [
        (b"PK\x03\x04 not really a zip", "not a valid motion clip"),
        (b"\x93NUMPY garbage", "not a valid motion clip"),
        (None, "qpos: missing"),  # an .npz without the clip's arrays
        ("nan", "qpos: contains non-finite values"),
    ],
)
def test_a_bad_motion_file_fails_the_job_naming_it(tmp_path: Path, data, words: str) -> None:
    if data is None:
        buffer = io.BytesIO()
        np.savez(buffer, name=np.array("x"), fps=np.array(50.0))
        data = buffer.getvalue()
    elif data == "nan":
        with np.load(shipped_clips_dir() / "stand.npz") as clip:
            arrays = {k: clip[k] for k in clip.files}
        arrays["qpos"] = arrays["qpos"].copy()
        arrays["qpos"][3, 9] = np.nan
        buffer = io.BytesIO()
        np.savez(buffer, **arrays)
        data = buffer.getvalue()
    upload(tmp_path, "alice", "bad.npz", data)
    spec = AmpSpec(motions=("stand", "bad.npz"))
    with pytest.raises(JobError) as info:
        amp_handler.run(context_for(tmp_path), spec)  # fails before any training starts
    assert str(info.value).startswith("motions[1]: 'bad.npz' is not a valid motion clip")
    assert words in str(info.value)


def test_run_hands_motions_hooks_and_resume_point_to_train_amp(monkeypatch, tmp_path) -> None:
    """The handler's wiring, with a stand-in for train_amp (no file is created for it)."""
    from wildrobot.workers.training.api import TrainResult

    seen: dict = {}

    def fake_train_amp(spec, run_dir, hooks, motions, resume_from=None):
        seen.update(spec=spec, run_dir=run_dir, motions=motions, resume_from=resume_from)
        hooks.on_metrics(128, {"amp/disc_loss": 0.25})
        return TrainResult(final_step=128, iterations=1, stopped=True, checkpoint_dir=None)

    monkeypatch.setitem(
        sys.modules, "wildrobot.workers.amp.train", types.SimpleNamespace(train_amp=fake_train_amp)
    )
    resume = tmp_path / "ckpt"
    context = context_for(tmp_path, resume=resume)
    spec = AmpSpec(motions=("stand",))
    assert amp_handler.run(context, spec) == HandlerResult(final_step=128, stopped=True)
    assert seen["spec"] is spec and seen["run_dir"] == context.run_dir
    assert seen["resume_from"] == resume and [m.name for m in seen["motions"]] == ["stand"]
    assert context.publish.points == [(128, {"amp/disc_loss": 0.25})]
    assert context.publish.logs == [("info", "reference motions: stand (101 frames)")]


# -- end to end --------------------------------------------------------------------------------


@pytest.mark.redis
@pytest.mark.integration
@pytest.mark.slow
def test_amp_job_trains_and_watch_shows_the_discriminator(service: Service, worker_factory) -> None:
    worker_factory()
    with Client(service.address, "alice-token") as alice:
        alice.upload_trial(clip_bytes("walk_0.1"), "motions/mine.npz")
    # tests/amp/test_amp_training.py's tiny spec: the same program, so the compile is cached.
    argv = [
        "submit", "amp", "--motions", "walk_0.2,motions/mine.npz", "--task", "stand",
        "--num-envs", "4", "--episode-length", "50", "--timesteps", "80",
        "--set", "batch_size=4", "--set", "num_minibatches=2", "--set", "unroll_length=5",
        "--set", "num_updates_per_batch=1", "--set", "policy_hidden_sizes=16,16",
        "--set", "value_hidden_sizes=16,16", "--set", "disc_hidden_sizes=16",
        "--set", "disc_batch_size=16", "--set", "disc_updates_per_iteration=2",
        "--set", "replay_size=64",
        "--set", "export_onnx=false", "--set", "video_seconds=0", "--watch",
    ]  # fmt: skip
    code, out, err = run_cli(service.address, *argv)
    assert code == 0, out + err
    assert "finished SUCCEEDED" in out and "amp/disc_loss" in out, out
