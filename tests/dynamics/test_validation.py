"""One validation rule for inverse-dynamics options and trials on every entry point (library
Config and make_inverse_fn, the batch spec, the SDK, the CLI's file reader), and errors that
name the field and the rule instead of numpy's own words."""

from __future__ import annotations

import dataclasses
import io
import pickle

import numpy as np
import pydantic
import pytest

from wildrobot import arrays, dynamics_inputs
from wildrobot.clients import dynamics as client_dynamics
from wildrobot.dynamics_inputs import TrialError
from wildrobot.envs.dynamics import Config, Trial, make_inverse_fn
from wildrobot.specs import InverseDynamicsSpec
from wildrobot.v1 import dynamics_pb2

BAD_OPTIONS = [
    ({"smooth_window": 103}, "smooth_window", "odd and in [1, 101]"),
    ({"smooth_window": 100001}, "smooth_window", "odd and in [1, 101]"),
    ({"smooth_window": 2**31 - 1}, "smooth_window", "odd and in [1, 101]"),
    ({"smooth_window": 4}, "smooth_window", "odd"),
    ({"smooth_window": 0}, "smooth_window", "odd"),
    ({"cop_threshold": float("nan")}, "cop_threshold", "finite and in [0, 1000] N"),
    ({"cop_threshold": float("inf")}, "cop_threshold", "finite and in [0, 1000] N"),
    ({"cop_threshold": -1.0}, "cop_threshold", "finite and in [0, 1000] N"),
    ({"cop_threshold": 1000.5}, "cop_threshold", "finite and in [0, 1000] N"),
]


@pytest.mark.parametrize(("options", "field", "words"), BAD_OPTIONS)
def test_every_entry_point_rejects_the_same_options(options, field, words) -> None:
    with pytest.raises(TrialError, match=field) as direct:
        dynamics_inputs.validate_options(**options)
    assert direct.value.field == field and words in str(direct.value)
    with pytest.raises(TrialError) as lib:  # the library's Config
        Config(**options)
    assert str(lib.value) == str(direct.value)
    with pytest.raises(TrialError) as sdk:  # the SDK (and the CLI through it), before sending
        client_dynamics.build_request({"qpos": np.zeros((3, 24))}, 100.0, options)
    assert str(sdk.value) == str(direct.value)
    with pytest.raises(pydantic.ValidationError) as spec:  # the batch spec
        InverseDynamicsSpec(trial_names=("a.npz",), **options)
    error = spec.value.errors()[0]
    assert error["loc"] == (field,)
    # NaN/inf are refused by the spec's finite-number rule before the shared one runs.
    assert words in error["msg"] or error["type"] == "finite_number"


def test_the_bounds_themselves_are_accepted() -> None:
    for options in (
        {"smooth_window": 101},
        {"smooth_window": 1},
        {"cop_threshold": 0.0},
        {"cop_threshold": 1000.0},
    ):
        dynamics_inputs.validate_options(**options)
        Config(**options)
        InverseDynamicsSpec(trial_names=("a.npz",), **options)


@pytest.fixture(scope="module")
def fn(model):
    return make_inverse_fn(model)


def _trial(sim_trial, **changes):
    data = dataclasses.replace(sim_trial, **changes)
    return Trial(qpos=data.qpos, grf=data.grf, cop=data.cop, free_moment=data.free_moment)


def _zero_quat(qpos):
    qpos = qpos.copy()
    qpos[7, 3:7] = 0.0
    return qpos


def _nan(qpos):
    qpos = qpos.copy()
    qpos[9, 10] = np.nan
    return qpos


@pytest.mark.parametrize(
    ("rate", "change", "field", "words"),
    [
        (0.0, {}, "rate_hz", "outside [10.0, 10000.0]"),
        (-250.0, {}, "rate_hz", "outside"),
        (1e6, {}, "rate_hz", "outside"),
        (None, {"qpos": _zero_quat}, "qpos", "not unit length at frame 7"),
        (None, {"qpos": _nan}, "qpos", "NaN or Inf (first at frame 9)"),
    ],
)
def test_make_inverse_fn_validates_before_running(fn, sim_trial, rate, change, field, words):
    changes = {k: f(getattr(sim_trial, k)) for k, f in change.items()}
    with pytest.raises(TrialError) as info:
        fn(_trial(sim_trial, **changes), sim_trial.rate_hz if rate is None else rate)
    assert info.value.field == field and words in str(info.value)


def test_make_inverse_fn_rejects_a_nan_threshold(fn, sim_trial) -> None:
    with pytest.raises(TrialError, match="cop_threshold"):
        fn(_trial(sim_trial), sim_trial.rate_hz, None, None, float("nan"))


def test_a_huge_shape_names_the_field_not_numpy() -> None:
    msg = dynamics_pb2.Array(
        data=b"", dtype=dynamics_pb2.DTYPE_FLOAT64, shape=[2**32 - 1, 2**32 - 1, 2**16, 2**16]
    )
    with pytest.raises(ValueError) as info:
        arrays.from_proto(msg, "qpos")
    text = str(info.value)
    assert text.startswith("qpos: 0 bytes do not hold shape") and "reshape" not in text


@pytest.mark.parametrize(
    ("payload", "words"),
    [
        (b"hello, not a trial", "is not an .npz file"),
        (pickle.dumps({"qpos": [1, 2]}), "is not an .npz file"),
        (b"\x93NUMPY" + b"\0" * 64, "single .npy array"),
        (b"PK\x03\x04" + b"\0" * 40, "not a readable .npz"),
    ],
)
def test_a_non_npz_upload_names_the_field_and_rule(payload, words) -> None:
    with pytest.raises(TrialError) as info:
        dynamics_inputs.load_npz(payload, field="trials_npz[0]")
    assert info.value.field == "trials_npz[0]" and words in str(info.value)
    assert "allow_pickle" not in str(info.value)


def test_an_object_array_npz_names_the_rule() -> None:
    buffer = io.BytesIO()
    np.savez(buffer, qpos=np.array([{"a": 1}], dtype=object))
    with pytest.raises(TrialError) as info:
        dynamics_inputs.load_npz(buffer.getvalue(), field="trial")
    assert "pickled (object) array" in str(info.value) and "allow_pickle" not in str(info.value)


def test_declared_foot_order_other_than_the_models_is_refused(sim_trial, model) -> None:
    swapped = dataclasses.replace(sim_trial, foot_names=("right", "left"))
    with pytest.raises(TrialError) as info:
        dynamics_inputs.validate(swapped, nq=model.nq, nv=model.nv, foot_names=model.foot_names)
    assert info.value.field == "foot_names" and "['right', 'left'] declared" in str(info.value)


def test_csv_declares_its_names_and_the_cli_reader_keeps_them(tmp_path, sim_trial, model):
    from wildrobot.envs.dynamics.runner import joint_order

    joints = list(joint_order(model))
    path = tmp_path / "t.csv"
    dynamics_inputs.save_csv(sim_trial, path, joints[::-1])  # columns in another order
    back = dynamics_inputs.load_csv(path)
    assert back.joint_names == tuple(joints[::-1]) and back.foot_names == ("left", "right")
    with pytest.raises(TrialError) as info:
        dynamics_inputs.validate(
            back, nq=model.nq, nv=model.nv, foot_names=model.foot_names, joint_names=joints
        )
    assert info.value.field == "joint_names"
