"""The observation layout of a task's env: named parts and their slices, in the env's order.

The exported ONNX model records it so a robot-side program can build the same vector. Read at
export time from where the env declares it: an env's `observation_parts` attribute, else the
WildRobot envs' `OBSERVATION_LAYOUT` ((name, size), ... in the order `_observation`
concatenates them), else PointMass's parts. A layout that does not add up to the env's
observation size raises, so an env change cannot ship a mislabelled model.
"""

from __future__ import annotations

import dataclasses
from typing import Any


class LayoutError(ValueError):
    """The known parts do not add up to the env's observation size."""


@dataclasses.dataclass(frozen=True)
class ObservationPart:
    name: str
    start: int
    stop: int

    @property
    def size(self) -> int:
        return self.stop - self.start

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "start": self.start, "stop": self.stop}


def _declared_parts(env: Any) -> list[tuple[str, int]]:
    declared = getattr(env, "observation_parts", None)
    if declared is not None:
        return [(str(name), int(size)) for name, size in declared]
    from wildrobot.envs.point_mass import PointMass
    from wildrobot.envs.wildrobot.base import OBSERVATION_LAYOUT, WildRobotEnv

    if isinstance(env, WildRobotEnv):
        return [(str(name), int(size)) for name, size in OBSERVATION_LAYOUT]
    if isinstance(env, PointMass):
        return [("position", 2), ("velocity", 2), ("target", 2)]
    raise LayoutError(f"no observation layout known for {type(env).__name__}")


def observation_layout(env: Any) -> list[ObservationPart]:
    """The env's observation parts with [start, stop) slices; raises LayoutError on a mismatch."""
    parts, start = [], 0
    for name, size in _declared_parts(env):
        parts.append(ObservationPart(name, start, start + size))
        start += size
    if start != int(env.observation_size):
        raise LayoutError(
            f"{type(env).__name__}: named parts {[(p.name, p.size) for p in parts]} cover "
            f"{start} values, the observation has {env.observation_size}; "
            "update workers/export/observation_layout.py (or give the env observation_parts)"
        )
    return parts
