"""Imports MuJoCo's MJX without the lines it prints about its optional GPU backend.

`mujoco.mjx` tries to import NVIDIA Warp on import and prints "Failed to import warp: ..." and
"Failed to import mujoco_warp: ..." to stdout when it is absent, which it is on every machine
this project targets (MJX's JAX backend is the one used). Users read them as errors, so the
packages that use MJX (wildrobot.envs, wildrobot.workers.training) import it through here first:
those two lines are dropped, anything else MJX prints still shows.
"""

from __future__ import annotations

import contextlib
import io
import sys

_WARP_LINES = ("Failed to import warp:", "Failed to import mujoco_warp:")


def import_mjx() -> None:
    """Imports mujoco.mjx once, dropping its Warp-absent lines from stdout."""
    if "mujoco.mjx" in sys.modules:
        return
    captured = io.StringIO()
    with contextlib.redirect_stdout(captured):
        import mujoco.mjx  # noqa: F401
    for line in captured.getvalue().splitlines(keepends=True):
        if not line.startswith(_WARP_LINES):
            sys.stdout.write(line)
