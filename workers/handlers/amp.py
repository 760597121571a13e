"""The `amp` job: train_amp (PPO + adversarial motion prior) on the spec's reference motions.

Each motion name is a shipped clip (`envs/motions/clips/<name>.npz`) or an .npz among the job's
tenant's uploaded inputs (`<artifact_dir>/tenants/<tenant>/inputs/<name>`; one tenant never sees
another's), resolved by wildrobot.tenant_files.resolve_motion as the server did at submit, and
loaded with envs.motions.format.load_motion before training starts: a missing or malformed file
fails the job (JobError, not retried) with the motion named. The rest is the ppo handler's:
hooks that publish through the fenced context, resume from the attempt's last registered
checkpoint (context.resume_from), and the final checkpoint's exports.
"""

from __future__ import annotations

import zipfile
from typing import TYPE_CHECKING

from wildrobot import tenant_files
from wildrobot.specs import AmpSpec

from .. import layout
from . import HandlerResult, JobContext, JobError
from .ppo import JobHooks, finish

if TYPE_CHECKING:  # envs.motions imports MuJoCo: only the runner process loads it
    from wildrobot.envs.motions.format import Motion

# What np.load and load_motion raise on a file that is not a valid clip.
_BAD_CLIP = (ValueError, TypeError, KeyError, OSError, EOFError, zipfile.BadZipFile)


def load_motions(context: JobContext, spec: AmpSpec) -> list[Motion]:
    """The spec's motions, resolved and validated, in the spec's order; JobError naming the
    first one that is missing or not a valid clip."""
    from wildrobot.envs.motions.format import load_motion

    artifact_dir = layout.artifact_root(context.run_dir)
    motions = []
    for index, name in enumerate(spec.motions):
        try:
            path = tenant_files.resolve_motion(artifact_dir, context.tenant, name)
        except ValueError as exc:
            raise JobError(f"motions[{index}]: {exc}") from None
        try:
            motions.append(load_motion(path))
        except _BAD_CLIP as exc:
            raise JobError(
                f"motions[{index}]: {name!r} is not a valid motion clip: {exc}"
            ) from None
    return motions


def run(context: JobContext, spec: AmpSpec) -> HandlerResult:
    if spec.num_hosts > 1:  # the server refuses these; a queued one from elsewhere fails here
        raise JobError("num_hosts: amp jobs run on one host")
    motions = load_motions(context, spec)
    names = ", ".join(f"{m.name} ({m.num_frames} frames)" for m in motions)
    context.publish.log("info", f"reference motions: {names}")
    from ..amp.train import train_amp  # JAX: only in the runner process

    result = train_amp(
        spec, context.run_dir, JobHooks(context), motions, resume_from=context.resume_from
    )
    return finish(context, spec, result)
