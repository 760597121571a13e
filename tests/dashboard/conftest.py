from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.dashboard.browser import ARTIFACTS, make_driver, require_chromium
from tests.live_service import service, worker_factory  # noqa: F401 - fixtures


@pytest.fixture
def driver(tmp_path: Path) -> Iterator[Any]:
    """Headless Chromium; its last screen is saved as dashboard-last.png, pass or fail."""
    require_chromium()
    browser = make_driver(tmp_path / "chromium-profile")
    browser.set_page_load_timeout(30)
    yield browser
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    browser.save_screenshot(str(ARTIFACTS / "dashboard-last.png"))
    browser.quit()
