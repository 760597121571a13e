"""DynamicsService's servicer: proto <-> arrays around one call into the domain service
(`dynamics.InverseDynamicsService`), and its registration in the front end."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import numpy as np
from grpc import aio
from grpc_health.v1 import health_pb2

from wildrobot import arrays
from wildrobot.v1 import dynamics_pb2, dynamics_pb2_grpc

from . import errors
from .dynamics import (
    MAX_FRAMES,
    MESSAGE_HEADROOM_BYTES,
    RESPONSE_BYTES_PER_FRAME,
    WARMUP_HEALTH_NAME,
    InverseDynamicsService,
)

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


def request_names(request: dynamics_pb2.InverseDynamicsRequest) -> dict[str, tuple[str, ...]]:
    """The foot and joint names the client's trial file declares (validated against the model)."""
    return {
        "foot_names": tuple(request.foot_names),
        "joint_names": tuple(request.joint_names),
    }


def _named_arrays(outputs: list[Any], start: int, stop: int) -> list[dynamics_pb2.NamedArray]:
    return [
        dynamics_pb2.NamedArray(
            name=o.name, array=arrays.to_proto(o.array[start:stop]), columns=o.columns,
            unit=o.unit,
        )
        for o in outputs
    ]


class DynamicsServicer(dynamics_pb2_grpc.DynamicsServiceServicer):
    def __init__(self, service: InverseDynamicsService, frames_per_message: int = 4096) -> None:
        self._service = service
        self._frames_per_message = frames_per_message

    async def InverseDynamicsStream(
        self,
        request_iterator: AsyncIterator[dynamics_pb2.InverseDynamicsRequest],
        context: aio.ServicerContext,
    ) -> AsyncIterator[dynamics_pb2.InverseDynamicsResponse]:
        limit = self._service.stream_max_frames
        first: dynamics_pb2.InverseDynamicsRequest | None = None
        parts: dict[str, list[np.ndarray]] = {}
        frames = 0
        async for request in request_iterator:
            if not isinstance(request, dynamics_pb2.InverseDynamicsRequest):  # undecodable
                raise errors.InvalidArgument(
                    "qpos: a message is not an InverseDynamicsRequest", ("qpos",)
                )
            if first is None:
                first = request
            slice_inputs = request_inputs(request)
            if "qpos" not in slice_inputs:
                raise errors.InvalidArgument("qpos: required in every message", ("qpos",))
            if set(slice_inputs) != set(parts or slice_inputs):
                raise errors.InvalidArgument(
                    f"{sorted(set(slice_inputs) ^ set(parts))[0]}: every message carries the "
                    "same arrays",
                    ("inputs",),
                )
            frames += int(slice_inputs["qpos"].shape[0]) if slice_inputs["qpos"].ndim else 0
            if frames > limit:
                raise errors.InvalidArgument(
                    f"qpos: more than the limit {limit} frames in one InverseDynamicsStream",
                    ("qpos",),
                )
            for name, array in slice_inputs.items():
                parts.setdefault(name, []).append(array)
        if first is None:
            raise errors.InvalidArgument("qpos: the stream sent no message", ("qpos",))
        inputs = {}
        for name, pieces in parts.items():
            try:
                inputs[name] = np.concatenate(pieces) if len(pieces) > 1 else pieces[0]
            except ValueError:
                raise errors.InvalidArgument(
                    f"{name}: slices differ in shape after the frame axis", (name,)
                ) from None
        outputs = await self._service.run(
            inputs, first.rate_hz, request_options(first), request_names(first), limit
        )
        total = int(outputs[0].array.shape[0])
        by_name = {o.name: o.array for o in outputs}
        outside = int(np.any(by_name["cop_outside"], axis=-1).sum())
        for start in range(0, total, self._frames_per_message):
            stop = min(start + self._frames_per_message, total)
            yield dynamics_pb2.InverseDynamicsResponse(
                outputs=_named_arrays(outputs, start, stop),
                num_frames=total,
                first_frame=start,
                cop_outside_frames=outside,
            )

    async def InverseDynamics(
        self, request: dynamics_pb2.InverseDynamicsRequest, context: aio.ServicerContext
    ) -> dynamics_pb2.InverseDynamicsResponse:
        outputs = await self._service.run(
            request_inputs(request),
            request.rate_hz,
            request_options(request),
            request_names(request),
        )
        by_name = {o.name: o.array for o in outputs}
        return dynamics_pb2.InverseDynamicsResponse(
            outputs=[
                dynamics_pb2.NamedArray(
                    name=o.name, array=arrays.to_proto(o.array), columns=o.columns, unit=o.unit
                )
                for o in outputs
            ],
            num_frames=int(outputs[0].array.shape[0]),
            cop_outside_frames=int(np.any(by_name["cop_outside"], axis=-1).sum()),
        )


def register(services: Any, server: aio.Server) -> str:
    """Adds DynamicsService to the front end (an entry of server.app.REGISTRATIONS)."""
    # The float64 answer is about 470 bytes a frame: cap frames so it fits one message.
    max_frames = min(
        MAX_FRAMES,
        (services.config.max_message_bytes - MESSAGE_HEADROOM_BYTES) // RESPONSE_BYTES_PER_FRAME,
    )
    service = InverseDynamicsService(max(max_frames, 3), MAX_FRAMES)
    # Stream answers: as many frames a message as fit the smaller of the server's limit and the
    # 4 MiB a default gRPC client accepts.
    budget = min(services.config.max_message_bytes, 4 * 1024 * 1024) - MESSAGE_HEADROOM_BYTES
    per_message = max(16, budget // RESPONSE_BYTES_PER_FRAME)
    dynamics_pb2_grpc.add_DynamicsServiceServicer_to_server(
        DynamicsServicer(service, per_message), server
    )
    buckets = tuple(services.config.dynamics_warm_buckets)
    if buckets:

        async def warm_up(health: Any) -> Any:
            """Says NOT_SERVING now; returns the background work that compiles, then SERVING."""
            await health.set(WARMUP_HEALTH_NAME, health_pb2.HealthCheckResponse.NOT_SERVING)

            async def compile_then_report() -> None:
                await service.warm_up(buckets, ("float32", "float64"))
                await health.set(WARMUP_HEALTH_NAME, health_pb2.HealthCheckResponse.SERVING)

            return compile_then_report()

        services.on_start.append(("dynamics-warmup", warm_up))
    services.on_stop.append(service.close)
    return dynamics_pb2.DESCRIPTOR.services_by_name["DynamicsService"].full_name
