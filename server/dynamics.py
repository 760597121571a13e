"""DynamicsService: the synchronous InverseDynamics RPC.

The domain service validates a trial, pads it to a length bucket (so XLA compiles once per
bucket, dtype and option set, never once per request length), and runs the jitted inverse on a
single worker thread, off the event loop. The servicer only converts proto <-> arrays.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
from grpc import aio

from wildrobot import arrays
from wildrobot.server import errors
from wildrobot.v1 import dynamics_pb2, dynamics_pb2_grpc

MIN_BUCKET = 256
AXES = ("x", "y", "z")


def bucket_for(num_frames: int, max_frames: int) -> int:
    """The padded length: the next power of two >= num_frames (at least MIN_BUCKET)."""
    bucket = MIN_BUCKET
    while bucket < num_frames:
        bucket *= 2
    return min(bucket, max(max_frames, MIN_BUCKET))


@dataclasses.dataclass(frozen=True)
class Output:
    name: str
    array: np.ndarray
    columns: tuple[str, ...]
    unit: str


class InverseDynamicsService:
    """Domain service: arrays in, named outputs out; raises errors.InvalidArgument."""

    def __init__(self, max_frames: int = 10_000) -> None:
        from wildrobot.envs.dynamics.wildrobot import dynamics_model

        self.model = dynamics_model()
        self.max_frames = max_frames
        # One thread: requests queue here instead of fighting over the CPU inside XLA.
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="inverse-dynamics")

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)

    async def run(
        self, inputs: dict[str, Any], rate_hz: float, options: dict[str, Any]
    ) -> list[Output]:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(
            self._executor, functools.partial(self.run_sync, inputs, rate_hz, options)
        )

    def run_sync(
        self, inputs: dict[str, Any], rate_hz: float, options: dict[str, Any]
    ) -> list[Output]:
        import jax
        import jax.numpy as jnp

        from wildrobot.envs.dynamics import Config, Trial, TrialData, TrialError

        try:
            config = Config(**options)
        except (TypeError, ValueError) as exc:
            raise errors.InvalidArgument(f"options: {exc}", ("options",)) from None
        if "qpos" not in inputs or "grf" not in inputs or "cop" not in inputs:
            missing = [n for n in ("qpos", "grf", "cop") if n not in inputs]
            raise errors.InvalidArgument(f"{missing[0]}: required", tuple(missing))
        trial = TrialData(rate_hz=rate_hz, **inputs)
        model = self.model
        try:
            from wildrobot.envs.dynamics.trial import Limits, validate

            validate(
                trial,
                nq=model.nq,
                nv=model.nv,
                foot_names=model.foot_names,
                limits=Limits(max_frames=self.max_frames),
            )
        except TrialError as exc:
            raise errors.InvalidArgument(str(exc), (exc.field,)) from None
        num_frames = trial.num_frames
        bucket = bucket_for(num_frames, self.max_frames)
        dtype = trial.qpos.dtype
        padded = {k: _pad(v, bucket) for k, v in trial.arrays().items()}
        fn = _inverse_fn(config)
        with jax.enable_x64(dtype == np.float64):
            batch = Trial(**{k: jnp.asarray(v) for k, v in padded.items()})
            result = jax.device_get(fn(batch, np.asarray(rate_hz, dtype), num_frames))
        return _outputs(model, result, num_frames)


@functools.cache
def _inverse_fn(config: Any) -> Any:
    from wildrobot.envs.dynamics import make_inverse_fn
    from wildrobot.envs.dynamics.wildrobot import dynamics_model

    return make_inverse_fn(dynamics_model(), config)


def _pad(array: np.ndarray, length: int) -> np.ndarray:
    extra = length - array.shape[0]
    return np.concatenate([array, np.repeat(array[-1:], extra, axis=0)]) if extra else array


def _outputs(model: Any, result: Any, num_frames: int) -> list[Output]:
    feet = [f"{foot}.{a}" for foot in model.foot_names for a in AXES]
    root = ("root.x", "root.y", "root.z", "root.rx", "root.ry", "root.rz")
    joints = tuple(model.mj_model.joint(j).name for j in range(1, model.mj_model.njnt))
    spec = (
        ("joint_torque", tuple(model.joint_names), "N m"),
        ("residual_force", AXES, "N"),
        ("residual_moment", AXES, "N m"),
        ("ankle_moment", tuple(feet), "N m"),
        ("cop", tuple(feet), "m"),
        ("cop_valid", tuple(model.foot_names), ""),
        ("valid", (), ""),
        ("qfrc", root + joints, "N (root.x-z), N m"),
    )
    return [
        Output(name, np.asarray(getattr(result, name))[:num_frames], columns, unit)
        for name, columns, unit in spec
    ]


_INPUTS = ("qpos", "grf", "cop", "free_moment", "qvel", "qacc")


def request_inputs(request: dynamics_pb2.InverseDynamicsRequest) -> dict[str, np.ndarray]:
    """The request's arrays by name; raises errors.InvalidArgument naming a malformed one."""
    inputs = {}
    for name in _INPUTS:
        if request.HasField(name):
            try:
                inputs[name] = arrays.from_proto(getattr(request, name), name)
            except ValueError as exc:
                raise errors.InvalidArgument(str(exc), (name,)) from None
    return inputs


def request_options(request: dynamics_pb2.InverseDynamicsRequest) -> dict[str, Any]:
    opts = request.options
    names = ("smooth_window", "smooth_forces", "cop_threshold")
    return {n: getattr(opts, n) for n in names if opts.HasField(n)}


class DynamicsServicer(dynamics_pb2_grpc.DynamicsServiceServicer):
    def __init__(self, service: InverseDynamicsService) -> None:
        self._service = service

    async def InverseDynamics(
        self, request: dynamics_pb2.InverseDynamicsRequest, context: aio.ServicerContext
    ) -> dynamics_pb2.InverseDynamicsResponse:
        outputs = await self._service.run(
            request_inputs(request), request.rate_hz, request_options(request)
        )
        return dynamics_pb2.InverseDynamicsResponse(
            outputs=[
                dynamics_pb2.NamedArray(
                    name=o.name, array=arrays.to_proto(o.array), columns=o.columns, unit=o.unit
                )
                for o in outputs
            ],
            num_frames=int(outputs[0].array.shape[0]),
        )


def register(services: Any, server: aio.Server) -> str:
    """Adds DynamicsService to the front end (an entry of server.app.REGISTRATIONS)."""
    dynamics_pb2_grpc.add_DynamicsServiceServicer_to_server(
        DynamicsServicer(InverseDynamicsService()), server
    )
    return dynamics_pb2.DESCRIPTOR.services_by_name["DynamicsService"].full_name
