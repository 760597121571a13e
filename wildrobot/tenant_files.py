"""Where a tenant's files live in the artifact store (shared by the server and the workers),
and which file an AMP spec's motion name means."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

_TENANT = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")
MOTION_SUFFIX = ".npz"


def tenant_inputs(artifact_dir: Path, tenant: str) -> Path:
    """`<artifact_dir>/tenants/<tenant>/inputs`; ValueError for a name that cannot be a folder."""
    if not _TENANT.match(tenant) or ".." in tenant:
        raise ValueError(f"tenant {tenant[:64]!r} cannot hold files")
    return Path(artifact_dir).resolve() / "tenants" / tenant / "inputs"


def shipped_clips_dir() -> Path:
    """envs/motions/clips, found without importing wildrobot.envs (whose import loads MJX)."""
    spec = importlib.util.find_spec("wildrobot.envs")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("wildrobot.envs is not installed")
    return Path(next(iter(spec.submodule_search_locations))) / "motions" / "clips"


def shipped_clip_names() -> tuple[str, ...]:
    """The names of the shipped reference clips (docs/motions.md), sorted."""
    return tuple(sorted(p.stem for p in shipped_clips_dir().glob(f"*{MOTION_SUFFIX}")))


def resolve_motion(artifact_dir: Path | None, tenant: str, name: str) -> Path:
    """The file an AmpSpec motion name means: the shipped clip `<name>` (clips/<name>.npz), or
    else the .npz `<name>` among the tenant's inputs (uploaded with UploadTrial; never a link,
    never outside the inputs). `artifact_dir` None: shipped clips only. ValueError naming the
    motion when neither exists; nothing here reads the file (load_motion checks its contents).
    """
    if "/" not in name and name in shipped_clip_names():
        return shipped_clips_dir() / f"{name}{MOTION_SUFFIX}"
    hint = f"not a shipped clip ({', '.join(shipped_clip_names())})"
    if not name.endswith(MOTION_SUFFIX):
        raise ValueError(f"{name[:200]!r} is {hint}, nor an uploaded {MOTION_SUFFIX} file name")
    if artifact_dir is not None:
        root = tenant_inputs(artifact_dir, tenant)
        path = root / name
        if (
            path.resolve().is_relative_to(root)
            and ".." not in name.split("/")
            and not path.is_symlink()
            and path.is_file()
        ):
            return path
    upload_hint = "upload it with `wildrobot-client upload FILE --name NAME.npz`"
    raise ValueError(
        f"{name[:200]!r} is {hint}, nor an .npz among your uploaded inputs ({upload_hint})"
    )
