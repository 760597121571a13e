"""The physics backend of the WildRobot envs (the `impl` setting): MJX's JAX implementation, or
MuJoCo Warp through MJX (`mjx.put_model(..., impl="warp")`, mujoco-mjx 3.17.0).

"jax" runs on any JAX device. "warp" needs the `mujoco_warp` package (the cuda extra,
`WILDROBOT_CUDA=1 scripts/setup`, pins mujoco-warp in lockstep with mujoco) and an NVIDIA GPU as
JAX's default backend: MuJoCo Warp also has a CPU path, but it is for debugging, not training.
`unavailable(impl)` says why an impl cannot run here (None when it can); building an env with an
impl that cannot run raises ValueError with that reason.

With "warp", MJX has no `com_vel` (the env's reset computes the first observation's body
velocities), so the reset runs a full `mjx.forward` instead: the same poses and velocities.
"""

from __future__ import annotations

import importlib.util

import jax
import mujoco
from mujoco import mjx

IMPLS = ("jax", "warp")


def unavailable(impl: str) -> str | None:
    """Why `impl` cannot run on this machine, or None when it can."""
    if impl not in IMPLS:
        return f"impl: must be one of {list(IMPLS)}, got {impl!r}"
    if impl == "jax":
        return None
    if importlib.util.find_spec("mujoco_warp") is None:
        return "impl: warp needs the mujoco-warp package (WILDROBOT_CUDA=1 scripts/setup)"
    if jax.default_backend() != "gpu":
        return f"impl: warp needs an NVIDIA GPU; JAX's backend here is {jax.default_backend()!r}"
    return None


def put(mj_model: mujoco.MjModel, impl: str) -> tuple[mjx.Model, mjx.Data]:
    """The device model and a data template for `impl`; ValueError if it cannot run here."""
    reason = unavailable(impl)
    if reason is not None:
        raise ValueError(reason)
    model = mjx.put_model(mj_model, impl=impl)
    # Warp's make_data takes the host model (it sizes the contact and constraint buffers).
    data = mjx.make_data(mj_model if impl == "warp" else model, impl=impl)
    return model, data


def first_kinematics(model: mjx.Model, data: mjx.Data, impl: str) -> mjx.Data:
    """Poses and body velocities of `data`, all a reset's observation reads."""
    if impl == "warp":
        return mjx.forward(model, data)
    # Only what the observation reads: mjx.step recomputes the rest, and skipping the full
    # forward pass here keeps compile time down.
    return mjx.com_vel(model, mjx.com_pos(model, mjx.kinematics(model, data)))
