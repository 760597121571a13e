"""Importing the envs and the trainer prints nothing a user could take for an error."""

from __future__ import annotations

import subprocess
import sys
import xml.etree.ElementTree as ElementTree

import pytest

from wildrobot.envs.wildrobot import constants


@pytest.mark.parametrize(
    "module", ["wildrobot.envs.registry", "wildrobot.workers.training.ppo", "brax.envs.base"]
)
def test_imports_print_no_warp_failures(module: str) -> None:
    # Brax imported on its own still prints them (so this test notices if MJX stops, or
    # prints from elsewhere); our packages import MJX quietly before anything else does.
    out = subprocess.run(
        [sys.executable, "-c", f"import {module}"],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    printed = out.stdout + out.stderr
    if module.startswith("wildrobot"):
        assert "Failed to import" not in printed, printed
    else:
        assert "Failed to import warp" in printed


def test_mjcf_has_no_stray_text() -> None:
    root = ElementTree.parse(constants.XML_PATH).getroot()
    stray = [
        (element.tag, text.strip()[:60])
        for element in root.iter()
        for text in (element.text, element.tail)
        if text and text.strip()
    ]
    assert stray == []
