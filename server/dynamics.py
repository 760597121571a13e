"""DynamicsService: the synchronous InverseDynamics RPC.

The domain service validates a trial (wildrobot.dynamics_inputs: the rule every entry point
uses), pads it to a length bucket (so XLA compiles once per bucket, dtype and static option set;
cop_threshold is a traced argument), and runs it off the event loop. Compiles run on their own
thread, so a call whose program is compiled never waits behind another caller's compile; the
compiled programs are a bounded LRU (runner.ProgramCache). Common buckets are warmed in the
background at start-up; health reports `wildrobot.v1.DynamicsService.warmup` NOT_SERVING until
they are compiled (the RPC serves meanwhile; a cold bucket just compiles on first use).
Its servicer (`dynamics_servicer`) only converts proto <-> arrays.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np

from . import errors

MAX_FRAMES = 10_000  # InverseDynamicsStream (and the unary call when its messages allow)
RESPONSE_BYTES_PER_FRAME = 512
MESSAGE_HEADROOM_BYTES = 65536
WARMUP_HEALTH_NAME = "wildrobot.v1.DynamicsService.warmup"
log = logging.getLogger(__name__)


class InverseDynamicsService:
    """Domain service: arrays in, named outputs out; raises errors.InvalidArgument."""

    def __init__(self, max_frames: int = MAX_FRAMES, stream_max_frames: int = MAX_FRAMES) -> None:
        from wildrobot.envs.dynamics.runner import ProgramCache
        from wildrobot.envs.dynamics.wildrobot import dynamics_model

        self.model = dynamics_model()
        self.max_frames = max_frames
        self.stream_max_frames = stream_max_frames
        self.programs = ProgramCache()
        # Runs queue on one thread instead of fighting over the CPU inside XLA; compiles get
        # their own thread, so a warm call never waits behind a compile.
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="inverse-dynamics")
        self._compiler = ThreadPoolExecutor(max_workers=1, thread_name_prefix="id-compile")
        self.warm: bool | None = None  # None: no warm-up asked for; False: warming; True: done

    async def run(
        self,
        inputs: dict[str, np.ndarray],
        rate_hz: float,
        options: dict[str, Any],
        names: dict[str, tuple[str, ...]] | None = None,
        max_frames: int | None = None,
    ) -> list[Any]:
        from wildrobot.envs.dynamics import runner

        trial, config, key = self.prepare(
            inputs, rate_hz, options, names or {}, max_frames or self.max_frames
        )
        loop = asyncio.get_running_loop()
        if key in self.programs:  # ready: never queue behind another caller's compile
            program = self.programs.get(self.model, config, key)
        else:
            program = await loop.run_in_executor(
                self._compiler, functools.partial(self.programs.get, self.model, config, key)
            )
        return await loop.run_in_executor(
            self._executor,
            functools.partial(runner.run_prepared, self.model, trial, config, key, program),
        )

    def prepare(
        self,
        inputs: dict[str, np.ndarray],
        rate_hz: float,
        options: dict[str, Any],
        names: dict[str, tuple[str, ...]],
        max_frames: int,
    ) -> tuple[Any, Any, Any]:
        from wildrobot.dynamics_inputs import Limits, TrialData, TrialError, validate_options
        from wildrobot.envs.dynamics import Config
        from wildrobot.envs.dynamics.runner import prepare

        try:
            validate_options(**options)
        except TrialError as exc:
            raise errors.InvalidArgument(f"options.{exc}", (f"options.{exc.field}",)) from None
        config = Config(**options)
        missing = [n for n in ("qpos", "grf", "cop") if n not in inputs]
        if missing:
            raise errors.InvalidArgument(f"{missing[0]}: required", tuple(missing))
        try:
            trial, key = prepare(
                self.model,
                TrialData(rate_hz=rate_hz, **inputs, **names),
                config,
                Limits(max_frames=max_frames),
            )
        except TrialError as exc:
            raise errors.InvalidArgument(str(exc), (exc.field,)) from None
        return trial, config, key

    async def warm_up(self, buckets: tuple[int, ...], dtypes: tuple[str, ...]) -> None:
        """Compiles the common programs on the compile thread (start-up, in the background)."""
        from wildrobot.envs.dynamics import runner

        self.warm = False
        loop = asyncio.get_running_loop()
        buckets = tuple(b for b in buckets if b <= max(self.max_frames, runner.MIN_BUCKET))
        await loop.run_in_executor(
            self._compiler,
            functools.partial(runner.warm, self.model, buckets, dtypes, None, self.programs),
        )
        self.warm = True
        log.info("inverse dynamics warm: buckets %s, %s", list(buckets), list(dtypes))

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)
        self._compiler.shutdown(wait=False, cancel_futures=True)
