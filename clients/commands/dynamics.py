"""`id TRIAL.npz|TRIAL.csv -o torques.npz`: the InverseDynamics RPC on one trial file."""

from __future__ import annotations

import argparse

import numpy as np

from ..parsing import UsageError
from .base import Command, Context


def _configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "trial", metavar="TRIAL", help="trial file (.npz or .csv; see docs/inverse_dynamics.md)"
    )
    parser.add_argument(
        "-o", "--out", required=True, metavar="OUT.npz", help="where to write outputs"
    )
    parser.add_argument(
        "--smooth",
        type=int,
        default=None,
        metavar="N",
        help="moving-average window on the kinematics (odd samples)",
    )
    parser.add_argument(
        "--cop-threshold",
        type=float,
        default=None,
        metavar="N",
        help="normal force below which a foot's COP is NaN",
    )


def _load(path: str):
    """The trial as its file declares it: unknown arrays/columns rejected, names kept."""
    from wildrobot.dynamics_inputs import TrialError, load_csv, load_npz

    try:
        return load_csv(path) if path.lower().endswith(".csv") else load_npz(path)
    except TrialError as exc:
        raise UsageError(f"{path}: {exc}") from None


def _run(ctx: Context, args: argparse.Namespace) -> int:
    from wildrobot.dynamics_inputs import TrialError

    trial = _load(args.trial)
    try:
        result = ctx.client.inverse_dynamics(
            trial.qpos,
            trial.grf,
            trial.cop,
            rate_hz=trial.rate_hz,
            free_moment=trial.free_moment,
            qvel=trial.qvel,
            qacc=trial.qacc,
            smooth_window=args.smooth,
            cop_threshold=args.cop_threshold,
            foot_names=trial.foot_names,
            joint_names=trial.joint_names,
        )
    except TrialError as exc:
        raise UsageError(str(exc)) from None
    result.save_npz(args.out)
    torque = result["joint_torque"][result["valid"]]
    summary = {
        "frames": int(result["joint_torque"].shape[0]),
        "out": args.out,
        "max_abs_torque_nm": float(np.abs(torque).max()) if torque.size else 0.0,
        "max_abs_residual_force_n": float(np.abs(result["residual_force"][result["valid"]]).max())
        if torque.size
        else 0.0,
        "cop_outside_frames": result.cop_outside_frames,
    }
    if ctx.json:
        ctx.print_json(summary)
    else:
        ctx.out.print(
            f"{summary['frames']} frames -> {args.out} (max |torque| "
            f"{summary['max_abs_torque_nm']:.3f} N m, max |root residual| "
            f"{summary['max_abs_residual_force_n']:.3f} N)"
        )
    if result.cop_outside_frames:
        ctx.err.print(
            f"warning: {result.cop_outside_frames} frames have a COP outside the foot's support "
            "(see cop_outside in the output; check units, origin and foot order)"
        )
    return 0


COMMAND = Command(
    "id", "inverse dynamics of one trial file (InverseDynamics RPC)", _configure, _run
)
