"""Operator-facing settings: tokens from a file or the environment (never needed on argv), JSON
log lines, and the gRPC health check used by containers."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from wildrobot.logs import JsonFormatter, configure_logging
from wildrobot.server.config import load_config as load_server_config
from wildrobot.workers.config import load_config as load_worker_config


def test_tokens_come_from_a_file_named_by_flag_or_environment(tmp_path: Path) -> None:
    tokens = tmp_path / "tokens"
    tokens.write_text("t1:alice\nt2:bob\n")
    assert load_server_config(["--tokens-file", str(tokens)], {}).tokens == {
        "t1": "alice",
        "t2": "bob",
    }
    env = {"WILDROBOT_TOKENS_FILE": str(tokens)}
    assert load_server_config([], env).tokens == {"t1": "alice", "t2": "bob"}
    # A flag beats the environment, as for every other setting.
    assert load_server_config(["--tokens", "t3:carol"], env).tokens == {"t3": "carol"}
    assert load_server_config([], {"WILDROBOT_TOKENS": "t4:dan"}).tokens == {"t4": "dan"}


def test_metrics_and_log_format_settings() -> None:
    server = load_server_config(["--metrics-port", "0", "--log-format", "json"], {})
    assert (server.metrics_port, server.log_format) == (0, "json")
    assert load_server_config([], {}).metrics_port is None  # off unless asked for
    worker = load_worker_config([], {"WILDROBOT_METRICS_PORT": "9465"})
    assert (worker.metrics_port, worker.log_format) == (9465, "text")
    with pytest.raises(ValueError):
        load_worker_config(["--log-format", "xml"], {})


def test_json_log_lines(capsys: pytest.CaptureFixture[str]) -> None:
    root = logging.getLogger()
    saved = (list(root.handlers), root.level)
    try:
        configure_logging("json")
        log = logging.getLogger("wildrobot.test")
        log.info("job %s taken", "abc", extra={"job_id": "abc", "attempt": 2})
        try:
            raise RuntimeError("boom")
        except RuntimeError:
            log.exception("failed")
    finally:
        root.handlers[:] = saved[0]
        root.setLevel(saved[1])
    lines = [json.loads(line) for line in capsys.readouterr().err.splitlines()]
    assert lines[0]["message"] == "job abc taken" and lines[0]["level"] == "INFO"
    assert lines[0]["logger"] == "wildrobot.test"
    assert (lines[0]["job_id"], lines[0]["attempt"]) == ("abc", 2)
    assert lines[0]["ts"].endswith("+00:00")
    assert lines[1]["level"] == "ERROR" and "RuntimeError: boom" in lines[1]["exc"]
    assert isinstance(JsonFormatter(), logging.Formatter)
    with pytest.raises(ValueError):
        configure_logging("yaml")
