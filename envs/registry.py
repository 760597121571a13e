"""Task registry: `make(name, config_overrides=...)` builds a registered Brax env.

Names match `wildrobot.specs.TASKS`. Each entry names its module and class, imported on first
use: a task module's import cost is paid only by the tasks that are made.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any

from brax.envs.base import Env

# name -> (module, class); the class is called as cls(config_overrides=...).
_ENVS: dict[str, tuple[str, str]] = {
    "WildRobotStand": ("wildrobot.envs.wildrobot.stand", "WildRobotStand"),
    "WildRobotWalk": ("wildrobot.envs.wildrobot.walk", "WildRobotWalk"),
    "PointMass": ("wildrobot.envs.point_mass", "PointMass"),
}


def registered_envs() -> tuple[str, ...]:
    return tuple(_ENVS)


def get_factory(name: str) -> Callable[..., Env]:
    if name not in _ENVS:
        raise KeyError(f"unknown env {name!r}; registered: {', '.join(_ENVS)}")
    module, attribute = _ENVS[name]
    return getattr(importlib.import_module(module), attribute)


def make(name: str, config_overrides: Mapping[str, Any] | None = None) -> Env:
    """A fresh env; config_overrides maps dotted config keys to values ("push.enable": False)."""
    return get_factory(name)(config_overrides=dict(config_overrides or {}))
