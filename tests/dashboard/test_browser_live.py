"""The job and compare pages in headless Chromium against a real front end whose live-stream cap
is one, with a test process writing a job's events as a worker would (no JAX): the page says why
it is not live and keeps its charts filling, backs off, shows `trimmed` events, smooths steps/s
and ETA over recent iterations, leaves constants out of "Other", compares runs of different
lengths as fractions, and keeps the jobs table's state column in view at 420 px."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.dashboard.browser import ARTIFACTS, sign_in, until
from tests.live_service import TOKEN_OF, ServerThread, Service, server_config
from tests.service.tiny_jobs import STEPS_PER_ITERATION, submit, tiny_ppo
from wildrobot.queue import keys
from wildrobot.queue.client import QueueClient, connect
from wildrobot.v1 import jobs_pb2

pytestmark = [pytest.mark.slow, pytest.mark.redis, pytest.mark.integration]  # ~30 s

S = STEPS_PER_ITERATION


@pytest.fixture
def capped(redis_url: str, tmp_path: Path) -> Iterator[Service]:
    """The real front end with max_watches_per_tenant=1 (SSE and WatchJob share it)."""
    artifact_dir = tmp_path / "artifacts"
    artifact_dir.mkdir()
    config = server_config(redis_url, artifact_dir, max_watches_per_tenant=1)
    thread = ServerThread(config).start()
    service = Service(thread, redis_url, artifact_dir)
    yield service
    service.close()
    thread.stop()


def _iteration(queue, lease, i: int, wall: float) -> int:
    """Iteration i (1-based) of a worker whose iterations alternate 1 s and 3 s."""
    seconds = 1.0 if i % 2 else 3.0
    values = {
        "episode/reward": float(i),
        "env_steps_per_s": S / seconds,
        "learning_rate": 3e-4,  # a constant: listed, not charted
        "iteration": float(i),  # "Other", but it changes: charted
    }
    return queue.metrics(lease, i * S, values, wall, S / seconds)


def _text(driver, css: str) -> str:
    return driver.find_element("css selector", css).text


def _duration(seconds: float) -> str:  # format.js duration(), under an hour
    s = round(seconds)
    return f"{s}s" if s < 60 else f"{s // 60}m {s % 60:02d}s"


def test_job_page_at_the_live_stream_cap(capped: Service, driver) -> None:
    out = ARTIFACTS / "dashboard"
    out.mkdir(parents=True, exist_ok=True)
    stub = capped.stub("alice")
    alpha = submit(stub, tiny_ppo(100), name="alpha").job_id
    beta = submit(stub, tiny_ppo(20), name="beta").job_id
    queue = QueueClient(connect(capped.redis_url))
    queue.ensure_groups(["ppo"])
    leases = {}
    for _ in range(2):
        lease = queue.take(["ppo"], "test-worker", lease_s=120, block_ms=2000)
        leases[lease.job_id] = lease
    wall = 0.0
    for i in range(1, 11):
        wall += 1.0 if i % 2 else 3.0
        _iteration(queue, leases[alpha], i, wall)
    for i in range(1, 21):
        queue.metrics(leases[beta], i * S, {"episode/reward": 2.0 * i}, float(i), float(S))

    # A WatchJob holds the tenant's only live stream: the page's SSE gets 429.
    hold = stub.raw.WatchJob(jobs_pb2.WatchJobRequest(job_id=beta), metadata=stub.metadata)
    next(hold)  # the snapshot: the watch is open
    drain = threading.Thread(target=lambda: [None for _ in hold], daemon=True)
    drain.start()
    sign_in(driver, capped.http_url, TOKEN_OF["alice"])
    driver.get(f"{capped.http_url}/#/job/{alpha}")
    notice = until("the cap notice", lambda: driver.find_element("id", "stream-notice"))
    until(
        "limited", lambda: notice.is_displayed() and notice.get_attribute("data-state") == "limited"
    )
    assert "limit of live streams" in notice.text and "max_watches_per_tenant=1" in notice.text
    assert _text(driver, "#live") == "limited"
    chart = 'figure.chart[data-metric="episode/reward"]'
    until("history drawn", lambda: driver.find_element("css selector", chart)
          .get_attribute("data-points") == "10")  # fmt: skip

    # steps/s and ETA over the recent iterations (10 iterations in 20 s: S/2 per second), not the
    # last one's S/3; the server's record holds that last one.
    rate = 9 * S / (wall - 1.0)
    assert float(_text(driver, "#stat-steps-per-second .value").replace(",", "")) == (
        pytest.approx(rate, rel=5e-3)
    )
    assert _text(driver, "#stat-eta .value") == _duration(90 * S / rate)
    # "Other": the constant learning rate is listed, the changing iteration count charted.
    assert not driver.find_elements("css selector", 'figure.chart[data-metric="learning_rate"]')
    assert driver.find_elements("css selector", 'figure.chart[data-metric="iteration"]')
    assert "learning_rate = 3.00e-4" in _text(driver, "#constant-metrics")
    driver.save_screenshot(str(out / "job-limited.png"))

    # Not live, yet not frozen: new points come from the metric history meanwhile.
    until_seq = queue.redis.hget(keys.job(alpha), "last_seq")
    for i in range(11, 14):
        wall += 1.0 if i % 2 else 3.0
        _iteration(queue, leases[alpha], i, wall)
    queue.log_line(leases[alpha], "info", "kept line")
    until("points while limited", lambda: driver.find_element("css selector", chart)
          .get_attribute("data-points") == "13", timeout=15)  # fmt: skip
    # Events the page never saw are trimmed away; freed, the stream resumes and says so.
    first_kept = int(until_seq) + 4  # three metrics gone, the log line kept
    queue.redis.xtrim(keys.events(alpha), minid=f"{first_kept}-0", approximate=False)
    hold.cancel()
    until("live again", lambda: _text(driver, "#live") == "live", timeout=30)
    assert not notice.is_displayed()
    log = until("trimmed in the log", lambda: "no longer kept" in _text(driver, "#event-log")
                and _text(driver, "#event-log"))  # fmt: skip
    assert f"events {int(until_seq) + 1}–{first_kept - 1} are no longer kept" in log
    assert "kept line" in log
    assert driver.find_element("css selector", chart).get_attribute("data-points") == "13"

    # The metric filter hides charts, and a section left with none.
    driver.find_element("id", "metric-filter").send_keys("episode/")
    until("filtered", lambda: not driver.find_element(
        "css selector", '[data-section="Throughput"]').is_displayed())  # fmt: skip
    assert driver.find_element("css selector", '[data-section="Episode"]').is_displayed()

    # The backoff the stream uses: 2 s doubling to 60 s, never under a Retry-After.
    waits = driver.execute_script(
        "const b = window.wildrobot.backoffMs;"
        "return [b(1, 0, 0.5), b(2, 0, 0.5), b(3, 0, 0), b(9, 0, 1), b(1, 30000, 0.5)];"
    )
    assert waits == [2000, 4000, 6400, 72000, 30000]

    # Compare: parallel loads, x as the fraction of each run (alpha 13 of 100, beta 20 of 20).
    driver.get(f"{capped.http_url}/#/compare?ids={alpha},{beta}&metric=episode/reward&x=fraction")
    css = "#compare-chart figure.chart"
    until("compare chart", lambda: int(driver.find_element("css selector", css)
          .get_attribute("data-points")) > 0)  # fmt: skip
    xs = driver.execute_script(f"return document.querySelector('{css}').uplot.data[0]")
    # Both runs span the axis: beta's 20 points end at 1, alpha's 13 at 0.13 (0.05 and 0.1 shared).
    assert xs[-1] == 1 and 0.13 in xs and len(xs) == 20 + 13 - 2
    assert not driver.find_element("id", "compare-hint").is_displayed()
    driver.save_screenshot(str(out / "compare-fraction.png"))
    driver.get(f"{capped.http_url}/#/compare?ids={alpha}")
    until("one job drawn", lambda: driver.find_elements("css selector", css))
    assert (
        _text(driver, "#compare-hint") == "Showing alpha alone: pick another job above to compare."
    )
    driver.get(f"{capped.http_url}/#/compare")
    until(
        "nothing picked", lambda: _text(driver, "#compare-hint") == "Pick two or more jobs above."
    )
    assert not driver.find_elements("css selector", css)

    # 420 px: the jobs table's state column stays in view, nothing scrolls sideways.
    driver.set_window_size(420, 900)
    driver.get(f"{capped.http_url}/#/")
    state = until("a state cell", lambda: driver.find_element(
        "css selector", f'tr[data-job-id="{alpha}"] .state'))  # fmt: skip
    width = driver.execute_script("return document.documentElement.clientWidth")
    assert state.rect["x"] > 0 and state.rect["x"] + state.rect["width"] <= width
    wrap = driver.find_element("css selector", ".table-wrap")
    assert driver.execute_script(
        "return arguments[0].scrollWidth <= arguments[0].clientWidth", wrap
    )
    driver.save_screenshot(str(out / "jobs-420px.png"))
