"""`submit <kind> [options] [--set key=value ...] [--name ...] [--watch] [--dry-run]`.

Only what the user typed goes on the wire; the server fills in the spec's defaults (shown in
`--help` from wildrobot.specs, never repeated here). A new job kind is one `SubmitKind` entry.
"""

from __future__ import annotations

import argparse
import dataclasses
import typing
from collections.abc import Callable
from typing import Any

from pydantic import BaseModel

from wildrobot import presets
from wildrobot.specs import (
    MAML_TASK_ALIASES,
    AmpSpec,
    InverseDynamicsSpec,
    MamlSpec,
    PpoSpec,
    TtaEvalSpec,
)

from .. import render
from ..parsing import UsageError, coerce_field, parse_assignments
from ..sdk import Client
from ..types import SubmitResult
from .base import Command, Context, connection_options
from .watch import follow


@dataclasses.dataclass(frozen=True)
class SubmitKind:
    name: str
    spec_cls: type[BaseModel]
    flags: dict[str, str]  # --flag -> spec field (the common ones; --set reaches every field)
    submit: Callable[..., SubmitResult]  # bound to a Client: submit(client, name=..., **fields)
    presets: tuple[str, ...] = ()  # named recipes (wildrobot.presets) for --preset
    checkpoint: bool = False  # --checkpoint JOB[:STEP] (required) sets checkpoint_job_id/_step
    trials: bool = False  # TRIAL... positional local trial files (uploaded by the SDK)


def _submit_ppo(client: Client, **kwargs: Any) -> SubmitResult:
    return client.submit_ppo(**kwargs)


def _submit_amp(client: Client, **kwargs: Any) -> SubmitResult:
    return client.submit_amp(**kwargs)


def _submit_tta(client: Client, **kwargs: Any) -> SubmitResult:
    return client.submit_tta(**kwargs)


def _submit_inverse_dynamics(client: Client, **kwargs: Any) -> SubmitResult:
    if "trials_npz" in kwargs:
        raise UsageError("trials_npz: give trial files as arguments (TRIAL...) instead")
    return client.submit_inverse_dynamics(**kwargs)


def _submit_maml(client: Client, **kwargs: Any) -> SubmitResult:
    return client.submit_maml(**kwargs)


def parse_checkpoint(text: str) -> dict[str, Any]:
    """`JOB` (its latest checkpoint) or `JOB:STEP` -> checkpoint_job_id (and checkpoint_step)."""
    job_id, _, step = text.strip().partition(":")
    fields: dict[str, Any] = {"checkpoint_job_id": job_id}
    if step and step != "latest":
        try:
            fields["checkpoint_step"] = coerce_field(TtaEvalSpec, "checkpoint_step", step)
        except UsageError:
            raise UsageError(f"--checkpoint {text!r}: STEP must be an env step count") from None
    return fields


PPO_FLAGS = {
    "--task": "task",
    "--num-envs": "num_envs",
    "--timesteps": "num_timesteps",
    "--learning-rate": "learning_rate",
    "--lr-schedule": "learning_rate_schedule",
    "--episode-length": "episode_length",
    "--seed": "seed",
}
# AMP is PPO plus these (every PPO flag and --preset work for `submit amp` too).
AMP_FLAGS = {
    "--motions": "motions",
    "--task-weight": "task_weight",
    "--style-weight": "style_weight",
    "--disc-loss": "disc_loss",
    "--disc-learning-rate": "disc_learning_rate",
    "--disc-hidden-sizes": "disc_hidden_sizes",
    "--grad-penalty": "grad_penalty",
    "--disc-noise-target": "disc_noise_target",
    "--window": "window",
}

KINDS = (
    SubmitKind("ppo", PpoSpec, PPO_FLAGS, _submit_ppo, tuple(presets.PRESETS)),
    SubmitKind("amp", AmpSpec, {**PPO_FLAGS, **AMP_FLAGS}, _submit_amp, tuple(presets.PRESETS)),
    SubmitKind(
        "tta",
        TtaEvalSpec,
        {
            "--methods": "methods",
            "--shifts": "shifts",
            "--severities": "severities",
            "--episodes": "episodes",
            "--episode-length": "episode_length",
            "--seeds": "seeds",
            "--mode": "mode",
            "--adapt-steps": "adapt_steps",
            "--adapt-episodes": "adapt_episodes",
            "--maml-rate": "maml_rate",
        },
        _submit_tta,
        checkpoint=True,
    ),
    SubmitKind(
        "inverse-dynamics",
        InverseDynamicsSpec,
        {
            "--trial-names": "trial_names",
            "--smooth-window": "smooth_window",
            "--cop-threshold": "cop_threshold",
        },
        _submit_inverse_dynamics,
        trials=True,
    ),
    SubmitKind(
        "maml",
        MamlSpec,
        {
            "--task": "task",
            "--iterations": "num_iterations",
            "--tasks-per-batch": "tasks_per_batch",
            "--episodes-per-task": "episodes_per_task",
            "--episode-length": "episode_length",
            "--inner-steps": "inner_steps",
            "--inner-lr": "inner_lr",
            "--first-order": "first_order",
            "--outer-learning-rate": "outer_learning_rate",
            "--seed": "seed",
        },
        _submit_maml,
    ),
)


