"""`wildrobot-worker`: the supervisor process (it starts one runner process per job attempt)."""

from __future__ import annotations

import logging
import os
import signal
import sys
from collections.abc import Sequence

from wildrobot.logs import configure_logging
from wildrobot.monitoring import MetricsEndpoint

from .config import load_config
from .supervisor import Supervisor


def main(argv: Sequence[str] | None = None) -> int:
    config = load_config(sys.argv[1:] if argv is None else argv)
    configure_logging(config.log_format)
    # Runner processes inherit this: a restarted worker reuses the compiled programs.
    if config.jax_cache_dir is not None or "JAX_COMPILATION_CACHE_DIR" not in os.environ:
        config.cache_dir.mkdir(parents=True, exist_ok=True)
        os.environ["JAX_COMPILATION_CACHE_DIR"] = str(config.cache_dir)
    config.artifact_dir.mkdir(parents=True, exist_ok=True)
    supervisor = Supervisor(config)
    endpoint = None
    if config.metrics_port is not None:
        endpoint = MetricsEndpoint.start(
            supervisor.metrics.registry, config.metrics_host, config.metrics_port
        )
        print(f"wildrobot-worker metrics on {config.metrics_host}:{endpoint.port}", flush=True)

    def on_signal(signum: int, frame: object) -> None:
        logging.getLogger("wildrobot.workers").info(
            "signal %d: finishing the current iteration", signum
        )
        supervisor.request_shutdown()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    try:
        return supervisor.run()
    finally:
        if endpoint is not None:
            endpoint.stop()


if __name__ == "__main__":
    sys.exit(main())
