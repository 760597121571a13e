"""The InverseDynamics RPC on the real server (port 0): same numbers as the library, and every
bad input rejected with INVALID_ARGUMENT naming the input."""

from __future__ import annotations

import grpc
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from tests.live_service import TOKEN_OF, service  # noqa: F401 - fixture
from wildrobot import arrays
from wildrobot.envs.dynamics import Config, Trial, generate, make_inverse_fn
from wildrobot.envs.dynamics.runner import bucket_for
from wildrobot.v1 import dynamics_pb2, dynamics_pb2_grpc

pytestmark = pytest.mark.redis
METADATA = (("authorization", f"Bearer {TOKEN_OF['alice']}"),)


@pytest.fixture(scope="module")
def trial():
    return generate.simulate_trial(150, seed=11)


def _request(trial, dtype=np.float64, **overrides) -> dynamics_pb2.InverseDynamicsRequest:
    fields = {
        "qpos": trial.qpos,
        "grf": trial.grf,
        "cop": trial.cop,
        "free_moment": trial.free_moment,
    }
    fields.update(overrides)
    msgs = {
        k: arrays.to_proto(np.asarray(v, dtype)) if isinstance(v, np.ndarray) else v
        for k, v in fields.items()
        if v is not None
    }
    return dynamics_pb2.InverseDynamicsRequest(rate_hz=trial.rate_hz, **msgs)


def _stub(service):  # noqa: F811
    return dynamics_pb2_grpc.DynamicsServiceStub(service.channel())


@pytest.mark.slow
def test_rpc_returns_the_library_numbers(service, trial) -> None:  # noqa: F811
    request = _request(trial)
    request.options.smooth_window = 3
    response = _stub(service).InverseDynamics(request, metadata=METADATA, timeout=300)
    outputs = {o.name: o for o in response.outputs}
    assert response.num_frames == trial.num_frames
    torque = arrays.from_proto(outputs["joint_torque"].array, "joint_torque")
    assert torque.dtype == np.float64 and torque.shape == (trial.num_frames, 17)
    assert outputs["joint_torque"].columns[:2] == ["waist_yaw", "left_hip_pitch"]
    assert list(outputs["ankle_moment"].columns) == [
        f"{f}.{a}" for f in ("left", "right") for a in "xyz"
    ]
    assert len(outputs["qfrc"].columns) == 23
    from wildrobot.envs.dynamics.wildrobot import dynamics_model

    with jax.enable_x64(True):
        fn = make_inverse_fn(dynamics_model(), Config(smooth_window=3))
        arr = {
            k: jnp.asarray(v)
            for k, v in (
                ("qpos", trial.qpos),
                ("grf", trial.grf),
                ("cop", trial.cop),
                ("free_moment", trial.free_moment),
            )
        }
        expected = jax.device_get(fn(Trial(**arr), trial.rate_hz))
    np.testing.assert_allclose(torque, expected.joint_torque, atol=1e-9)
    valid = arrays.from_proto(outputs["valid"].array, "valid")
    np.testing.assert_array_equal(valid, expected.valid)


def test_frame_counts_round_up_to_power_of_two_buckets_capped_at_the_limit() -> None:
    assert bucket_for(10, 10_000) == 256
    assert bucket_for(1000, 10_000) == 1024
    assert bucket_for(1025, 10_000) == 2048
    assert bucket_for(9000, 10_000) == 10_000


def _bad_quat(trial):
    qpos = trial.qpos.copy()
    qpos[5, 3:7] *= 1.5
    return qpos


def _nan(x):
    x = x.copy()
    x[3, 0, 2] = np.nan
    return x


@pytest.mark.parametrize(
    ("change", "field", "words"),
    [
        (lambda t: {"qpos": _bad_quat(t)}, "qpos", "not unit length"),
        (lambda t: {"grf": _nan(t.grf)}, "grf", "NaN or Inf"),
        (lambda t: {"cop": t.cop[:, :1]}, "cop", "shape"),
        (lambda t: {"qpos": t.qpos[:, :20]}, "qpos", "shape"),
        (lambda t: {"qpos": None}, "qpos", "required"),
        (lambda t: {"rate_hz": 1e6}, "rate_hz", "outside"),
        (lambda t: {"rate_hz": 0.0}, "rate_hz", "outside"),
        (
            lambda t: {
                "qpos": t.qpos[:2],
                "grf": t.grf[:2],
                "cop": t.cop[:2],
                "free_moment": t.free_moment[:2],
            },
            "qpos",
            "at least 3",
        ),
        (
            lambda t: {
                "grf": dynamics_pb2.Array(data=b"123", dtype=dynamics_pb2.DTYPE_FLOAT64, shape=[1])
            },
            "grf",
            "bytes do not hold",
        ),
        (
            lambda t: {
                "grf": dynamics_pb2.Array(data=b"", dtype=dynamics_pb2.DTYPE_UNSPECIFIED, shape=[0])
            },
            "grf",
            "dtype",
        ),
        (lambda t: {"grf": arrays.to_proto(t.grf.astype(np.float32))}, "grf", "differs from qpos"),
    ],
)
def test_bad_inputs_are_invalid_argument(service, trial, change, field, words) -> None:  # noqa: F811
    overrides = change(trial)
    rate = overrides.pop("rate_hz", None)
    request = _request(trial, **overrides)
    if rate is not None:
        request.rate_hz = rate
    with pytest.raises(grpc.RpcError) as info:
        _stub(service).InverseDynamics(request, metadata=METADATA, timeout=60)
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert info.value.details().startswith(field) or f"{field}:" in info.value.details()
    assert words in info.value.details()


