"""Every task's settings: defaults, types and bounds, the contract behind `env_overrides`.

The envs build their config from `defaults(task)`, and `PpoSpec` checks `env_overrides` with
`validate_overrides` wherever a spec is built (SDK, CLI, server at submit and dry-run, worker),
so a misspelt key, a wrong type or a value out of bounds is refused before anything is queued,
with the key and the rule in the message. This module is plain Python (no JAX), so the client
can import it.

A setting's type is its default's: bool, int, float, a (min, max) range of two ints or two
floats, or a string from a fixed list of choices (`impl`: the physics backend, "jax" or "warp").
A range is overridden as a whole, by a two-element list (`[3, 8]`, or `3,8` on the command line).
"""

from __future__ import annotations

import dataclasses
import difflib
import math
from collections.abc import Mapping
from typing import Any

Value = bool | int | float | str | tuple[int, int] | tuple[float, float]


@dataclasses.dataclass(frozen=True)
class Setting:
    default: Value
    lo: float
    hi: float
    choices: tuple[str, ...] = ()  # a string setting's allowed values

    def check(self, key: str, value: Any) -> Value:
        """`value` as this setting's type; raises ValueError naming `key` and the rule."""
        if isinstance(self.default, str):
            if value not in self.choices:
                raise ValueError(f"{key}: must be one of {list(self.choices)}, got {value!r}")
            return value
        if isinstance(self.default, bool):
            if not isinstance(value, bool):
                raise ValueError(f"{key}: must be true or false, got {value!r}")
            return value
        if isinstance(self.default, tuple):
            if not isinstance(value, (list, tuple)) or len(value) != 2:
                raise ValueError(
                    f"{key}: must be a range [min, max] in [{self.lo:g}, {self.hi:g}], "
                    f"got {value!r}"
                )
            low, high = (self._number(key, item, self.default[0]) for item in value)
            if low > high:
                raise ValueError(f"{key}: min {low:g} is above max {high:g}")
            return (low, high)
        return self._number(key, value, self.default)

    def _number(self, key: str, value: Any, like: Value) -> int | float:
        integral = isinstance(like, int)
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ValueError(
                f"{key}: must be {'an integer' if integral else 'a number'}, got {value!r}"
            )
        if not math.isfinite(value):
            raise ValueError(f"{key}: must be finite, got {value!r}")
        if integral:
            if value != int(value):
                raise ValueError(f"{key}: must be an integer, got {value!r}")
            value = int(value)
        else:
            value = float(value)
        if not self.lo <= value <= self.hi:
            raise ValueError(f"{key}: {value:g} is outside [{self.lo:g}, {self.hi:g}]")
        return value


def _weights(**weights: float) -> dict[str, Setting]:
    return {f"reward_weights.{name}": Setting(w, -1000.0, 1000.0) for name, w in weights.items()}


# Shared by the WildRobot tasks; facts behind the defaults in shared/WILDROBOT.md and the envs.
_WILDROBOT = {
    "ctrl_dt": Setting(0.02, 0.005, 0.1),  # s: 50 Hz control
    "sim_dt": Setting(0.004, 0.0005, 0.02),  # s: 5 physics substeps per control step
    # MJX's physics backend: "jax" (any JAX device) or "warp" (MuJoCo Warp: an NVIDIA GPU and the
    # cuda extra, WILDROBOT_CUDA=1 scripts/setup; envs/wildrobot/backend.py says when it runs).
    "impl": Setting("jax", 0, 0, choices=("jax", "warp")),
    "action_scale": Setting(0.3, 0.0, 1.5),  # rad per unit action
    "action_filter_alpha": Setting(0.6, 0.01, 1.0),  # 1.0: no low-pass filter
    "init.joint_noise": Setting(0.05, 0.0, 0.5),
    "init.base_vel_noise": Setting(0.1, 0.0, 2.0),
    "init.random_yaw": Setting(True, 0, 1),
    "termination.min_height": Setting(0.36, 0.0, 0.6),
    "termination.max_height": Setting(0.70, 0.3, 2.0),
    "termination.max_tilt": Setting(0.436, 0.05, math.pi),
    "noise.level": Setting(1.0, 0.0, 10.0),
    "noise.gravity": Setting(0.005, 0.0, 1.0),
    "noise.gyro": Setting(0.015, 0.0, 10.0),
    "noise.joint_pos": Setting(0.005, 0.0, 1.0),
    "noise.joint_vel": Setting(0.1, 0.0, 10.0),
    "push.enable": Setting(True, 0, 1),
    "push.magnitude": Setting((2.0, 5.0), 0.0, 100.0),  # N
    "push.duration_steps": Setting(6, 1, 500),
    "push.interval_steps": Setting((40, 250), 1, 100_000),
    "latency.action_substeps": Setting((4, 6), 0, 100),
    "latency.imu_steps": Setting((0.5, 1.0), 0.0, 1.0),
    "backlash": Setting((0.0, 0.0087), 0.0, 0.1),  # rad
    "foot_contact_height": Setting(0.004, 0.0, 0.05),
    "tracking_sigma": Setting(0.25, 1e-3, 10.0),
    "ang_tracking_sigma": Setting(0.5, 1e-3, 10.0),
    "base_height_target": Setting(0.46, 0.2, 0.7),
    "feet_air_time_threshold": Setting(0.2, 0.0, 2.0),
    "randomization.floor_friction": Setting((0.4, 1.0), 0.01, 5.0),
    "randomization.mass_scale": Setting((0.9, 1.1), 0.1, 5.0),
    "randomization.kp_scale": Setting((0.9, 1.1), 0.1, 5.0),
    "randomization.frictionloss_scale": Setting((0.8, 1.2), 0.0, 10.0),
    "randomization.joint_offset": Setting(0.03, 0.0, 0.2),  # rad
}

