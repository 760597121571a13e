"""The job page shows the rollout video once the worker has exported one (headless Chromium).

The job is driven through the real queue client (as a worker would): a checkpoint first, then,
as at the end of a training job, `exports/rollout.mp4` next to it and the worker's "video of
step N" log line. The page must pick the video up live, without a reload, and play it: the
browser decodes frames of the H.264 file (the same codec settings as workers/export/video.py).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tests.dashboard.browser import ARTIFACTS, sign_in, until
from tests.live_service import TOKEN_OF
from tests.service.tiny_jobs import submit, tiny_ppo
from wildrobot import exports
from wildrobot.queue.client import QueueClient, connect

pytestmark = [pytest.mark.slow, pytest.mark.redis, pytest.mark.integration]

WIDTH, HEIGHT, FRAMES, FPS = 320, 240, 50, 25


def write_mp4(path: Path) -> None:
    """Two seconds of a square crossing the frame, encoded as the worker encodes its videos."""
    import imageio_ffmpeg

    path.parent.mkdir(parents=True, exist_ok=True)
    writer = imageio_ffmpeg.write_frames(
        str(path), (WIDTH, HEIGHT), fps=FPS, codec="libx264", pix_fmt_out="yuv420p",
        quality=7, macro_block_size=16, ffmpeg_log_level="error",
    )  # fmt: skip
    writer.send(None)
    for i in range(FRAMES):
        frame = np.full((HEIGHT, WIDTH, 3), 40, np.uint8)
        x = i * (WIDTH - 40) // FRAMES
        frame[100:140, x : x + 40] = (230, 120, 30)
        writer.send(frame.tobytes())
    writer.close()


def test_rollout_video_appears_and_plays(service, driver) -> None:
    job_id = submit(service.stub("alice"), tiny_ppo(5), name="video run").job_id
    queue = QueueClient(connect(service.redis_url))
    queue.ensure_groups(["ppo"])
    lease = queue.take(["ppo"], "test-worker", lease_s=120, block_ms=2000)
    assert lease is not None
    step = 6400
    checkpoint_dir = service.artifact_dir / job_id / "checkpoints" / f"{step:012d}"
    checkpoint_dir.mkdir(parents=True)
    (checkpoint_dir / "state.bin").write_bytes(b"\0" * 64)
    queue.checkpoint(lease, step, f"{job_id}/checkpoints/{step:012d}", 64)

    sign_in(driver, service.http_url, TOKEN_OF["alice"])
    driver.get(f"{service.http_url}/#/job/{job_id}")
    until(
        "the checkpoint row", lambda: driver.find_element("css selector", f'tr[data-step="{step}"]')
    )
    assert not driver.find_element("id", "rollout").is_displayed()  # no video yet: no card
    assert not driver.find_elements("css selector", "#checkpoints a.export")

    # The worker's end-of-job exports, then its log line: the page fetches and shows the video.
    write_mp4(exports.artifact_path(checkpoint_dir, exports.ArtifactKind.VIDEO))
    queue.log_line(lease, "info", f"video of step {step}: {FRAMES} frames (2.0 s), 1 s to render")
    video = until("the video card", lambda: driver.find_element("id", "rollout").is_displayed()
                  and driver.find_element("id", "rollout-video"))  # fmt: skip
    assert video.get_attribute("data-step") == str(step)
    assert f"step {step:,}" in driver.find_element("id", "rollout-caption").text
    # Decoded by the browser: its size, its length, and frames that advance when it plays.
    until("metadata", lambda: driver.execute_script("return arguments[0].readyState", video) >= 2)
    size = driver.execute_script(
        "return [arguments[0].videoWidth, arguments[0].videoHeight]", video
    )
    assert size == [WIDTH, HEIGHT]
    duration = driver.execute_script("return arguments[0].duration", video)
    assert duration == pytest.approx(FRAMES / FPS, abs=0.1)
    driver.execute_script("arguments[0].play()", video)
    until("playing", lambda: driver.execute_script("return arguments[0].currentTime", video) > 0.3)
    assert driver.execute_script("return arguments[0].error", video) is None
    # The row links to the export for saving, under the name the API gives it.
    link = driver.find_element("css selector", f'tr[data-step="{step}"] a.export-video')
    assert link.get_attribute("href").endswith(
        f"/api/jobs/{job_id}/checkpoints/{step}/artifacts/video"
    )
    driver.execute_script("arguments[0].pause(); arguments[0].currentTime = 1.0", video)
    out = ARTIFACTS / "dashboard"
    out.mkdir(parents=True, exist_ok=True)
    driver.save_screenshot(str(out / "job-video.png"))
