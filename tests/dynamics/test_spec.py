"""The inverse_dynamics job spec: proto round trip over every field, JSON on the queue, bounds."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from wildrobot import convert
from wildrobot.specs import MAX_ID_UPLOAD_BYTES, InverseDynamicsSpec, JobKind, spec_from_json
from wildrobot.v1 import jobs_pb2


def _non_default(**inputs) -> InverseDynamicsSpec:
    fields = {"trials_npz": (b"\x00\x01npz", b"\xff" * 10)} | inputs
    return InverseDynamicsSpec(
        smooth_window=11, smooth_forces=False, cop_threshold=2.5, float64=True, **fields
    )


@pytest.mark.parametrize("inputs", [{}, {"trials_npz": (), "trial_names": ("lab/a.npz", "b.csv")}])
def test_round_trips_every_field(inputs) -> None:
    spec = _non_default(**inputs)
    defaults = InverseDynamicsSpec(trial_names=("x.npz",))
    differing = {
        f for f in InverseDynamicsSpec.model_fields if getattr(spec, f) != getattr(defaults, f)
    }
    inputs_field = "trial_names" if inputs else "trials_npz"
    assert differing >= set(InverseDynamicsSpec.model_fields) - {
        "kind",
        "trials_npz",
        "trial_names",
    } | {inputs_field}
    wire = convert.spec_to_proto(spec)
    assert wire.WhichOneof("kind") == "inverse_dynamics"
    back = convert.spec_from_proto(jobs_pb2.JobSpec.FromString(wire.SerializeToString()))
    assert back == spec


def test_queue_json_round_trip_keeps_bytes() -> None:
    spec = _non_default()
    assert spec_from_json(JobKind.INVERSE_DYNAMICS, spec.model_dump_json()) == spec


def test_unset_fields_take_defaults() -> None:
    msg = jobs_pb2.JobSpec(inverse_dynamics=jobs_pb2.InverseDynamicsSpec(trial_names=["a.npz"]))
    assert convert.spec_from_proto(msg) == InverseDynamicsSpec(trial_names=("a.npz",))


@pytest.mark.parametrize(
    ("fields", "words"),
    [
        ({}, "exactly one of"),
        ({"trials_npz": (b"x",), "trial_names": ("a.npz",)}, "exactly one of"),
        ({"trial_names": ("../etc/passwd.npz",)}, "safe relative"),
        ({"trial_names": ("/abs.npz",)}, "safe relative"),
        ({"trial_names": ("a/../b.npz",)}, "safe relative"),
        ({"trial_names": ("run.sh",)}, "safe relative"),
        ({"trials_npz": (b"x" * (MAX_ID_UPLOAD_BYTES + 1),)}, "use trial_names"),
        ({"trial_names": ("a.npz",), "smooth_window": 4}, "must be odd"),
        ({"trial_names": ("a.npz",), "cop_threshold": float("nan")}, "finite"),
    ],
)
def test_bad_specs_are_rejected(fields, words) -> None:
    with pytest.raises(ValidationError, match=words):
        InverseDynamicsSpec(**fields)
