"""The inverse_dynamics job handler (no Redis: a recording context), and the trial files."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest

from wildrobot.envs.dynamics import trial as trial_io
from wildrobot.specs import InverseDynamicsSpec
from wildrobot.workers.handlers import JobContext, JobError, get_handler


class _Publish:
    def metrics(self, step: int, values: dict) -> None:
        self.points.append((step, values))

    def __init__(self) -> None:
        self.points: list[tuple[int, dict]] = []
        self.registered: list[tuple[int, Path]] = []

    def checkpoint(self, step: int, path: Path, best: bool = False) -> None:
        self.registered.append((step, Path(path)))

    def log(self, level: str, message: str) -> None:
        pass


def _context(tmp_path: Path, tenant: str = "alice") -> JobContext:
    run_dir = tmp_path / "artifacts" / "job1" / "attempt-1"  # workers.layout.attempt_dir
    run_dir.mkdir(parents=True, exist_ok=True)
    return JobContext("job1", 1, run_dir, None, _Publish(), lambda: False, tenant=tenant)


def _inputs(tmp_path: Path, tenant: str = "alice") -> Path:
    path = tmp_path / "artifacts" / "tenants" / tenant / "inputs"
    path.mkdir(parents=True, exist_ok=True)
    return path


def _npz_bytes(trial) -> bytes:
    buffer = io.BytesIO()
    trial_io.save_npz(trial, buffer)
    return buffer.getvalue()


@pytest.mark.slow
def test_uploaded_and_named_trials_give_named_npz(tmp_path, sim_trial, model) -> None:
    context = _context(tmp_path)
    inputs = _inputs(tmp_path) / "lab"
    inputs.mkdir(parents=True)
    joint_names = [model.mj_model.joint(j).name for j in range(1, model.mj_model.njnt)]
    trial_io.save_csv(sim_trial, inputs / "walk.csv", joint_names)
    handler = get_handler("inverse_dynamics")
    spec = InverseDynamicsSpec(trial_names=("lab/walk.csv",), float64=True)
    result = handler(context, spec)
    assert result.final_step == sim_trial.num_frames and not result.stopped
    out_dir = context.run_dir / "inverse_dynamics"
    # Written under a temporary name and renamed; the folder registered (fenced) per trial.
    assert sorted(p.name for p in out_dir.iterdir()) == ["0000_walk.npz"]
    assert context.publish.registered == [(sim_trial.num_frames, out_dir)]
    with np.load(out_dir / "0000_walk.npz") as out:
        torque = out["joint_torque"]
        assert list(out["joint_torque__columns"][:2]) == ["waist_yaw", "left_hip_pitch"]
        valid = out["valid"]
    # CSV round trip keeps qpos exactly enough for 1e-6 N m (finite differences of float64).
    err = np.abs(torque - sim_trial.truth["joint_torque"])[valid]
    assert err.max() < 1e-6

    spec = InverseDynamicsSpec(trials_npz=(_npz_bytes(sim_trial),))
    handler(context, spec)
    assert (out_dir / "0000_trial0000.npz").exists()


def test_a_missing_named_input_fails_the_job(tmp_path) -> None:
    context = _context(tmp_path)
    _inputs(tmp_path)
    spec = InverseDynamicsSpec(trial_names=("missing.npz",))
    with pytest.raises(JobError, match=r"trial 0: trial_names: 'missing.npz' is not a file"):
        get_handler("inverse_dynamics")(context, spec)


def test_path_traversal_is_refused_by_the_spec_and_by_the_handler(tmp_path) -> None:
    name = "lab/../../secret.npz"
    with pytest.raises(ValueError, match="not a safe relative"):
        InverseDynamicsSpec(trial_names=(name,))
    # The handler's own guard, for a spec that got past validation: a real file outside inputs/.
    context = _context(tmp_path)
    (_inputs(tmp_path) / "lab").mkdir(parents=True)
    (tmp_path / "artifacts" / "tenants" / "alice" / "secret.npz").write_bytes(b"PK\x03\x04")
    spec = InverseDynamicsSpec.model_construct(
        kind="inverse_dynamics",
        trials_npz=(),
        trial_names=(name,),
        smooth_window=1,
        smooth_forces=True,
        cop_threshold=5.0,
        float64=False,
    )
    with pytest.raises(JobError, match="is not a file among your inputs"):
        get_handler("inverse_dynamics")(context, spec)


def test_a_tenant_cannot_name_another_tenants_recording(tmp_path, sim_trial) -> None:
    (_inputs(tmp_path, "alice") / "walk.npz").write_bytes(_npz_bytes(sim_trial))
    _inputs(tmp_path, "bob")
    spec = InverseDynamicsSpec(trial_names=("walk.npz",))
    with pytest.raises(JobError, match="'walk.npz' is not a file among your inputs"):
        get_handler("inverse_dynamics")(_context(tmp_path, tenant="bob"), spec)


def test_a_bad_trial_fails_the_job_naming_it(tmp_path, sim_trial) -> None:
    bad = trial_io.TrialData(**{**sim_trial.__dict__, "grf": sim_trial.grf[:, :1]})
    spec = InverseDynamicsSpec(trials_npz=(_npz_bytes(bad),))
    with pytest.raises(JobError, match="trial 0: grf: shape"):
        get_handler("inverse_dynamics")(_context(tmp_path), spec)


def test_npz_round_trip(tmp_path, sim_trial) -> None:
    trial_io.save_npz(sim_trial, tmp_path / "t.npz")
    back = trial_io.load_npz(tmp_path / "t.npz")
    for name, array in sim_trial.arrays().items():
        np.testing.assert_array_equal(getattr(back, name), array)
    assert back.rate_hz == sim_trial.rate_hz and back.foot_names == ("left", "right")
    np.testing.assert_array_equal(back.truth["joint_torque"], sim_trial.truth["joint_torque"])


def test_unknown_npz_arrays_are_named(tmp_path) -> None:
    np.savez(tmp_path / "t.npz", qpos=np.zeros((3, 24)), grf=0, cop=0, rate_hz=100, qposs=1)
    with pytest.raises(trial_io.TrialError, match="qposs"):
        trial_io.load_npz(tmp_path / "t.npz")
