"""Where the files made from a checkpoint live: `<checkpoint>/exports/<name>`.

Shared by the worker (writes them at the end of a job), the server (DownloadArtifact) and the
client (on-demand export next to a downloaded checkpoint). Keeping them inside the checkpoint's
directory ties each file to the registered checkpoint it was made from.
"""

from __future__ import annotations

import enum
from pathlib import Path

EXPORTS_DIR = "exports"


class ArtifactKind(enum.StrEnum):
    ONNX = "onnx"
    VIDEO = "video"


FILE_NAMES = {ArtifactKind.ONNX: "policy.onnx", ArtifactKind.VIDEO: "rollout.mp4"}


def artifact_path(checkpoint_dir: Path, kind: ArtifactKind | str) -> Path:
    return Path(checkpoint_dir) / EXPORTS_DIR / FILE_NAMES[ArtifactKind(kind)]
