"""Headless Chromium for the browser test: Debian's chromium driven through its chromedriver.

Both paths are given to Selenium, so Selenium Manager never runs (nothing is downloaded).
`scripts/setup --browser` (which scripts/test and .ci/run use) installs the two packages.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

CHROMIUM = os.environ.get("WILDROBOT_CHROMIUM", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("WILDROBOT_CHROMEDRIVER", "/usr/bin/chromedriver")
FLAGS = (
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--window-size=1400,1000",
)


def require_chromium() -> None:
    """Skips without chromium on a developer machine; fails in CI, where setup installs it."""
    missing = [p for p in (CHROMIUM, CHROMEDRIVER) if shutil.which(p) is None]
    if missing:
        message = f"{', '.join(missing)} not installed: run scripts/setup --browser"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)


def make_driver(profile_dir: Path):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={profile_dir}")
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return webdriver.Chrome(options=options, service=Service(executable_path=CHROMEDRIVER))