def _long(trial, times):
    return {
        k: np.concatenate([v] * times)
        for k, v in (
            ("qpos", trial.qpos),
            ("grf", trial.grf),
            ("cop", trial.cop),
            ("free_moment", trial.free_moment),
        )
    }


def test_too_many_frames(service, trial) -> None:  # noqa: F811
    # Options valid (an odd window), so only the frame count can be what is refused.
    request = _request(trial, np.float32, **_long(trial, 3))
    request.options.smooth_window = 3
    with pytest.raises(grpc.RpcError) as info:
        _stub(service).InverseDynamics(request, metadata=METADATA, timeout=60)
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert info.value.details().startswith("qpos: 450 frames is more than the limit")


@pytest.mark.parametrize(
    ("option", "value", "words"),
    [
        ("smooth_window", 4, "must be odd and in [1, 101], got 4"),
        ("smooth_window", 103, "got 103"),
        ("smooth_window", 100001, "got 100001"),
        ("smooth_window", 2**31 - 1, f"got {2**31 - 1}"),
        ("cop_threshold", float("nan"), "must be finite and in [0, 1000] N, got nan"),
        ("cop_threshold", float("inf"), "got inf"),
        ("cop_threshold", -1.0, "got -1.0"),
    ],
)
def test_bad_options_are_invalid_argument(service, trial, option, value, words) -> None:  # noqa: F811
    request = _request(trial)
    setattr(request.options, option, value)
    with pytest.raises(grpc.RpcError) as info:
        _stub(service).InverseDynamics(request, metadata=METADATA, timeout=60)
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert info.value.details().startswith(f"options.{option}: ")
    assert words in info.value.details()


@pytest.mark.parametrize(
    ("field", "names", "words"),
    [
        ("foot_names", ["right", "left"], "['right', 'left'] declared, expected ['left', 'right']"),
        ("joint_names", ["waist_yaw"], "['waist_yaw'] declared, expected the model's order"),
    ],
)
def test_declared_names_other_than_the_models_are_refused(service, trial, field, names, words):  # noqa: F811
    request = _request(trial)
    getattr(request, field).extend(names)
    with pytest.raises(grpc.RpcError) as info:
        _stub(service).InverseDynamics(request, metadata=METADATA, timeout=60)
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert info.value.details().startswith(f"{field}: ") and words in info.value.details()


def test_needs_a_token(service, trial) -> None:  # noqa: F811
    with pytest.raises(grpc.RpcError) as info:
        _stub(service).InverseDynamics(_request(trial), timeout=60)
    assert info.value.code() == grpc.StatusCode.UNAUTHENTICATED


@pytest.mark.slow
def test_sdk_and_cli_return_the_rpc_numbers(service, trial, tmp_path) -> None:  # noqa: F811
    import io

    from wildrobot.clients import Client
    from wildrobot.clients.cli import main
    from wildrobot.envs.dynamics.trial import TrialData, save_npz

    request = _request(trial)
    raw = _stub(service).InverseDynamics(request, metadata=METADATA, timeout=300)
    expected = {o.name: arrays.from_proto(o.array, o.name) for o in raw.outputs}
    with Client(service.address, TOKEN_OF["alice"]) as client:
        result = client.inverse_dynamics(
            trial.qpos, trial.grf, trial.cop, rate_hz=trial.rate_hz, free_moment=trial.free_moment
        )
    np.testing.assert_array_equal(result["joint_torque"], expected["joint_torque"])
    assert result.columns["residual_force"] == ("x", "y", "z")
    assert result.units["joint_torque"] == "N m"

    path = tmp_path / "trial.npz"
    save_npz(TrialData(**{**trial.__dict__, "qvel": None, "qacc": None}), path)
    out = tmp_path / "torques.npz"
    argv = [
        "--address",
        service.address,
        "--token",
        TOKEN_OF["alice"],
        "id",
        str(path),
        "-o",
        str(out),
    ]
    assert main(argv, stdout=io.StringIO(), stderr=io.StringIO()) == 0
    with np.load(out) as saved:
        np.testing.assert_array_equal(saved["joint_torque"], expected["joint_torque"])
        assert list(saved["joint_torque__columns"])[0] == "waist_yaw"


