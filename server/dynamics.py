"""DynamicsService: the synchronous InverseDynamics RPC.

The domain service validates a trial, pads it to a length bucket (so XLA compiles once per
bucket, dtype and option set, never once per request length), and runs the jitted inverse on a
single worker thread, off the event loop. The servicer only converts proto <-> arrays.
"""

from __future__ import annotations

import asyncio
import functools
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
from grpc import aio

from wildrobot import arrays
from wildrobot.server import errors
from wildrobot.v1 import dynamics_pb2, dynamics_pb2_grpc

MAX_FRAMES = 10_000
RESPONSE_BYTES_PER_FRAME = 512


class InverseDynamicsService:
    """Domain service: arrays in, named outputs out; raises errors.InvalidArgument."""

    def __init__(self, max_frames: int = MAX_FRAMES) -> None:
        from wildrobot.envs.dynamics.wildrobot import dynamics_model

        self.model = dynamics_model()
        self.max_frames = max_frames
        # One thread: requests queue here instead of fighting over the CPU inside XLA.
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="inverse-dynamics")

    async def run(
        self, inputs: dict[str, np.ndarray], rate_hz: float, options: dict[str, Any]
    ) -> list[Any]:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(
            self._executor, functools.partial(self.run_sync, inputs, rate_hz, options)
        )

    def run_sync(
        self, inputs: dict[str, np.ndarray], rate_hz: float, options: dict[str, Any]
    ) -> list[Any]:
        from wildrobot.envs.dynamics import Config, TrialData, TrialError
        from wildrobot.envs.dynamics.runner import run_trial
        from wildrobot.envs.dynamics.trial import Limits

        try:
            config = Config(**options)
        except (TypeError, ValueError) as exc:
            raise errors.InvalidArgument(f"options: {exc}", ("options",)) from None
        missing = [n for n in ("qpos", "grf", "cop") if n not in inputs]
        if missing:
            raise errors.InvalidArgument(f"{missing[0]}: required", tuple(missing))
        try:
            return run_trial(
                self.model,
                TrialData(rate_hz=rate_hz, **inputs),
                config,
                Limits(max_frames=self.max_frames),
            )
        except TrialError as exc:
            raise errors.InvalidArgument(str(exc), (exc.field,)) from None


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
    # The float64 answer is about 470 bytes a frame: cap frames so it fits one message.
    max_frames = min(
        MAX_FRAMES, (services.config.max_message_bytes - 65536) // RESPONSE_BYTES_PER_FRAME
    )
    dynamics_pb2_grpc.add_DynamicsServiceServicer_to_server(
        DynamicsServicer(InverseDynamicsService(max(max_frames, 3))), server
    )
    return dynamics_pb2.DESCRIPTOR.services_by_name["DynamicsService"].full_name