def _field_help(spec_cls: type[BaseModel], field: str) -> str:
    info = spec_cls.model_fields[field]
    default = info.get_default(call_default_factory=True)
    text = f"default {default}"
    if field == "task":
        allowed = typing.get_args(info.annotation)
        short = [alias for alias, task in MAML_TASK_ALIASES.items() if task in allowed]
        text += "; short forms: " + ", ".join(short)
    if field == "trial_names":
        text = "comma-separated names of trial files you uploaded before (`upload`)"
    if field == "motions":
        text += "; comma-separated shipped clip names or .npz names among your uploads"
    return text


def _configure(parser: argparse.ArgumentParser) -> None:
    kinds = parser.add_subparsers(dest="kind", metavar="KIND", required=True)
    for kind in KINDS:
        sub = kinds.add_parser(
            kind.name,
            help=f"a {kind.name} job ({kind.spec_cls.__name__})",
            parents=[connection_options(suppress=True)],
        )
        sub.set_defaults(submit_kind=kind)
        for flag, field in kind.flags.items():
            sub.add_argument(
                flag,
                dest=f"field_{field}",
                metavar=field.upper(),
                help=_field_help(kind.spec_cls, field),
            )
        if kind.checkpoint:
            sub.add_argument(
                "--checkpoint",
                required=True,
                metavar="JOB[:STEP]",
                help="a ppo, amp or maml job of yours, at STEP (default: its latest checkpoint)",
            )
        if kind.trials:
            sub.add_argument(
                "trials",
                nargs="*",
                metavar="TRIAL",
                help="local .npz/.csv trial files (each at most 16 MiB; checked here, then "
                "uploaded into your inputs as trials/sha256-<digest>/<file name>)",
            )
        if kind.presets:
            sub.add_argument(
                "--preset",
                metavar="NAME",
                help="a named recipe for the fields you leave out: "
                + ", ".join(kind.presets)
                + " (wildrobot/presets.py)",
            )
        sub.add_argument(
            "--set",
            action="append",
            default=[],
            metavar="KEY=VALUE",
            help="any other spec field, or env_overrides.<name>=VALUE (repeatable)",
        )
        sub.add_argument("--name", default="", help="a name to find the job by")
        sub.add_argument("--request-id", help="idempotency key (default: a fresh one)")
        sub.add_argument(
            "--dry-run",
            action="store_true",
            help="only validate the spec on the server; nothing is queued",
        )
        sub.add_argument("--watch", action="store_true", help="follow the job until it ends")
        sub.add_argument("--json", action="store_true", help="print the job as JSON")


def spec_fields(kind: SubmitKind, args: argparse.Namespace) -> dict[str, Any]:
    """The fields the user set, with flags and --set merged (a field set twice is an error)."""
    fields = parse_assignments(kind.spec_cls, args.set)
    if kind.checkpoint:
        for key, value in parse_checkpoint(args.checkpoint).items():
            if key in fields:
                raise UsageError(f"{key} given twice (--checkpoint and --set {key}=...)")
            fields[key] = value
    if kind.trials:
        if not args.trials and "trial_names" not in fields and args.field_trial_names is None:
            raise UsageError("give trial files (TRIAL...) or --trial-names of uploaded ones")
        fields["trials"] = list(args.trials)
    for flag, field in kind.flags.items():
        raw = getattr(args, f"field_{field}")
        if raw is None:
            continue
        if field in fields:
            raise UsageError(f"{field} given twice ({flag} and --set {field}=...)")
        fields[field] = coerce_field(kind.spec_cls, field, raw)
    return fields


def _run(ctx: Context, args: argparse.Namespace) -> int:
    kind: SubmitKind = args.submit_kind
    if args.dry_run and args.watch:
        raise UsageError("--dry-run and --watch exclude each other")
    fields = spec_fields(kind, args)
    if getattr(args, "preset", None):
        fields["preset"] = args.preset
    result = kind.submit(
        ctx.client, name=args.name, request_id=args.request_id, validate_only=args.dry_run, **fields
    )
    job = result.job
    if ctx.json:
        ctx.print_json(result)
    elif args.dry_run:
        spec = ", ".join(f"{k}={v}" for k, v in job.spec.items())
        ctx.out.print(f"[green]valid[/] {kind.name} spec" + (f": {spec}" if spec else ""))
    else:
        verb = "submitted" if result.created else "already submitted (same request id)"
        ctx.out.print(f"{verb} {job.job_id} {render.state_text(job.state)}")
    if args.watch:
        return follow(ctx, job.job_id)
    return 0


COMMAND = Command("submit", "submit a job", _configure, _run, reads=False)
