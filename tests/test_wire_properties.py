"""Property tests (hypothesis) over the wire: spec <-> proto conversion, submit validation, array
decoding and request decoding. Each property holds for every input hypothesis draws; example
counts are kept small so the whole file runs in seconds."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from wildrobot import arrays, convert, costs
from wildrobot.server import errors
from wildrobot.server.decoding import Undecodable, safe_deserializer
from wildrobot.server.jobs import validate_submission
from wildrobot.specs import MAX_HOSTS, InverseDynamicsSpec, PpoSpec
from wildrobot.v1 import dynamics_pb2, jobs_pb2

# The specs here span 1 to 4 hosts: a deployment allowing every host count the wire does.
LIMITS = costs.CostLimits(max_hosts=MAX_HOSTS)

SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])

_FLOAT_BOUNDS = {  # (low, high) of each float field of PpoSpec, low exclusive where gt=0
    "learning_rate": (1e-9, 1.0),
    "entropy_cost": (0.0, 1.0),
    "discounting": (1e-9, 1.0),
    "gae_lambda": (0.0, 1.0),
    "clipping_epsilon": (1e-9, 1.0),
    "max_grad_norm": (1e-9, 1000.0),
    "reward_scaling": (1e-9, 1000.0),
    "video_seconds": (0.0, 30.0),
}


@st.composite
def ppo_specs(draw: st.DrawFn) -> PpoSpec:
    """Valid PpoSpecs across every field (batch shape and host splits made to fit)."""
    num_hosts = draw(st.sampled_from([1, 2, 4]))
    num_envs = num_hosts * draw(st.integers(1, 64))
    batch_size = num_envs * draw(st.integers(1, 4))
    fields = {
        "task": draw(st.sampled_from(["PointMass", "WildRobotStand", "WildRobotWalk"])),
        "num_hosts": num_hosts,
        "num_envs": num_envs,
        "batch_size": batch_size,
        "num_minibatches": draw(st.integers(1, 64)),
        "num_timesteps": draw(st.integers(1, 20_000_000_000)),
        "episode_length": draw(st.integers(1, 100_000)),
        "unroll_length": draw(st.integers(1, 1000)),
        "num_updates_per_batch": draw(st.integers(1, 64)),
        "normalize_observations": draw(st.booleans()),
        "policy_hidden_sizes": tuple(draw(st.lists(st.integers(1, 4096), min_size=1, max_size=8))),
        "value_hidden_sizes": tuple(draw(st.lists(st.integers(1, 4096), min_size=1, max_size=8))),
        "seed": draw(st.integers(0, 2**31 - 1)),
        "checkpoint_every": draw(st.integers(1, 1_000_000)),
        "num_eval_envs": draw(st.integers(1, 65_536)),
        "eval_every": draw(st.integers(0, 1_000_000)),
        "export_onnx": draw(st.booleans()),
        "policy_arch": draw(st.sampled_from(["mlp", "ssm"])),
        "ssm_layers": draw(st.integers(1, 4)),
        "ssm_state_size": draw(st.integers(1, 256)),
        "ssm_width": draw(st.integers(8, 512)),
    }
    for name, (low, high) in _FLOAT_BOUNDS.items():
        fields[name] = draw(st.floats(low, high, allow_nan=False, allow_infinity=False))
    if fields["task"] == "PointMass" and draw(st.booleans()):
        weight = draw(st.floats(-100.0, 100.0, allow_nan=False))
        fields["env_overrides"] = {"reward_weights.alive": weight}
    return PpoSpec(**fields)


@SETTINGS
@given(ppo_specs())
def test_ppo_spec_round_trips_through_proto(spec: PpoSpec) -> None:
    msg = convert.spec_to_proto(spec)
    again = convert.spec_from_proto(jobs_pb2.JobSpec.FromString(msg.SerializeToString()))
    assert again == spec


@SETTINGS
@given(
    names=st.lists(
        st.from_regex(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,20}(/[A-Za-z0-9_][A-Za-z0-9_-]{0,10})?\.npz",
                      fullmatch=True),
        min_size=1,
        max_size=4,
    ),
    window=st.integers(0, 50).map(lambda k: 2 * k + 1),
    threshold=st.floats(0.0, 1000.0, allow_nan=False),
    flags=st.tuples(st.booleans(), st.booleans()),
)  # fmt: skip
def test_inverse_dynamics_spec_round_trips(names, window, threshold, flags) -> None:
    names = [n for n in names if ".." not in n.split("/")] or ["trial.npz"]
    spec = InverseDynamicsSpec(
        trial_names=tuple(names),
        smooth_window=window,
        cop_threshold=threshold,
        smooth_forces=flags[0],
        float64=flags[1],
    )
    msg = jobs_pb2.JobSpec.FromString(convert.spec_to_proto(spec).SerializeToString())
    assert convert.spec_from_proto(msg) == spec


# One field of a PpoSpec message set to anything its wire type can carry.
_U32 = st.integers(0, 2**32 - 1)
_U64 = st.integers(0, 2**64 - 1)
_DOUBLE = st.floats(allow_nan=True, allow_infinity=True)
_VALUES = st.recursive(
    st.one_of(st.none(), st.booleans(), _DOUBLE, st.text(max_size=20)),
    lambda inner: st.lists(inner, max_size=3),
    max_leaves=5,
)


def _field_values(field: str) -> st.SearchStrategy:
    descriptor = jobs_pb2.PpoSpec.DESCRIPTOR.fields_by_name[field]
    if field == "env_overrides":
        keys = st.one_of(st.sampled_from(["reward_weights.alive", "x"]), st.text(max_size=30))
        return st.dictionaries(keys, _VALUES, max_size=3)
    if descriptor.is_repeated:
        return st.lists(_U32, max_size=10)
    return {
        descriptor.TYPE_UINT32: _U32,
        descriptor.TYPE_UINT64: _U64,
        descriptor.TYPE_DOUBLE: _DOUBLE,
        descriptor.TYPE_BOOL: st.booleans(),
        descriptor.TYPE_STRING: st.text(max_size=300),
    }[descriptor.type]


_PPO_FIELDS = sorted(f.name for f in jobs_pb2.PpoSpec.DESCRIPTOR.fields)


@st.composite
def one_field_changed(draw: st.DrawFn) -> tuple[str, jobs_pb2.JobSpec]:
    field = draw(st.sampled_from(_PPO_FIELDS))
    msg = jobs_pb2.PpoSpec(task="PointMass", num_envs=4, batch_size=4, num_minibatches=2)
    value = draw(_field_values(field))
    if field == "env_overrides":
        for key, item in value.items():
            target = msg.env_overrides[key]
            _set_value(target, item)
    elif isinstance(value, list):
        getattr(msg, field).extend(value)
    else:
        setattr(msg, field, value)
    return field, jobs_pb2.JobSpec(ppo=msg)


def _set_value(target, item) -> None:
    if item is None:
        target.null_value = 0
    elif isinstance(item, bool):
        target.bool_value = item
    elif isinstance(item, float):
        target.number_value = item
    elif isinstance(item, str):
        target.string_value = item
    else:
        target.list_value.SetInParent()
        for sub in item:
            _set_value(target.list_value.values.add(), sub)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(one_field_changed())
def test_any_field_value_is_accepted_or_refused_by_name(case) -> None:
    """Whatever one field holds, submit validation returns a spec or raises InvalidArgument
    naming that field (never a raw exception, never a message about something else)."""
    field, msg = case
    try:
        spec = validate_submission(msg, "", "", LIMITS)
    except errors.InvalidArgument as exc:
        # A batch-shape rule names the spec itself (it is about several fields at once).
        named = [f for f in exc.fields if f == "spec.ppo" or f.startswith(f"spec.ppo.{field}")]
        assert named, (exc, exc.fields)
        assert f"spec.ppo.{field}" in str(exc) or "spec.ppo:" in str(exc), str(exc)
        return
    assert isinstance(spec, PpoSpec)
    value = getattr(spec, field)
    if isinstance(value, float):
        assert math.isfinite(value)


_DTYPES = {dynamics_pb2.DTYPE_FLOAT32: np.float32, dynamics_pb2.DTYPE_FLOAT64: np.float64}


@SETTINGS
@given(
    data=st.binary(max_size=64),
    dtype=st.integers(-2, 6),
    shape=st.lists(st.one_of(st.integers(0, 8), st.integers(0, 2**32 - 1)), max_size=6),
)
def test_any_array_decodes_or_is_refused_by_name(data: bytes, dtype: int, shape: list[int]):
    msg = dynamics_pb2.Array(data=data, shape=shape)
    msg.dtype = dtype  # open enum: unknown numbers stay as they are
    try:
        out = arrays.from_proto(msg, "qpos")
    except ValueError as exc:
        assert str(exc).startswith("qpos: "), str(exc)
        return
    assert out.shape == tuple(shape)
    assert out.tobytes() == data and out.dtype.itemsize * out.size == len(data)


@SETTINGS
@given(
    st.sampled_from([np.float32, np.float64]).flatmap(
        lambda dtype: st.lists(st.integers(0, 4), min_size=0, max_size=4).flatmap(
            lambda shape: st.just(shape).map(tuple).flatmap(
                lambda s: st.lists(
                    st.floats(width=32 if dtype == np.float32 else 64),
                    min_size=math.prod(s),
                    max_size=math.prod(s),
                ).map(lambda values: np.array(values, dtype=dtype).reshape(s))
            )
        )
    )
)  # fmt: skip
def test_arrays_round_trip(array: np.ndarray) -> None:
    back = arrays.from_proto(
        dynamics_pb2.Array.FromString(arrays.to_proto(array).SerializeToString()), "x"
    )
    assert back.dtype == array.dtype and back.shape == array.shape
    np.testing.assert_array_equal(back, array)


_REQUESTS = [jobs_pb2.SubmitJobRequest, jobs_pb2.ListJobsRequest, jobs_pb2.WatchJobRequest,
             dynamics_pb2.InverseDynamicsRequest]  # fmt: skip


@SETTINGS
@given(message=st.sampled_from(_REQUESTS), data=st.binary(max_size=80))
def test_request_bytes_decode_or_name_where_they_break(message, data: bytes) -> None:
    """Any bytes: the safe deserializer returns the message, or an Undecodable that names the
    message type and a field (or "request"), exactly when protobuf refuses the bytes."""
    out = safe_deserializer(message.FromString)(data)
    try:
        expected = message.FromString(data)
    except Exception:  # noqa: BLE001 - protobuf's DecodeError
        assert isinstance(out, Undecodable)
        assert out.message.startswith(f"request: not a valid {message.DESCRIPTOR.full_name}")
        assert (
            out.field == "request"
            or out.field.split(".")[0].split("[")[0] in [f.name for f in message.DESCRIPTOR.fields]
            or out.field.startswith("field ")
        ), out
        return
    assert out == expected


def test_nan_override_names_the_setting_and_rule() -> None:
    msg = jobs_pb2.PpoSpec(task="PointMass")
    msg.env_overrides["reward_weights.alive"].number_value = float("nan")
    with pytest.raises(errors.InvalidArgument) as err:
        validate_submission(jobs_pb2.JobSpec(ppo=msg), "", "", LIMITS)
    assert "spec.ppo.env_overrides" in err.value.fields
    assert "reward_weights.alive: must be finite" in str(err.value)
