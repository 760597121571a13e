"""A tiny HTTP client for the dashboard tests (stdlib only): JSON calls and an SSE reader."""

from __future__ import annotations

import http.client
import json
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


def call(
    base_url: str,
    path: str,
    token: str | None = None,
    method: str = "GET",
    headers: dict[str, str] | None = None,
) -> Reply:
    url = urlsplit(base_url)
    conn = http.client.HTTPConnection(url.hostname, url.port, timeout=30)
    sent = dict(headers or {})
    if token is not None:
        sent["authorization"] = f"Bearer {token}"
    try:
        conn.request(method, path, headers=sent)
        resp = conn.getresponse()
        return Reply(resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read())
    finally:
        conn.close()


@dataclass
class SseEvent:
    event: str
    data: Any
    id: int | None


class SseStream:
    """Reads `text/event-stream` frames one at a time (comments skipped)."""

    def __init__(
        self, base_url: str, path: str, token: str, last_event_id: int | None = None
    ) -> None:
        url = urlsplit(base_url)
        self.conn = http.client.HTTPConnection(url.hostname, url.port, timeout=10)
        headers = {"authorization": f"Bearer {token}", "accept": "text/event-stream"}
        if last_event_id is not None:
            headers["last-event-id"] = str(last_event_id)
        self.conn.request("GET", path, headers=headers)
        self.resp = self.conn.getresponse()
        self.status = self.resp.status
        self.keepalives = 0

    def next(self, timeout: float = 10) -> SseEvent:
        deadline = time.monotonic() + timeout
        fields: dict[str, str] = {}
        while time.monotonic() < deadline:
            line = self.resp.fp.readline().decode()
            if line == "":
                raise EOFError("stream closed")
            line = line.rstrip("\n")
            if line.startswith(":"):
                self.keepalives += 1
                continue
            if line == "":
                if "data" in fields:
                    seq = fields.get("id")
                    return SseEvent(
                        fields.get("event", "message"),
                        json.loads(fields["data"]),
                        int(seq) if seq else None,
                    )
                fields.clear()
                continue
            name, _, value = line.partition(":")
            fields[name] = value[1:] if value.startswith(" ") else value
        raise TimeoutError("no event in time")

    def close(self) -> None:
        self.conn.close()
