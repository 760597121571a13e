"""Inverse dynamics: the synchronous InverseDynamicsStream RPC on one trial, and batch jobs
over many (uploaded) trial files."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from wildrobot import dynamics_inputs
from wildrobot.specs import MAX_ID_UPLOAD_BYTES, InverseDynamicsSpec
from wildrobot.v1 import jobs_pb2

from .. import dynamics, errors
from ..types import SubmitResult
from .artifacts import ArtifactsClient
from .jobs import JobsClient, spec_error

# Local trial files are uploaded under a name made from their content and file name, so a
# later upload of another file with the same name never changes what a queued job reads.
UPLOAD_FOLDER = "trials"
_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]")


def upload_name(path: Path, data: bytes) -> str:
    """`trials/sha256-<16 hex>/<file name>` (unsafe characters of the name become `_`)."""
    stem = _UNSAFE.sub("_", path.name)
    if not stem[0].isalnum():
        stem = "_" + stem
    return f"{UPLOAD_FOLDER}/sha256-{hashlib.sha256(data).hexdigest()[:16]}/{stem}"


def read_trial(path: Path, index: int) -> bytes:
    """The bytes of a local trial file, checked as the worker will read it (InvalidSpec naming
    `trials[index]` otherwise)."""
    field = f"trials[{index}]"

    def bad(rule: str) -> errors.InvalidSpec:
        return errors.InvalidSpec(f"invalid spec: {field}: {rule}", [(field, rule)])

    suffix = path.suffix.lower()
    if suffix not in (".npz", ".csv"):
        raise bad(f"{str(path)!r} is not an .npz or .csv trial file")
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise bad(f"cannot read {str(path)!r}: {exc.strerror or exc}") from None
    if len(data) > MAX_ID_UPLOAD_BYTES:
        raise bad(f"{len(data)} bytes, limit {MAX_ID_UPLOAD_BYTES} (16 MiB) per trial file")
    try:
        if suffix == ".npz":
            dynamics_inputs.load_npz(data, field)
        else:
            dynamics_inputs.load_csv(path)
    except dynamics_inputs.TrialError as exc:
        raise bad(str(exc)) from None
    return data


class DynamicsClient(JobsClient, ArtifactsClient):
    """Inverse dynamics, one trial synchronously or many as a job (part of `Client`)."""

    def inverse_dynamics(
        self,
        qpos: Any,
        grf: Any,
        cop: Any,
        *,
        rate_hz: float,
        free_moment: Any = None,
        qvel: Any = None,
        qacc: Any = None,
        smooth_window: int | None = None,
        smooth_forces: bool | None = None,
        cop_threshold: float | None = None,
        timeout_s: float | None = None,
        foot_names: Sequence[str] = (),
        joint_names: Sequence[str] = (),
    ) -> dynamics.InverseDynamicsResult:
        """Joint torques, root residual, ankle moments and COP of one trial (docs/inverse_dynamics.md).

        qpos [T, nq], grf/cop/free_moment [T, 2, 3], qvel/qacc [T, nv]; float32 or float64 (the
        answer has the same dtype); at most 10,000 frames (sent and answered in slices through
        InverseDynamicsStream, so any server message limit works). foot_names / joint_names: the order the data follows, as a
        trial file declares it (the server rejects any other than the model's). Options out of
        range raise TrialError here, naming the option; bad inputs raise InvalidRequest naming
        the input. Retried on UNAVAILABLE (the call has no side effects)."""
        request = dynamics.build_request(
            {
                "qpos": qpos,
                "grf": grf,
                "cop": cop,
                "free_moment": free_moment,
                "qvel": qvel,
                "qacc": qacc,
            },
            rate_hz,
            {
                "smooth_window": smooth_window,
                "smooth_forces": smooth_forces,
                "cop_threshold": cop_threshold,
            },
            {"foot_names": foot_names, "joint_names": joint_names},
        )
        timeout = timeout_s or max(self.timeout_s, 120.0)  # a first call per length compiles
        # The streaming call: up to 10,000 frames whatever the server's message limit.
        messages = dynamics.stream_requests(request)
        responses = self._call_with_retry(
            lambda: list(
                self._dynamics.InverseDynamicsStream(
                    iter(messages), timeout=timeout, metadata=self._metadata
                )
            ),
            method="InverseDynamicsStream",
            job_id=None,
            attempts=self.retry.max_attempts,
        )
        return dynamics.result_from_stream(responses)

    def submit_inverse_dynamics(
        self,
        trials: Sequence[str | Path] = (),
        *,
        trial_names: Sequence[str] = (),
        smooth_window: int | None = None,
        smooth_forces: bool | None = None,
        cop_threshold: float | None = None,
        float64: bool | None = None,
        name: str = "",
        request_id: str | None = None,
        validate_only: bool = False,
    ) -> SubmitResult:
        """Submits a batch inverse-dynamics job (InverseDynamicsSpec): one output .npz per trial,
        listed by `list_artifacts` and fetched with `download_file`.

        `trials`: local .npz/.csv trial files (each at most 16 MiB), checked here as the worker
        reads them, then uploaded into your inputs as `trials/sha256-<digest>/<file name>`
        (skipped when the server already has that name); `trial_names`: files you uploaded
        before (`upload_trial`). At most 256 in all. Options left None take the server's
        defaults. `validate_only` uploads the trials too (so the server can check their names;
        a later submit does not send them again) but queues nothing. Raises InvalidSpec naming
        the field (`trials[i]`, `trial_names`, `smooth_window`, ...) and rule."""
        local = [(Path(p), read_trial(Path(p), i)) for i, p in enumerate(trials)]
        uploads = [upload_name(path, data) for path, data in local]
        names = [*trial_names, *uploads]
        options = {
            "smooth_window": smooth_window,
            "smooth_forces": smooth_forces,
            "cop_threshold": cop_threshold,
            "float64": float64,
        }
        given = {k: v for k, v in options.items() if v is not None}
        try:
            InverseDynamicsSpec(trial_names=tuple(names), **given)  # the server's rules, first
        except (ValidationError, ValueError, TypeError) as exc:
            raise spec_error(exc) from None
        present = {u["name"]: u["size_bytes"] for u in self.list_uploads()} if local else {}
        for (_, data), upload in zip(local, uploads, strict=True):
            if present.get(upload) != len(data):
                self.upload_trial(data, upload)
        msg = jobs_pb2.InverseDynamicsSpec(trial_names=names, **given)
        return self.submit(
            jobs_pb2.JobSpec(inverse_dynamics=msg),
            name=name,
            request_id=request_id,
            validate_only=validate_only,
        )