def test_frames_beyond_the_message_limit_are_rejected(service, trial) -> None:  # noqa: F811
    # The test server allows 256 KiB messages: (256 Ki - 64 Ki) / 512 = 384 frames at most.
    request = _request(trial, np.float32, **_long(trial, 3))
    with pytest.raises(grpc.RpcError) as info:
        _stub(service).InverseDynamics(request, metadata=METADATA, timeout=60)
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "450 frames is more than the limit 384" in info.value.details()


def _cli(service, *args):  # noqa: F811
    import io

    from wildrobot.clients.cli import main

    out, err = io.StringIO(), io.StringIO()
    argv = ["--address", service.address, "--token", TOKEN_OF["alice"], "id", *map(str, args)]
    return main(argv, stdout=out, stderr=err), out.getvalue() + err.getvalue()


def test_cli_sends_what_the_file_declares(service, trial, tmp_path) -> None:  # noqa: F811
    from wildrobot.envs.dynamics.trial import TrialData, save_npz

    swapped = tmp_path / "swapped.npz"
    save_npz(TrialData(**{**trial.__dict__, "foot_names": ("right", "left")}), swapped)
    code, text = _cli(service, swapped, "-o", tmp_path / "o.npz")
    assert code != 0 and "foot_names: ['right', 'left'] declared" in text
    misspelt = tmp_path / "misspelt.npz"
    np.savez(
        misspelt,
        qpos=trial.qpos,
        grf=trial.grf,
        cop=trial.cop,
        rate_hz=trial.rate_hz,
        free_moments=trial.free_moment,
    )
    code, text = _cli(service, misspelt, "-o", tmp_path / "o.npz")
    assert code != 0 and "free_moments: unknown array" in text
    not_npz = tmp_path / "notes.npz"
    not_npz.write_bytes(b"just text")
    code, text = _cli(service, not_npz, "-o", tmp_path / "o.npz")
    assert code != 0 and "is not an .npz file" in text and "allow_pickle" not in text
    code, text = _cli(service, swapped, "-o", tmp_path / "o.npz", "--smooth", "103")
    assert code != 0 and "smooth_window: must be odd and in [1, 101]" in text
    assert not (tmp_path / "o.npz").exists()


@pytest.mark.slow
def test_cli_reads_the_documented_csv(service, trial, tmp_path) -> None:  # noqa: F811
    from wildrobot.envs.dynamics.runner import joint_order
    from wildrobot.envs.dynamics.trial import save_csv
    from wildrobot.envs.dynamics.wildrobot import dynamics_model

    path = tmp_path / "trial.csv"
    save_csv(trial, path, joint_order(dynamics_model()))
    code, text = _cli(service, path, "-o", tmp_path / "o.npz")
    assert code == 0, text
    with np.load(tmp_path / "o.npz") as saved:
        err = np.abs(saved["joint_torque"] - trial.truth["joint_torque"])[saved["valid"]]
        assert err.max() < 1e-6 and not saved["cop_outside"].any()


def _tiled(trial, frames):
    times = -(-frames // trial.num_frames)
    return {k: v[:frames] for k, v in _long(trial, times).items()}


def test_the_stream_refuses_one_frame_past_its_limit(service, trial) -> None:  # noqa: F811
    from wildrobot.clients import Client
    from wildrobot.clients.errors import ClientError

    data = _tiled(trial, 10_001)
    with Client(service.address, TOKEN_OF["alice"]) as client, pytest.raises(ClientError) as info:
        client.inverse_dynamics(
            rate_hz=trial.rate_hz, **{k: v.astype(np.float32) for k, v in data.items()}
        )
    cause = info.value.__cause__
    assert cause.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert cause.details() == "qpos: more than the limit 10000 frames in one InverseDynamicsStream"


@pytest.mark.slow
def test_the_documented_10000_frames_fit_a_256_kib_server(service, trial) -> None:  # noqa: F811
    """The unary call stops at 384 frames here (256 KiB messages); the stream takes 10,000."""
    from wildrobot.clients import Client

    data = {k: v.astype(np.float32) for k, v in _tiled(trial, 10_000).items()}
    with Client(service.address, TOKEN_OF["alice"]) as client:
        result = client.inverse_dynamics(rate_hz=trial.rate_hz, timeout_s=600, **data)
    assert result["joint_torque"].shape == (10_000, 17)
    assert result["valid"].sum() == 10_000 - 2
    # Same numbers as the unary call on a window it can carry (frames 1..148 see the same data).
    head = {k: v[:150] for k, v in data.items()}
    raw = _stub(service).InverseDynamics(
        _request(trial, np.float32, **head), metadata=METADATA, timeout=300
    )
    unary = {o.name: arrays.from_proto(o.array, o.name) for o in raw.outputs}
    np.testing.assert_allclose(
        result["joint_torque"][1:148], unary["joint_torque"][1:148], atol=2e-3
    )
