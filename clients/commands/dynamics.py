"""`id TRIAL.npz|TRIAL.csv -o torques.npz`: the InverseDynamics RPC on one trial file."""

from __future__ import annotations

import argparse

import numpy as np

from wildrobot.clients.commands.base import Command, Context
from wildrobot.clients.parsing import UsageError


def _configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "trial", metavar="TRIAL", help="trial file (.npz; see docs/inverse_dynamics.md)"
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


def _run(ctx: Context, args: argparse.Namespace) -> int:
    try:
        with np.load(args.trial, allow_pickle=False) as npz:
            data = {k: npz[k] for k in npz.files}
    except (OSError, ValueError) as exc:
        raise UsageError(f"{args.trial}: not a readable .npz trial ({exc})") from None
    if "rate_hz" not in data:
        raise UsageError(f"{args.trial}: has no rate_hz array")
    result = ctx.client.inverse_dynamics(
        data.get("qpos"),
        data.get("grf"),
        data.get("cop"),
        rate_hz=float(np.asarray(data["rate_hz"]).ravel()[0]),
        free_moment=data.get("free_moment"),
        qvel=data.get("qvel"),
        qacc=data.get("qacc"),
        smooth_window=args.smooth,
        cop_threshold=args.cop_threshold,
    )
    result.save_npz(args.out)
    torque = result["joint_torque"][result["valid"]]
    summary = {
        "frames": int(result["joint_torque"].shape[0]),
        "out": args.out,
        "max_abs_torque_nm": float(np.abs(torque).max()) if torque.size else 0.0,
        "max_abs_residual_force_n": float(np.abs(result["residual_force"][result["valid"]]).max())
        if torque.size
        else 0.0,
    }
    if ctx.json:
        ctx.print_json(summary)
    else:
        ctx.out.print(
            f"{summary['frames']} frames -> {args.out} (max |torque| "
            f"{summary['max_abs_torque_nm']:.3f} N m, max |root residual| "
            f"{summary['max_abs_residual_force_n']:.3f} N)"
        )
    return 0


COMMAND = Command(
    "id", "inverse dynamics of one trial file (InverseDynamics RPC)", _configure, _run
)
