"""The malformed-request corpus: one reviewable table of bad requests and what each must answer.

Every case is raw request bytes for one method, the status code it must get, and the field its
message must name. Requests are bytes (not messages) so that undecodable input (invalid UTF-8,
truncated, garbage, a field sent with the wrong wire type) travels exactly as an outside client
would send it. `test_malformed_requests.py` sends each one to a real server.

Kinds of damage, per field: missing, wrong type, out of range, NaN/inf, huge, unicode, oversize,
undecodable. Fields where a kind cannot apply (a bool cannot be out of range) skip it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from google.protobuf import struct_pb2

from wildrobot.v1 import dynamics_pb2, jobs_pb2

INVALID = "INVALID_ARGUMENT"
NOT_FOUND = "NOT_FOUND"
RESOURCE_EXHAUSTED = "RESOURCE_EXHAUSTED"

JOBS = "/wildrobot.v1.JobService/"
DYNAMICS = "/wildrobot.v1.DynamicsService/"
STREAMING = {"WatchJob", "DownloadCheckpoint", "DownloadArtifact"}
UNKNOWN_JOB = "0" * 32


@dataclass(frozen=True)
class Case:
    id: str
    method: str  # e.g. "/wildrobot.v1.JobService/GetJob"
    request: bytes
    code: str  # grpc.StatusCode name
    field: str  # must appear in the status message

    @property
    def streaming(self) -> bool:
        return self.method.rsplit("/", 1)[1] in STREAMING


# --- wire helpers: hand-made bytes for what a generated client cannot send --------------------


def varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def tag(number: int, wire_type: int) -> bytes:
    return varint(number << 3 | wire_type)


def length_delimited(number: int, payload: bytes) -> bytes:
    return tag(number, 2) + varint(len(payload)) + payload


BAD_UTF8 = b"\xff\xfe\xc3"  # not UTF-8 in any reading


def submit(ppo: jobs_pb2.PpoSpec | None = None, **fields: object) -> bytes:
    spec = jobs_pb2.JobSpec(ppo=ppo) if ppo is not None else None
    return jobs_pb2.SubmitJobRequest(spec=spec, **fields).SerializeToString()


def ppo(**fields: object) -> jobs_pb2.PpoSpec:
    base = {"task": "PointMass", "num_envs": 4, "batch_size": 4, "num_minibatches": 2}
    return jobs_pb2.PpoSpec(**{**base, **fields})


def ppo_raw(inner: bytes) -> bytes:
    """SubmitJobRequest{spec: JobSpec{ppo: <inner bytes>}}."""
    return length_delimited(1, length_delimited(1, inner))


def override(key: str, value: struct_pb2.Value) -> bytes:
    spec = ppo()
    spec.env_overrides[key].CopyFrom(value)
    return submit(spec)


def number(value: float) -> struct_pb2.Value:
    return struct_pb2.Value(number_value=value)


def id_spec(**fields: object) -> bytes:
    spec = jobs_pb2.InverseDynamicsSpec(**fields)
    return jobs_pb2.SubmitJobRequest(
        spec=jobs_pb2.JobSpec(inverse_dynamics=spec)
    ).SerializeToString()


def array(data: bytes, dtype: int, shape: list[int]) -> dynamics_pb2.Array:
    return dynamics_pb2.Array(data=data, dtype=dtype, shape=shape)


F64 = dynamics_pb2.DTYPE_FLOAT64


def id_rpc(**fields: object) -> bytes:
    return dynamics_pb2.InverseDynamicsRequest(**fields).SerializeToString()


# --- the corpus -------------------------------------------------------------------------------

_UINT32 = ("num_envs", "episode_length", "unroll_length", "batch_size", "num_minibatches",
           "num_updates_per_batch", "checkpoint_every", "num_eval_envs", "eval_every",
           "num_hosts")  # fmt: skip
_DOUBLES = ("learning_rate", "entropy_cost", "discounting", "gae_lambda", "clipping_epsilon",
            "max_grad_norm", "reward_scaling", "video_seconds")  # fmt: skip
_OUT_OF_RANGE = {"num_envs": 0, "episode_length": 0, "unroll_length": 0, "batch_size": 0,
                 "num_minibatches": 0, "num_updates_per_batch": 0, "checkpoint_every": 0,
                 "num_eval_envs": 0, "eval_every": 10_000_000, "num_hosts": 0,
                 "learning_rate": 0.0, "entropy_cost": -1.0, "discounting": 1.5,
                 "gae_lambda": 2.0, "clipping_epsilon": 0.0, "max_grad_norm": 0.0,
                 "reward_scaling": 0.0, "video_seconds": -1.0, "num_timesteps": 0,
                 "seed": 2**40}  # fmt: skip
# PpoSpec field numbers (jobs.proto), for hand-made bytes.
_PPO_NUMBER = {f.name: f.number for f in jobs_pb2.PpoSpec.DESCRIPTOR.fields}


def _ppo_cases() -> list[Case]:
    cases = []
    for name, value in _OUT_OF_RANGE.items():
        cases.append(Case(f"ppo.{name}.range", JOBS + "SubmitJob", submit(ppo(**{name: value})),
                          INVALID, f"spec.ppo.{name}"))  # fmt: skip
    for name in _UINT32:
        cases.append(Case(f"ppo.{name}.huge", JOBS + "SubmitJob",
                          submit(ppo(**{name: 2**32 - 1})), INVALID, f"spec.ppo.{name}"))  # fmt: skip
    for name in ("num_timesteps", "seed"):
        cases.append(Case(f"ppo.{name}.huge", JOBS + "SubmitJob",
                          submit(ppo(**{name: 2**64 - 1})), INVALID, f"spec.ppo.{name}"))  # fmt: skip
    for name in _DOUBLES:
        for label, value in (("nan", math.nan), ("inf", math.inf), ("-inf", -math.inf),
                             ("huge", 1e308)):  # fmt: skip
            cases.append(Case(f"ppo.{name}.{label}", JOBS + "SubmitJob",
                              submit(ppo(**{name: value})), INVALID, f"spec.ppo.{name}"))  # fmt: skip
    # Wrong wire type: a double sent as a varint is an unknown field, so the spec has no
    # learning_rate... which is valid (the default). A string where a number belongs is the same;
    # the typed check that remains is a number where the task name belongs: task stays unset and
    # that is fine too. So "wrong type" is exercised where it can matter: Struct values below.
    for name in ("task",):
        cases.append(Case(f"ppo.{name}.unicode", JOBS + "SubmitJob",
                          submit(ppo(task="ロボット")), INVALID, "spec.ppo.task"))  # fmt: skip
        cases.append(Case(f"ppo.{name}.oversize", JOBS + "SubmitJob",
                          submit(ppo(task="x" * 100_000)), INVALID, "spec.ppo.task"))  # fmt: skip
        cases.append(Case(f"ppo.{name}.utf8", JOBS + "SubmitJob",
                          ppo_raw(length_delimited(1, BAD_UTF8)), INVALID, "spec.ppo.task"))  # fmt: skip
        cases.append(Case(f"ppo.{name}.empty", JOBS + "SubmitJob", submit(ppo(task="")),
                          INVALID, "spec.ppo.task"))  # fmt: skip
    for name in ("normalize_observations", "export_onnx", "num_envs", "learning_rate"):
        # A truncated value: the tag and no (or half a) value.
        wire = 1 if name == "learning_rate" else 0
        raw = tag(_PPO_NUMBER[name], wire) + (b"\x00\x00" if wire == 1 else b"\x80")
        cases.append(Case(f"ppo.{name}.truncated", JOBS + "SubmitJob", ppo_raw(raw), INVALID,
                          f"spec.ppo.{name}"))  # fmt: skip
    for name in ("policy_hidden_sizes", "value_hidden_sizes"):
        for label, value in (("zero", [0]), ("huge", [2**32 - 1]), ("long", [8] * 9)):
            cases.append(Case(f"ppo.{name}.{label}", JOBS + "SubmitJob",
                              submit(ppo(**{name: value})), INVALID, f"spec.ppo.{name}"))  # fmt: skip
    over = "spec.ppo.env_overrides"
    key = "reward_weights.alive"  # a PointMass setting (a float in [-100, 100])
    many = ppo()
    for i in range(65):
        many.env_overrides[f"k{i}"].number_value = 1
    cases += [
        # Non-finite values name the setting and the rule (not protobuf's JSON printer).
        Case("overrides.nan", JOBS + "SubmitJob", override(key, number(math.nan)), INVALID,
             f"{key}: must be finite"),
        Case("overrides.inf", JOBS + "SubmitJob", override(key, number(math.inf)), INVALID,
             f"{key}: must be finite"),
        Case("overrides.-inf", JOBS + "SubmitJob", override(key, number(-math.inf)), INVALID,
             f"{key}: must be finite"),
        Case("overrides.huge", JOBS + "SubmitJob", override(key, number(1e308)), INVALID, over),
        Case("overrides.wrong_type", JOBS + "SubmitJob",
             override(key, struct_pb2.Value(string_value="fast")), INVALID, over),
        Case("overrides.null", JOBS + "SubmitJob",
             override(key, struct_pb2.Value(null_value=0)), INVALID, over),
        Case("overrides.nan_in_list", JOBS + "SubmitJob",
             override(key, struct_pb2.Value(list_value=struct_pb2.ListValue(
                 values=[number(math.nan), number(1.0)]))), INVALID, over),
        Case("overrides.unknown_key", JOBS + "SubmitJob", override("nope.key", number(1)),
             INVALID, over),
        Case("overrides.unicode_key", JOBS + "SubmitJob", override("ключ", number(1)), INVALID,
             over),
        Case("overrides.oversize_key", JOBS + "SubmitJob", override("k" * 10_000, number(1)),
             INVALID, over),
        Case("overrides.too_many", JOBS + "SubmitJob", submit(many), INVALID, over),
        Case("overrides.utf8_key", JOBS + "SubmitJob",
             ppo_raw(length_delimited(23, length_delimited(1, BAD_UTF8))), INVALID,
             "spec.ppo.env_overrides.key"),
    ]  # fmt: skip
    return cases


def _submit_cases() -> list[Case]:
    method = JOBS + "SubmitJob"
    return [
        Case("submit.spec.missing", method, submit(), INVALID, "spec"),
        Case("submit.spec.empty_kind", method,
             jobs_pb2.SubmitJobRequest(spec=jobs_pb2.JobSpec()).SerializeToString(), INVALID,
             "spec"),
        Case("submit.name.oversize", method, submit(ppo(), name="n" * 500), INVALID, "name"),
        Case("submit.name.utf8", method, length_delimited(4, BAD_UTF8), INVALID, "name"),
        Case("submit.request_id.oversize", method, submit(ppo(), request_id="r" * 500),
             INVALID, "request_id"),
        Case("submit.request_id.utf8", method, length_delimited(2, BAD_UTF8), INVALID,
             "request_id"),
        Case("submit.validate_only.truncated", method, tag(3, 0), INVALID, "validate_only"),
        Case("submit.spec.truncated", method, tag(1, 2) + varint(50) + b"\x0a", INVALID, "spec"),
        Case("submit.garbage", method, b"\xff" * 16, INVALID, "request"),
        Case("submit.oversize", method, submit(ppo(), name="x" * 300_000), RESOURCE_EXHAUSTED,
             ""),
        # Inverse-dynamics batch spec: its top-level fields.
        Case("id.inputs.missing", method, id_spec(), INVALID, "spec.inverse_dynamics"),
        Case("id.smooth_window.even", method, id_spec(trial_names=["a.npz"], smooth_window=4),
             INVALID, "spec.inverse_dynamics.smooth_window"),
        Case("id.smooth_window.huge", method,
             id_spec(trial_names=["a.npz"], smooth_window=2**32 - 1), INVALID,
             "spec.inverse_dynamics.smooth_window"),
        Case("id.cop_threshold.nan", method, id_spec(trial_names=["a.npz"],
             cop_threshold=math.nan), INVALID, "spec.inverse_dynamics.cop_threshold"),
        Case("id.cop_threshold.inf", method, id_spec(trial_names=["a.npz"],
             cop_threshold=math.inf), INVALID, "spec.inverse_dynamics.cop_threshold"),
        Case("id.cop_threshold.negative", method, id_spec(trial_names=["a.npz"],
             cop_threshold=-1.0), INVALID, "spec.inverse_dynamics.cop_threshold"),
        Case("id.trial_names.traversal", method, id_spec(trial_names=["../etc/passwd.npz"]),
             INVALID, "spec.inverse_dynamics.trial_names"),
        Case("id.trial_names.oversize", method, id_spec(trial_names=["a" * 1000 + ".npz"]),
             INVALID, "spec.inverse_dynamics.trial_names"),
        Case("id.trial_names.utf8", method,
             length_delimited(1, length_delimited(3, length_delimited(2, BAD_UTF8))), INVALID,
             "spec.inverse_dynamics.trial_names"),
    ]  # fmt: skip


def _job_id_cases(rpc: str, build: type, extra: dict | None = None) -> list[Case]:
    method = JOBS + rpc
    extra = extra or {}
    rest = build(**extra).SerializeToString()  # the other fields, valid
    return [
        Case(f"{rpc}.job_id.missing", method, build(**extra).SerializeToString(), INVALID,
             "job_id"),
        # A malformed id names no job: NOT_FOUND (clients treat it as any unknown id), with
        # the rule in the message.
        Case(f"{rpc}.job_id.malformed", method, build(job_id="not-an-id", **extra)
             .SerializeToString(), NOT_FOUND, "job_id is 32 lowercase hex digits"),
        Case(f"{rpc}.job_id.unicode", method, build(job_id="ü" * 32, **extra)
             .SerializeToString(), NOT_FOUND, "job_id is 32 lowercase hex digits"),
        Case(f"{rpc}.job_id.oversize", method, build(job_id="a" * 100_000, **extra)
             .SerializeToString(), NOT_FOUND, "job_id is 32 lowercase hex digits"),
        Case(f"{rpc}.job_id.utf8", method, rest + length_delimited(1, BAD_UTF8), INVALID,
             "job_id"),
        Case(f"{rpc}.job_id.truncated", method, rest + tag(1, 2) + varint(32) + b"abc",
             INVALID, "job_id"),
        # A varint where the string belongs: an unknown field, so job_id is missing.
        Case(f"{rpc}.job_id.wrong_type", method, rest + tag(1, 0) + varint(7), INVALID,
             "job_id"),
        Case(f"{rpc}.unknown_job", method, build(job_id=UNKNOWN_JOB, **extra)
             .SerializeToString(), NOT_FOUND, UNKNOWN_JOB),
    ]  # fmt: skip


def _list_cases() -> list[Case]:
    method = JOBS + "ListJobs"

    def req(**fields: object) -> bytes:
        return jobs_pb2.ListJobsRequest(**fields).SerializeToString()

    return [
        Case("list.kind.unknown", method, req(kind=99), INVALID, "kind"),
        Case("list.kind.negative", method, tag(1, 0) + varint(2**64 - 1), INVALID, "kind"),
        Case("list.states.unknown", method, req(states=[1, 99]), INVALID, "states[1]"),
        Case("list.states.unspecified", method, req(states=[0]), INVALID, "states[0]"),
        Case("list.page_size.huge", method, req(page_size=2**32 - 1), INVALID, "page_size"),
        Case("list.page_size.range", method, req(page_size=501), INVALID, "page_size"),
        Case("list.page_token.malformed", method, req(page_token="zzz"), INVALID, "page_token"),
        Case("list.page_token.unicode", method, req(page_token="o１２"), INVALID, "page_token"),
        Case("list.page_token.oversize", method, req(page_token="o" + "9" * 10_000), INVALID,
             "page_token"),
        Case("list.page_token.utf8", method, length_delimited(4, BAD_UTF8), INVALID,
             "page_token"),
        Case("list.garbage", method, b"\x0f\xff\xff", INVALID, "request"),
    ]  # fmt: skip


def _download_cases() -> list[Case]:
    method = JOBS + "DownloadArtifact"

    def art(**fields: object) -> bytes:
        return jobs_pb2.DownloadArtifactRequest(job_id=UNKNOWN_JOB, **fields).SerializeToString()

    return [
        Case("artifact.kind.missing", method, art(), INVALID, "kind"),
        Case("artifact.kind.unknown", method, art(kind=99), INVALID, "kind"),
        Case("artifact.step.truncated", method, length_delimited(1, UNKNOWN_JOB.encode())
             + tag(2, 0), INVALID, "step"),
        Case("checkpoint.step.truncated", JOBS + "DownloadCheckpoint",
             length_delimited(1, UNKNOWN_JOB.encode()) + tag(2, 0) + b"\xff", INVALID, "step"),
        Case("watch.since_seq.truncated", JOBS + "WatchJob",
             length_delimited(1, UNKNOWN_JOB.encode()) + tag(2, 0), INVALID, "since_seq"),
    ]  # fmt: skip


def _dynamics_cases() -> list[Case]:
    method = DYNAMICS + "InverseDynamics"
    frame = array(b"\x00" * 8 * 3, F64, [1, 3])
    return [
        Case("id_rpc.qpos.missing", method, id_rpc(rate_hz=100.0), INVALID, "qpos"),
        Case("id_rpc.qpos.dtype", method, id_rpc(rate_hz=100.0, qpos=array(b"", 99, [0])),
             INVALID, "qpos"),
        Case("id_rpc.qpos.shape", method, id_rpc(rate_hz=100.0, qpos=array(b"\x00" * 8, F64,
             [3, 3])), INVALID, "qpos"),
        Case("id_rpc.qpos.huge_shape", method, id_rpc(rate_hz=100.0, qpos=array(b"", F64,
             [2**31, 2**31, 2**31])), INVALID, "qpos"),
        Case("id_rpc.grf.dims", method, id_rpc(rate_hz=100.0, qpos=frame, grf=array(b"", F64,
             [1, 1, 1, 1, 0])), INVALID, "grf"),
        Case("id_rpc.cop.truncated", method, length_delimited(4, tag(1, 2) + varint(99)),
             INVALID, "cop"),
        Case("id_rpc.rate_hz.truncated", method, tag(1, 1) + b"\x00", INVALID, "rate_hz"),
        Case("id_rpc.options.truncated", method, length_delimited(8, tag(1, 0)), INVALID,
             "options.smooth_window"),
        Case("id_rpc.garbage", method, b"\xff\xff\xff\xff", INVALID, "request"),
    ]  # fmt: skip


def _health_cases() -> list[Case]:
    # Health answers without a token; its undecodable requests are answered the same way.
    method = "/grpc.health.v1.Health/Check"
    return [
        Case("health.service.utf8", method, length_delimited(1, BAD_UTF8), INVALID, "service"),
        Case("health.garbage", method, b"\x0a\xff", INVALID, "service"),
    ]


CASES: list[Case] = [
    *_ppo_cases(),
    *_submit_cases(),
    *_job_id_cases("GetJob", jobs_pb2.GetJobRequest),
    *_job_id_cases("CancelJob", jobs_pb2.CancelJobRequest),
    *_job_id_cases("ListCheckpoints", jobs_pb2.ListCheckpointsRequest),
    *_job_id_cases("WatchJob", jobs_pb2.WatchJobRequest),
    *_job_id_cases("DownloadCheckpoint", jobs_pb2.DownloadCheckpointRequest),
    *_job_id_cases(
        "DownloadArtifact", jobs_pb2.DownloadArtifactRequest, {"kind": jobs_pb2.ARTIFACT_KIND_ONNX}
    ),  # fmt: skip
    *_list_cases(),
    *_download_cases(),
    *_dynamics_cases(),
    *_health_cases(),
]
