"""Client tests never read the developer's own client settings."""

from __future__ import annotations

import pytest

from wildrobot.clients import config


@pytest.fixture(autouse=True)
def _isolated_client_config(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    monkeypatch.delenv(config.ADDRESS_ENV, raising=False)
    monkeypatch.delenv(config.TOKEN_ENV, raising=False)
    monkeypatch.setenv(config.CONFIG_ENV, str(tmp_path / "no-client.toml"))
