"""Headless Chromium for the browser test: Debian's chromium driven through its chromedriver.

Both paths are given to Selenium, so Selenium Manager never runs (nothing is downloaded).
`scripts/setup --browser` (which scripts/test and .ci/run use) installs the two packages.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import REPO_ROOT

# Screenshots land here (pass or fail); WILDROBOT_TEST_ARTIFACTS overrides.
ARTIFACTS = Path(os.environ.get("WILDROBOT_TEST_ARTIFACTS", REPO_ROOT / ".test-artifacts"))
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


def until(what: str, check: Callable[[], Any], timeout: float = 60) -> Any:
    """Polls `check` until it returns something truthy (exceptions count as not yet)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            value = check()
        except Exception:  # noqa: BLE001 - elements come and go while the page updates
            value = None
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.2)


def sign_in(driver: Any, base_url: str, token: str) -> None:
    """Opens the dashboard and signs in through its dialog."""
    driver.get(base_url + "/")
    until("sign-in dialog", lambda: driver.find_element("id", "login"))
    driver.find_element("id", "token").send_keys(token)
    driver.find_element("id", "login-submit").click()
    until("signed in", lambda: driver.find_element("id", "who").text)
