"""The `inverse_dynamics` job: many or long trials through the jitted inverse, one .npz each.

Inputs come with the spec (uploaded .npz bytes; the server normally stores those as uploads and
sends names) or from the job's tenant's inputs, `<artifact_dir>/tenants/<tenant>/inputs/<name>`
(.npz or .csv): one tenant can never name another's recordings. Outputs: `<artifact_dir>/<job>/attempt-<n>/inverse_dynamics/<index>_<stem>.npz` (see
runner.save_outputs): each attempt writes its own folder, each file is written to a temporary
name and renamed into place, and the folder is registered after every trial with a fenced write
(publish.checkpoint, step = frames done), so a stale attempt can neither overwrite a newer one's
files nor register its own. A trial the library rejects fails the job with the trial and input
named (JobError: no retry).
"""

from __future__ import annotations

import os
from pathlib import Path

from wildrobot.specs import InverseDynamicsSpec

from . import HandlerResult, JobContext, JobError

MAX_JOB_FRAMES = 1_000_000


def _load(spec: InverseDynamicsSpec, inputs_dir: Path, index: int, joint_names, foot_names):
    from wildrobot.envs.dynamics import trial as trial_io

    if spec.trials_npz:
        return f"trial{index:04d}", trial_io.load_npz(
            spec.trials_npz[index], field=f"trials_npz[{index}]"
        )
    name = spec.trial_names[index]
    root = inputs_dir.resolve()
    path = (root / name).resolve()
    if root not in path.parents or not path.is_file():
        raise trial_io.TrialError("trial_names", f"{name!r} is not a file among your inputs")
    if path.suffix == ".csv":
        return path.stem, trial_io.load_csv(path, joint_names, foot_names)
    return path.stem, trial_io.load_npz(path)


def run(context: JobContext, spec: InverseDynamicsSpec) -> HandlerResult:
    from wildrobot.envs.dynamics import Config, TrialError
    from wildrobot.envs.dynamics.runner import run_trial, save_outputs
    from wildrobot.envs.dynamics.trial import Limits
    from wildrobot.envs.dynamics.wildrobot import dynamics_model

    model = dynamics_model()
    joint_names = [model.mj_model.joint(j).name for j in range(1, model.mj_model.njnt)]
    config = Config(
        smooth_window=spec.smooth_window,
        smooth_forces=spec.smooth_forces,
        cop_threshold=spec.cop_threshold,
    )
    out_dir = context.run_dir / "inverse_dynamics"  # run_dir is this attempt's own folder
    out_dir.mkdir(parents=True, exist_ok=True)
    from wildrobot.tenant_files import tenant_inputs

    from .. import layout

    inputs_dir = Path()
    if spec.trial_names:
        try:
            inputs_dir = tenant_inputs(layout.artifact_root(context.run_dir), context.tenant)
        except ValueError as exc:
            raise JobError(f"trial inputs: {exc}") from None
    num_trials = len(spec.trials_npz) or len(spec.trial_names)
    frames = 0
    for index in range(num_trials):
        if context.should_stop():
            return HandlerResult(final_step=frames, stopped=True)
        try:
            stem, trial = _load(spec, inputs_dir, index, joint_names, model.foot_names)
            outputs = run_trial(
                model,
                trial,
                config,
                Limits(max_frames=MAX_JOB_FRAMES),
                dtype="float64" if spec.float64 else "float32",
            )
        except TrialError as exc:
            raise JobError(f"trial {index}: {exc}") from None
        target = out_dir / f"{index:04d}_{stem}.npz"
        partial = out_dir / f".{target.name}.partial"
        with partial.open("wb") as handle:
            save_outputs(outputs, handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(partial, target)
        frames += trial.num_frames
        context.publish.checkpoint(frames, out_dir)  # fenced: a stale attempt is refused here
        context.publish.metrics(frames, {"trials_done": index + 1, "frames_done": frames})
        context.publish.log("info", f"trial {index} ({trial.num_frames} frames) -> {target.name}")
    return HandlerResult(final_step=frames, stopped=False)
