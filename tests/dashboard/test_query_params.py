"""Every query parameter of every HTTP route, through the real front end: a number out of range
or not a number is 400 naming the parameter and its range (never a 500 or a broken stream), and
the edges of each range are served. The table is checked against the app's routes and their
declared parameters, so a new route or parameter without a row fails here."""

from __future__ import annotations

from urllib.parse import quote

import pytest

from tests.dashboard.http_client import SseStream, call
from tests.live_service import TOKEN_OF
from tests.service.tiny_jobs import submit, tiny_ppo
from wildrobot.queue.keys import MAX_SEQ
from wildrobot.server.auth import TokenAuth
from wildrobot.server.dashboard.api import DashboardServices, make_app
from wildrobot.server.dashboard.params import Int, declared

pytestmark = [pytest.mark.redis, pytest.mark.integration]

ALICE = TOKEN_OF["alice"]
JOB = "/api/jobs/{job_id}"
TOO_BIG = "99999999999999999999"  # > 2**64
OVER_SEQ = str(MAX_SEQ + 1)
NOT_NUMBERS = ["x", "1e20", "1.5", "0x10", TOO_BIG + "0" * 5000]

# (method, route path) -> {parameter: values that must be refused}.
BAD: dict[tuple[str, str], dict[str, list[str]]] = {
    ("GET", "/"): {},
    ("GET", "/api/whoami"): {},
    ("GET", "/api/jobs"): {
        "state": ["SLEEPING", "PENDING,nap"],
        "kind": ["chess"],
        "page_size": ["-1", "501", TOO_BIG, *NOT_NUMBERS],
        "page_token": ["oinf", "garbage", "o-5"],
    },
    ("GET", JOB): {},
    ("POST", JOB + "/cancel"): {},
    ("GET", JOB + "/metrics"): {
        "after": ["-1", OVER_SEQ, TOO_BIG, *NOT_NUMBERS],
        "limit": ["-1", "10001", *NOT_NUMBERS],
    },
    ("GET", JOB + "/log"): {
        "until": ["-1", OVER_SEQ, TOO_BIG, *NOT_NUMBERS],
        "limit": ["0", "-1", "2001", *NOT_NUMBERS],
    },
    ("GET", JOB + "/checkpoints"): {},
    ("GET", JOB + "/checkpoints/{step}/download"): {},
    ("GET", JOB + "/checkpoints/{step}/artifacts/{kind}"): {},
    ("GET", JOB + "/events"): {"since": ["-5", OVER_SEQ, TOO_BIG, *NOT_NUMBERS]},
    ("GET", "/api/{rest:path}"): {},
    ("POST", "/api/{rest:path}"): {},
}
# Headers a route reads as numbers, same rule.
BAD_HEADERS = {("GET", JOB + "/events"): {"Last-Event-ID": ["-1", OVER_SEQ, str(2**64 + 1), "x"]}}


def app_routes() -> dict[tuple[str, str], object]:
    app = make_app(DashboardServices(None, None, None, None, 1.0, None), TokenAuth({}))  # type: ignore[arg-type]
    return {
        (method, route.path): route.endpoint
        for route in app.routes
        if hasattr(route, "methods")
        for method in (route.methods or ()) - {"HEAD"}
    }


def test_the_table_covers_every_route_and_parameter() -> None:
    routes = app_routes()
    assert set(routes) == set(BAD), "a route without a row in BAD (or a row without a route)"
    for key, endpoint in routes.items():
        assert set(declared(endpoint)) == set(BAD[key]), key
        assert all(BAD[key].values()), f"{key}: a parameter without a bad value"


def url(path: str, job_id: str) -> str:
    return path.format(job_id=job_id, step="latest", kind="video")


def test_out_of_range_and_non_numbers_are_400_naming_the_parameter(service) -> None:
    job_id = submit(service.stub("alice"), tiny_ppo(1)).job_id
    routes = app_routes()
    for (method, path), params in BAD.items():
        for name, values in params.items():
            param = declared(routes[method, path])[name]
            for value in values:
                target = f"{url(path, job_id)}?{name}={quote(value)}"
                reply = call(service.http_url, target, ALICE, method=method)
                assert reply.status == 400, (target, reply.status, reply.body[:200])
                error = reply.json()["error"]
                assert error["code"] == "INVALID_ARGUMENT" and error["fields"] == [name], target
                assert error["message"].startswith(f"{name}: "), error
                if isinstance(param, Int):
                    assert f"{param.low}..{param.high}" in error["message"], error
    for (method, path), headers in BAD_HEADERS.items():
        for name, values in headers.items():
            for value in values:
                reply = call(
                    service.http_url, url(path, job_id), ALICE, method=method,
                    headers={name: value},
                )  # fmt: skip
                assert reply.status == 400, (path, name, value, reply.body[:200])
                error = reply.json()["error"]
                assert error["fields"] == [name] and f"0..{MAX_SEQ}" in error["message"]


def test_the_edges_of_each_range_are_served(service) -> None:
    job_id = submit(service.stub("alice"), tiny_ppo(1)).job_id
    routes = app_routes()
    for method, path in BAD:
        if path.endswith("/events"):
            continue  # a stream: below
        for name, param in declared(routes[method, path]).items():
            if not isinstance(param, Int):
                continue
            for value in (param.low, param.high):
                target = f"{url(path, job_id)}?{name}={value}"
                reply = call(service.http_url, target, ALICE, method=method)
                assert reply.status == 200, (target, reply.status, reply.body[:200])
    for since in (0, MAX_SEQ):
        stream = SseStream(service.http_url, f"/api/jobs/{job_id}/events?since={since}", ALICE)
        try:
            assert stream.status == 200
            assert stream.next().event == "snapshot"
        finally:
            stream.close()
    stream = SseStream(service.http_url, f"/api/jobs/{job_id}/events", ALICE, MAX_SEQ)
    try:
        assert stream.status == 200 and stream.next().event == "snapshot"
    finally:
        stream.close()
