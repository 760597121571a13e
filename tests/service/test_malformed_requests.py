"""The malformed-request corpus (malformed_corpus.py) against a real server and a real Redis:
each request gets its status code, a message naming the field, no traceback in the log, and no
Redis key written."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
import redis

from tests.live_service import TOKEN_OF, ServerThread, server_config
from tests.service.malformed_corpus import CASES, Case

pytestmark = [pytest.mark.redis, pytest.mark.integration]

_IDENTITY = {"request_serializer": None, "response_deserializer": None}


@pytest.fixture(scope="module")
def corpus_server(redis_server, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple]:
    artifacts = tmp_path_factory.mktemp("corpus-artifacts")
    thread = ServerThread(server_config(redis_server.url, Path(artifacts))).start()
    channel = grpc.insecure_channel(thread.address)
    yield thread, channel
    channel.close()
    thread.stop()


def send(channel: grpc.Channel, case: Case) -> grpc.RpcError | None:
    metadata = (("authorization", f"Bearer {TOKEN_OF['alice']}"),)
    try:
        if case.streaming:
            for _ in channel.unary_stream(case.method, **_IDENTITY)(
                case.request, metadata=metadata, timeout=60
            ):
                pass
        else:
            channel.unary_unary(case.method, **_IDENTITY)(
                case.request, metadata=metadata, timeout=60
            )
    except grpc.RpcError as exc:
        return exc
    return None


def _keys(url: str) -> set[str]:
    client = redis.Redis.from_url(url, decode_responses=True)
    try:
        return {k for k in client.keys("*") if ":queue:" not in k}
    finally:
        client.close()


def test_corpus_is_broad() -> None:
    methods = {case.method.rsplit("/", 1)[1] for case in CASES}
    assert methods >= {
        "SubmitJob", "GetJob", "ListJobs", "CancelJob", "WatchJob", "ListCheckpoints",
        "DownloadCheckpoint", "DownloadArtifact", "InverseDynamics",
    }  # fmt: skip
    assert len({case.id for case in CASES}) == len(CASES) >= 150


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_malformed_request(corpus_server, redis_server, caplog, case: Case) -> None:
    thread, channel = corpus_server
    before = _keys(redis_server.url)
    with caplog.at_level(logging.WARNING):
        error = send(channel, case)
    assert error is not None, f"{case.id}: accepted"
    assert error.code().name == case.code, f"{case.id}: {error.code()} {error.details()}"
    assert case.field in (error.details() or ""), f"{case.id}: {error.details()}"
    tracebacks = [r for r in caplog.records if r.exc_info or "Traceback" in r.getMessage()]
    assert not tracebacks, f"{case.id}: logged {tracebacks[0].getMessage()}"
    assert _keys(redis_server.url) == before
