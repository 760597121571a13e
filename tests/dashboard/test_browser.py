"""The dashboard in headless Chromium while a real worker trains tiny PointMass jobs.

Signs in with a token, watches the running job's row and curve grow, compares two jobs,
cancels through the button (with its confirmation), and saves screenshots of each view under
.test-artifacts/dashboard/ (WILDROBOT_TEST_ARTIFACTS overrides).
"""

from __future__ import annotations

import tarfile
import time
from pathlib import Path

import pytest
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.support.select import Select

from tests.dashboard.browser import ARTIFACTS, until
from tests.dashboard.tensorboard_files import read_scalars
from tests.live_service import TOKEN_OF
from tests.service.tiny_jobs import STEPS_PER_ITERATION, state_is, submit, tiny_ppo, wait_for
from wildrobot.v1 import jobs_pb2

pytestmark = [pytest.mark.slow, pytest.mark.redis, pytest.mark.integration]


def test_dashboard_in_chromium(service, worker_factory, driver, tmp_path: Path) -> None:
    out = ARTIFACTS / "dashboard"
    out.mkdir(parents=True, exist_ok=True)
    stub = service.stub("alice")
    # ~1 ms per iteration of compiled work here; the long one is cancelled long before its end.
    short = submit(stub, tiny_ppo(200, checkpoint_every=50, seed=1), name="short run")
    long = submit(stub, tiny_ppo(50_000, checkpoint_every=100), name="long run")
    queued = submit(stub, tiny_ppo(5), name="queued next")
    dropped = submit(stub, tiny_ppo(5), name="dropped idea")
    stub.CancelJob(jobs_pb2.CancelJobRequest(job_id=dropped.job_id))
    bobs = submit(service.stub("bob"), tiny_ppo(1), name="bob's job")  # never on alice's page
    worker_factory()

    # No token, no data: the sign-in dialog is all there is.
    driver.get(service.http_url + "/")
    login = until("sign-in dialog", lambda: driver.find_element("id", "login"))
    assert login.get_attribute("open") is not None
    driver.find_element("id", "token").send_keys("not-a-token")
    driver.find_element("id", "login-submit").click()
    until("rejection", lambda: driver.find_element("id", "login-error").text)
    driver.find_element("id", "token").send_keys(TOKEN_OF["alice"])
    driver.find_element("id", "login-submit").click()

    # The table: the running job's row updates in place (auto-refresh) as the worker trains.
    row_css = f'tr[data-job-id="{long.job_id}"]'
    until("long run RUNNING", lambda: driver.find_element("css selector", row_css)
          .get_attribute("data-state") == "RUNNING", timeout=180)  # fmt: skip
    first = int(driver.find_element("css selector", row_css).get_attribute("data-steps"))
    until("row progress", lambda: int(driver.find_element("css selector", row_css)
          .get_attribute("data-steps")) >= first + 3 * STEPS_PER_ITERATION)  # fmt: skip
    rows = driver.find_elements("css selector", "#jobs-table tbody tr[data-job-id]")
    assert [r.get_attribute("data-job-id") for r in rows] == [
        dropped.job_id,
        queued.job_id,
        long.job_id,
        short.job_id,
    ]
    short_row = driver.find_element("css selector", f'tr[data-job-id="{short.job_id}"]')
    assert short_row.get_attribute("data-state") == "SUCCEEDED"
    assert "running" in driver.find_element("css selector", row_css + " .state").text
    driver.save_screenshot(str(out / "jobs.png"))

    # Rows update in place: a ticked row stays ticked and the table keeps its scroll position.
    driver.find_element("css selector", row_css + " input[type=checkbox]").click()
    driver.set_window_size(1400, 420)  # short enough that the table scrolls
    wrap = driver.find_element("css selector", ".table-wrap")
    driver.execute_script("arguments[0].scrollTop = 60", wrap)
    scrolled = driver.execute_script("return arguments[0].scrollTop", wrap)
    assert scrolled > 0
    steps_now = int(driver.find_element("css selector", row_css).get_attribute("data-steps"))
    until("a refresh", lambda: int(driver.find_element("css selector", row_css)
          .get_attribute("data-steps")) > steps_now)  # fmt: skip
    assert driver.execute_script("return arguments[0].scrollTop", wrap) == scrolled
    assert driver.find_element("css selector", row_css + " input[type=checkbox]").is_selected()
    driver.set_window_size(1400, 1000)

    # The state filter keeps working across refreshes.
    driver.find_element("css selector", 'input[value="SUCCEEDED"]').click()
    until("filtered", lambda: len(driver.find_elements("css selector",
          "#jobs-table tbody tr[data-job-id]")) == 1)  # fmt: skip
    time.sleep(3.5)  # one auto-refresh later: still filtered
    assert [r.get_attribute("data-job-id") for r in driver.find_elements(
        "css selector", "#jobs-table tbody tr[data-job-id]")] == [short.job_id]  # fmt: skip
    assert "state=SUCCEEDED" in driver.current_url
    driver.find_element("css selector", 'input[value="SUCCEEDED"]').click()

    # The job page: the reward curve grows while the job trains (SSE).
    until(
        "unfiltered", lambda: driver.find_element("css selector", row_css + " a.job-link")
    ).click()
    chart_css = 'figure.chart[data-metric="episode/reward"]'
    points = until("reward curve", lambda: int(driver.find_element("css selector", chart_css)
                   .get_attribute("data-points")))  # fmt: skip
    until("curve grows", lambda: int(driver.find_element("css selector", chart_css)
          .get_attribute("data-points")) >= points + 3)  # fmt: skip
    for metric in ("episode/length", "env_steps_per_s", "loss/total", "policy/approx_kl"):
        assert driver.find_elements("css selector", f'figure.chart[data-metric="{metric}"]'), metric
    assert driver.find_elements("css selector", f"{chart_css} canvas")
    until(
        "a checkpoint row", lambda: driver.find_elements("css selector", "#checkpoints a.download")
    )
    # A download link saves the checkpoint's tar (fetched with the token).
    downloads = tmp_path / "downloads"
    downloads.mkdir()
    driver.execute_cdp_cmd(
        "Browser.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(downloads)}
    )
    link = driver.find_elements("css selector", "#checkpoints a.download")[-1]  # the oldest
    # Rows are prepended while the job trains, so the link can move under a pointer click;
    # a script click runs the same handler wherever the row is.
    driver.execute_script("arguments[0].click();", link)
    tar_path = until("a downloaded tar", lambda: next(downloads.glob("*.tar"), None))
    until("download complete", lambda: not list(downloads.glob("*.crdownload")))
    with tarfile.open(tar_path) as tar:
        names = tar.getnames()
    step = int(tar_path.stem.rsplit("-", 1)[1])
    assert tar_path.name.startswith(long.job_id) and step % (100 * STEPS_PER_ITERATION) == 0
    assert f"{step:012d}/spec.json" in names, names
    assert '"task": "PointMass"' in driver.find_element("id", "spec").text
    assert "RUNNING" in driver.find_element("id", "event-log").text
    # The smoothing the charts use: debiased EMA, checked against hand-worked numbers.
    # w = 0.5 over [2, 4]: 1.0 / (1 - 0.5) = 2;  (0.5 * 1.0 + 0.5 * 4) / (1 - 0.25) = 2.5 / 0.75.
    smoothed = driver.execute_script("return window.wildrobot.ema([2, 4, null], 0.5)")
    assert smoothed[0] == pytest.approx(2.0) and smoothed[1] == pytest.approx(2.5 / 0.75)
    assert smoothed[2] is None
    # A resumed attempt re-reports steps after its checkpoint: the newest write wins.
    rewound = driver.execute_script("""
        const s = new window.wildrobot.MetricSeries();
        const points = [[1, 10, 1, 1], [2, 20, 1, 2], [3, 30, 1, 3], [4, 20, 2, 9], [5, 30, 2, 10],
                        [5, 40, 2, 0]];  // the last repeats seq 5: ignored
        for (const [seq, step, attempt, r] of points)
          s.add({seq, step, attempt, time_ms: seq, wall_time_s: 0, values: {r}});
        return [s.steps, s.values.get("r"), s.attempts];
    """)
    assert rewound == [[10, 20, 30], [1, 9, 10], [1, 2, 2]]
    driver.set_window_size(1400, 1500)
    time.sleep(1.0)
    driver.save_screenshot(str(out / "job.png"))

    # A drag zooms; the zoom holds while points keep arriving; a double-click lets go.
    def x_range() -> tuple[float, float]:
        return tuple(driver.execute_script(
            f"const u = document.querySelector('{chart_css}').uplot;"
            "return [u.scales.x.min, u.scales.x.max];"))  # fmt: skip

    def count() -> int:
        return int(driver.find_element("css selector", chart_css).get_attribute("data-points"))

    over = driver.find_element("css selector", f"{chart_css} .u-over")
    ActionChains(driver).move_to_element_with_offset(over, -60, 0).click_and_hold().move_by_offset(
        80, 0
    ).release().perform()
    zoomed, points = x_range(), count()
    until("more points", lambda: count() >= points + 5)
    assert x_range() == zoomed
    ActionChains(driver).double_click(over).perform()
    until("zoom reset", lambda: x_range()[1] > zoomed[1])
    # Log y and wall-time x rebuild the charts with the same data.
    driver.find_element("id", "log-y").click()
    until("log scale", lambda: driver.execute_script(
        f"return document.querySelector('{chart_css}').uplot.scales.y.distr") == 3)  # fmt: skip
    Select(driver.find_element("id", "x-mode")).select_by_value("time")
    until("wall time axis", lambda: driver.execute_script(
        f"return document.querySelector('{chart_css}').uplot.series[0].label") == "time")  # fmt: skip
    assert count() > 0

    # Compare: both runs on one chart.
    driver.get(
        f"{service.http_url}/#/compare?ids={short.job_id},{long.job_id},{bobs.job_id}&metric=episode/reward"
    )
    until("compare chart", lambda: int(driver.find_element(
        "css selector", '#compare-chart figure.chart').get_attribute("data-points")) > 0)  # fmt: skip
    legend = driver.find_element("id", "compare-legend").text
    assert "short run" in legend and "long run" in legend and "bob" not in legend
    driver.set_window_size(1400, 1000)
    time.sleep(1.0)
    driver.save_screenshot(str(out / "compare.png"))

    # Cancel through the button: a confirmation first, then the job ends CANCELLED.
    stub.CancelJob(jobs_pb2.CancelJobRequest(job_id=queued.job_id))  # nothing runs after it
    driver.get(f"{service.http_url}/#/job/{long.job_id}")
    button = driver.find_element("id", "cancel-job")  # built with the page, shown once loaded
    until("cancel button shown", button.is_displayed)
    button.click()
    dialog = driver.find_element("id", "confirm")
    assert dialog.get_attribute("open") is not None and "Cancel long run" in dialog.text
    driver.find_element("id", "confirm-yes").click()
    until("CANCELLED on the page", lambda: driver.find_element("id", "job-header")
          .get_attribute("data-state") == "CANCELLED", timeout=60)  # fmt: skip
    job = wait_for(stub, long.job_id, state_is(jobs_pb2.JOB_STATE_CANCELLED), timeout=10)
    assert 0 < job.progress.steps_done < job.progress.steps_total

    errors = [e for e in driver.get_log("browser") if e["level"] == "SEVERE"]
    expected = ("/api/whoami", bobs.job_id)  # the bad token's 401; bob's job is a 404 for alice
    assert not [e for e in errors if not any(x in e["message"] for x in expected)], errors

    # The finished job's curves are TensorBoard event files in the artifact store as well.
    scalars = read_scalars(service.artifact_dir / short.job_id / "tensorboard")
    assert [step for step, _ in scalars["loss/total"]] == [
        STEPS_PER_ITERATION * (i + 1) for i in range(200)
    ]
    for name in ("episode/reward", "env_steps_per_s"):
        assert name in scalars
    print(f"\nscreenshots: {out}")