_STAND = {
    **_WILDROBOT,
    # Pushes often enough, and hard enough, that holding the home pose (zero action) falls in
    # most episodes (58% on the nominal model), while each one is survivable by a policy that
    # reacts: 4-8 N on the torso for 0.12 s, every 0.6-1.6 s (docs/environments.md).
    "push.magnitude": Setting((4.0, 8.0), 0.0, 100.0),
    "push.interval_steps": Setting((30, 80), 1, 100_000),
    **_weights(
        tracking_lin_vel=1.0,
        tracking_ang_vel=0.5,
        lin_vel_z=-0.5,
        ang_vel_xy=-0.05,
        orientation=-5.0,
        base_height=-50.0,
        joint_pose=-0.5,
        torques=-1e-3,
        action_rate=-0.01,
        alive=0.5,
        termination=-50.0,
    ),
}

_WALK = {
    **_WILDROBOT,
    # Commands are small (tenths of m/s): a narrower kernel makes standing still (0.3 m/s off)
    # earn 0.41 of the tracking reward instead of 0.70, so walking pays.
    "tracking_sigma": Setting(0.1, 1e-3, 10.0),
    "ang_tracking_sigma": Setting(0.25, 1e-3, 10.0),
    "command.vx": Setting((-0.3, 0.5), -2.0, 2.0),  # m/s
    "command.vy": Setting((-0.2, 0.2), -2.0, 2.0),  # m/s
    "command.yaw_rate": Setting((-1.0, 1.0), -5.0, 5.0),  # rad/s
    "command.resample_steps": Setting(250, 1, 100_000),
    "command.zero_probability": Setting(0.2, 0.0, 1.0),
    "gait.frequency": Setting((1.25, 1.75), 0.25, 5.0),  # Hz
    "gait.swing_height": Setting(0.04, 0.0, 0.2),  # m
    "feet_phase_sigma": Setting(0.01, 1e-4, 1.0),  # m^2
    **_weights(
        tracking_lin_vel=1.5,
        tracking_ang_vel=0.8,
        lin_vel_z=-0.5,
        ang_vel_xy=-0.05,
        orientation=-5.0,
        base_height=-20.0,
        torques=-1e-3,
        action_rate=-0.01,
        feet_air_time=2.0,
        feet_phase=1.0,
        feet_slip=-0.1,
        stand_still=-0.5,
        termination=-50.0,
    ),
}

_POINT_MASS = {
    "dt": Setting(0.05, 1e-3, 1.0),
    "force_scale": Setting(4.0, 0.0, 100.0),
    "damping": Setting(0.5, 0.0, 100.0),
    "box_half_width": Setting(2.0, 0.1, 100.0),
    "init_position_range": Setting(1.0, 0.0, 100.0),
    "target_range": Setting(0.5, 0.0, 100.0),
    # Test hook: rewards turn NaN after this many steps per env; -1 disables it.
    "nan_reward_after_steps": Setting(-1, -1, 10**9),
    **_weights(alive=1.0, distance=-1.0, action=-0.01),
}

SETTINGS: dict[str, dict[str, Setting]] = {
    "WildRobotStand": _STAND,
    "WildRobotWalk": _WALK,
    "PointMass": _POINT_MASS,
}


def defaults(task: str) -> dict[str, Any]:
    """The task's default config as a nested dict (ranges as tuples), fresh on every call."""
    nested: dict[str, Any] = {}
    for key, setting in SETTINGS[task].items():
        *parents, leaf = key.split(".")
        node = nested
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = setting.default
    return nested


def validate_overrides(task: str, overrides: Mapping[str, Any]) -> dict[str, Value]:
    """The overrides with values in their settings' types; raises ValueError naming the key.

    Checks each key and value, then the rules between settings (with defaults filled in).
    """
    settings = SETTINGS[task]
    checked: dict[str, Value] = {}
    for key, value in overrides.items():
        if key not in settings:
            close = difflib.get_close_matches(key, list(settings), n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise ValueError(f"{key}: not a setting of {task}{hint}")
        checked[key] = settings[key].check(key, value)
    merged = {key: checked.get(key, setting.default) for key, setting in settings.items()}
    if "ctrl_dt" in merged:
        _check_wildrobot_rules(merged)
    return checked


def num_substeps(task: str, overrides: Mapping[str, Any]) -> int:
    """Physics substeps per control step (1 for tasks without a physics timestep)."""
    settings = SETTINGS[task]
    if "sim_dt" not in settings:
        return 1
    ctrl_dt = overrides.get("ctrl_dt", settings["ctrl_dt"].default)
    sim_dt = overrides.get("sim_dt", settings["sim_dt"].default)
    return round(ctrl_dt / sim_dt)


def _check_wildrobot_rules(merged: Mapping[str, Any]) -> None:
    ctrl_dt, sim_dt = merged["ctrl_dt"], merged["sim_dt"]
    substeps = round(ctrl_dt / sim_dt)
    if substeps < 1 or abs(substeps * sim_dt - ctrl_dt) > 1e-9:
        raise ValueError(f"ctrl_dt: {ctrl_dt:g} is not a whole multiple of sim_dt {sim_dt:g}")
    delay = merged["latency.action_substeps"][1]
    if delay > 2 * substeps:
        raise ValueError(
            f"latency.action_substeps: {delay} substeps is more than two control steps "
            f"({2 * substeps} substeps at ctrl_dt {ctrl_dt:g}, sim_dt {sim_dt:g})"
        )
    if merged["termination.min_height"] >= merged["termination.max_height"]:
        raise ValueError("termination.min_height: must be below termination.max_height")
