"""`wildrobot-worker`: the supervisor process (it starts one runner process per job attempt)."""

from __future__ import annotations

import logging
import os
import signal
import sys
from collections.abc import Sequence

from wildrobot.workers.config import load_config
from wildrobot.workers.supervisor import Supervisor


def main(argv: Sequence[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    config = load_config(sys.argv[1:] if argv is None else argv)
    # Runner processes inherit this: a restarted worker reuses the compiled programs.
    if config.jax_cache_dir is not None or "JAX_COMPILATION_CACHE_DIR" not in os.environ:
        config.cache_dir.mkdir(parents=True, exist_ok=True)
        os.environ["JAX_COMPILATION_CACHE_DIR"] = str(config.cache_dir)
    config.artifact_dir.mkdir(parents=True, exist_ok=True)
    supervisor = Supervisor(config)

    def on_signal(signum: int, frame: object) -> None:
        logging.getLogger("wildrobot.workers").info(
            "signal %d: finishing the current iteration", signum
        )
        supervisor.request_shutdown()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    return supervisor.run()


if __name__ == "__main__":
    sys.exit(main())
