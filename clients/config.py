"""Where the client finds the server address and token: flags, then environment variables, then
a config file (`$WILDROBOT_CONFIG`, else `$XDG_CONFIG_HOME/wildrobot/client.toml`, else
`~/.config/wildrobot/client.toml`). The file looks like

    address = "train.lab.example:50051"
    token = "..."
    tls = true                  # optional
    ca_file = "/path/ca.pem"    # optional, with tls
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
from collections.abc import Mapping
from pathlib import Path

DEFAULT_ADDRESS = "localhost:50051"
ADDRESS_ENV = "WILDROBOT_ADDRESS"
TOKEN_ENV = "WILDROBOT_TOKEN"
CONFIG_ENV = "WILDROBOT_CONFIG"


class ConfigError(ValueError):
    """The config file exists but cannot be read; the message names it."""


@dataclasses.dataclass(frozen=True)
class ClientConfig:
    address: str
    token: str | None
    tls: bool = False
    ca_file: str | None = None
    source: str = "default"  # where the address came from, for error messages


def config_path(environ: Mapping[str, str] | None = None) -> Path:
    environ = os.environ if environ is None else environ
    if environ.get(CONFIG_ENV):
        return Path(environ[CONFIG_ENV]).expanduser()
    base = environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "wildrobot" / "client.toml"


def load_file(path: Path) -> dict:
    if not path.is_file():
        return {}
    try:
        return tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"cannot read the client config {path}: {exc}") from None


def resolve(
    address: str | None = None,
    token: str | None = None,
    *,
    tls: bool | None = None,
    environ: Mapping[str, str] | None = None,
) -> ClientConfig:
    """Each setting from the first of: the argument, the environment, the config file."""
    environ = os.environ if environ is None else environ
    path = config_path(environ)
    file = load_file(path)
    if address:
        source = "--address"
    elif environ.get(ADDRESS_ENV):
        address, source = environ[ADDRESS_ENV], ADDRESS_ENV
    elif file.get("address"):
        address, source = str(file["address"]), str(path)
    else:
        address, source = DEFAULT_ADDRESS, "default"
    token = token or environ.get(TOKEN_ENV) or file.get("token") or None
    return ClientConfig(
        address=address,
        token=str(token) if token else None,
        tls=bool(file.get("tls", False)) if tls is None else tls,
        ca_file=file.get("ca_file"),
        source=source,
    )
