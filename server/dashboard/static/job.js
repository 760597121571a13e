// One job: header (state, progress, ETA, cancel), live curves, rollout video, checkpoints,
// event log, spec.
import { api, blobUrl, download, followEvents } from "./api.js";
import { MetricChart, PALETTE, chartControls } from "./charts.js";
import { MetricSeries, RateEstimate, SECTIONS, sectionOf, charted, chartedIn } from "./series.js";
import { el, stateBadge, progressBar, number, duration, when, steps, bytes, jobLabel, TERMINAL } from "./format.js";

// Metric points after seq `after` (all of them by default) into `series` (and `onPoint` for
// each one it took); returns the job's last seq when the history was read.
export async function loadHistory(jobId, series, onPoint = null, after = 0) {
  let lastSeq = 0;
  for (;;) {
    const page = await api(`/api/jobs/${jobId}/metrics?after=${after}&limit=5000`);
    for (const point of page.points) if (series.add(point)) onPoint?.(point);
    lastSeq = page.last_seq;
    if (!page.more || !page.points.length) return lastSeq;
    after = page.points[page.points.length - 1].seq;
  }
}

function describe(event) {
  switch (event.kind) {
    case "state": return `${event.state}${event.reason ? " · " + event.reason : ""}`;
    case "checkpoint": return `checkpoint at step ${event.step.toLocaleString("en-US")} (${bytes(event.size_bytes)})`;
    case "log": return event.message;
    case "trimmed": return `events ${event.first_seq}–${event.last_seq} are no longer kept by the server `
      + "(trimmed), so this log skips them; the curves are refilled from the metric history";
    default: return JSON.stringify(event);
  }
}

export function jobView(root, jobId, ctx) {
  const options = { smoothing: 0.6, logY: false, xMode: "steps", filter: "" };
  const series = new MetricSeries();
  const rate = new RateEstimate(); // steps/s and ETA over recent iterations, not the last one
  const charts = new Map(); // metric -> MetricChart
  let live = false;
  let job = null;
  let stream = null;
  let timer = 0;
  let stopped = false;

  const header = el("section", { class: "job-header", id: "job-header" });
  const sections = el("div", { class: "sections", id: "charts" });
  const constants = el("p", { class: "muted small constants", id: "constant-metrics", hidden: true });
  const logList = el("ol", { class: "log", id: "event-log", reversed: true });
  const ckptBody = el("tbody", {});
  const specBox = el("pre", { class: "spec", id: "spec" });
  // The newest checkpoint's rollout video (made at the end of a training job), when there is one.
  const video = el("video", { id: "rollout-video", controls: true, loop: true, muted: true, playsinline: true });
  const videoCaption = el("p", { class: "muted small", id: "rollout-caption" });
  const videoCard = el("section", { class: "card video-card", id: "rollout", hidden: true },
    el("h3", {}, "Rollout video"), video, videoCaption);
  const filterBox = el("input", { type: "search", placeholder: "filter metrics", id: "metric-filter",
    oninput: (e) => { options.filter = e.target.value.trim().toLowerCase(); layout(); } });

  root.append(
    header,
    el("section", { class: "card" },
      chartControls(options, (_, rebuild) => (rebuild ? rebuildCharts() : redraw()), [filterBox]),
      sections, constants),
    videoCard,
    el("div", { class: "columns" },
      el("section", { class: "card" }, el("h3", {}, "Checkpoints"),
        el("table", { class: "checkpoints", id: "checkpoints" },
          el("thead", {}, el("tr", {}, el("th", { class: "num" }, "step"), el("th", { class: "num" }, "attempt"),
            el("th", { class: "num" }, "size"), el("th", {}, "saved"), el("th", {}, ""))),
          ckptBody)),
      el("section", { class: "card" }, el("h3", {}, "Event log"), logList)),
    el("section", { class: "card" }, el("h3", {}, "Spec"), specBox),
  );

  // Built once and updated in place, so the buttons stay the same elements between updates.
  const title = el("h2", {});
  const badge = el("span", {});
  const meta = el("span", { class: "muted" });
  const cancelButton = el("button", { class: "danger", id: "cancel-job", onclick: () => cancel(), hidden: true }, "Cancel job");
  const compareLink = el("a", { class: "button", href: `#/compare?ids=${jobId}` }, "Compare…");
  const stats = el("div", { class: "stats" });
  const errorLine = el("p", { hidden: true });
  // Why the page is not live (the server's live-stream cap, a lost connection) and when it tries again.
  const noticeText = el("span", {});
  const retryButton = el("button", { class: "small", id: "stream-retry", onclick: () => stream?.retry() }, "Retry now");
  const notice = el("div", { class: "notice", id: "stream-notice", role: "status", hidden: true }, noticeText, " ", retryButton);
  header.append(el("div", { class: "title-row" }, title, badge, meta, el("span", { class: "spacer" }), compareLink, cancelButton), notice, stats, errorLine);

  function streamStatus(state, info) {
    live = state === "live";
    ctx.live(state);
    notice.hidden = live;
    notice.dataset.state = state;
    if (live) return;
    const wait = duration(info.retryMs / 1000);
    noticeText.textContent = state === "limited"
      ? `Live updates paused: the server is at its limit of live streams (${info.message}). `
        + `New points are fetched every 5 s meanwhile; live updates are tried again in ${wait}.`
      : `Live stream lost (${info.message}). New points are fetched every 5 s meanwhile; `
        + `reconnecting in ${wait}.`;
    catchUp();
  }

  function renderHeader() {
    // Throughput and ETA over recent iterations when the page has points; else the server's.
    const estimated = rate.stepsPerSecond();
    const sps = estimated ?? job.steps_per_second;
    const eta = job.state === "RUNNING" && estimated > 0 ? rate.eta(job.steps_done, job.steps_total) : job.eta_s;
    header.dataset.state = job.state;
    title.textContent = jobLabel(job);
    badge.replaceChildren(stateBadge(job.state));
    meta.textContent = `${job.kind} · ${job.job_id}`;
    cancelButton.hidden = TERMINAL.has(job.state) || job.state === "CANCELLING";
    stats.replaceChildren(...[
      el("div", { class: "wide" }, progressBar(job.progress, job.state),
        el("div", { class: "muted small" }, `${steps(job.steps_done)} of ${steps(job.steps_total)} env steps`)),
      stat("steps/s", sps ? number(sps) : "–", "steps-per-second"),
      stat("ETA", duration(eta), "eta"),
      stat("attempt", `${job.attempt}${job.lost ? ` (${job.lost} lost)` : ""}`),
      stat("latest reward", number(job.last_metrics?.["episode/reward"])),
      stat("created", when(job.created_at_ms)),
      stat("started", when(job.started_at_ms)),
      job.finished_at_ms ? stat("finished", when(job.finished_at_ms)) : null,
    ].filter(Boolean));
    errorLine.hidden = !job.error;
    errorLine.className = job.state === "FAILED" ? "error" : "muted";
    errorLine.textContent = job.error || "";
  }

  function stat(label, value, id) {
    return el("div", { class: "stat", id: id ? `stat-${id}` : undefined },
      el("div", { class: "muted small" }, label), el("div", { class: "value" }, value));
  }

  async function cancel() {
    const ok = await ctx.confirm(`Cancel ${jobLabel(job)}?`,
      "The worker stops after its current iteration and keeps a checkpoint; the job ends CANCELLED.");
    if (!ok) return;
    try {
      job = await api(`/api/jobs/${jobId}/cancel`, { method: "POST" });
      renderHeader();
    } catch (err) {
      ctx.toast(`cancel failed: ${err.message}`);
    }
  }

  function visible(name) {
    return charts.has(name) && (!options.filter || name.toLowerCase().includes(options.filter));
  }

  // Creates charts for new metrics, grouped in sections, and hides filtered-out ones.
  function layout() {
    const flat = [];
    for (const name of series.names()) {
      if (charts.has(name) || !charted(name)) continue;
      if (!chartedIn(series, name)) { flat.push(name); continue; }
      const section = sectionOf(name);
      let box = sections.querySelector(`[data-section="${section}"] .grid`);
      if (!box) {
        const order = SECTIONS.findIndex(([s]) => s === section);
        const block = el("div", { class: "section", dataset: { section, order: String(order) } },
          el("h3", {}, section), el("div", { class: "grid" }));
        const after = [...sections.children].find((c) => Number(c.dataset.order) > order);
        sections.insertBefore(block, after ?? null);
        box = block.querySelector(".grid");
      }
      const color = PALETTE[charts.size % PALETTE.length];
      const chart = new MetricChart(box, name, color, options);
      charts.set(name, chart);
      chart.update(series, job?.started_at_ms);
    }
    for (const [name, chart] of charts) chart.card.hidden = !visible(name);
    // A section whose charts the filter hides all goes too (its title alone says nothing).
    for (const block of sections.children) {
      block.hidden = ![...block.querySelectorAll("figure.chart")].some((card) => !card.hidden);
    }
    constants.hidden = !flat.length;
    constants.textContent = flat.length
      ? "Constant so far (no chart): " + flat.map((n) => `${n} = ${number(series.latest(n))}`).join(" · ")
      : "";
  }

  // Fast jobs report hundreds of points a second: draw at most once per animation frame.
  let frame = 0;
  function scheduleRedraw() {
    if (frame) return;
    frame = requestAnimationFrame(() => {
      frame = 0;
      if (stopped) return;
      renderHeader();
      layout();
      redraw();
    });
  }

  function redraw() {
    for (const [name, chart] of charts) if (visible(name)) chart.update(series, job?.started_at_ms);
  }

  function rebuildCharts() {
    for (const chart of charts.values()) chart.destroy();
    charts.clear();
    sections.replaceChildren();
    layout();
  }

  function addLog(event) {
    logList.prepend(el("li", { class: `log-${event.kind} ${event.level ? "level-" + event.level : ""}` },
      el("time", {}, when(event.time_ms)), el("span", { class: "kind" }, event.kind), " ", describe(event)));
  }

  function saveLink(href, name, label, cls) {
    return el("a", { href, class: cls, onclick: (e) => {
      e.preventDefault();
      download(e.currentTarget.getAttribute("href"), name).catch((err) => ctx.toast(err.message));
    } }, label);
  }

  const EXPORT_FILES = { onnx: ["policy.onnx", "onnx"], video: ["rollout.mp4", "mp4"] };
  const exportCells = new Map(); // step -> the cell holding that checkpoint's export links
  function showExports(c) {
    const cell = exportCells.get(c.step);
    if (!cell || cell.dataset.exports === (c.exports || []).join(",")) return;
    cell.dataset.exports = (c.exports || []).join(",");
    const stem = `${jobId}-${String(c.step).padStart(12, "0")}`;
    cell.replaceChildren(...(c.exports || []).filter((k) => EXPORT_FILES[k]).flatMap((kind) => [" · ",
      saveLink(`/api/jobs/${jobId}/checkpoints/${c.step}/artifacts/${kind}`, `${stem}-${EXPORT_FILES[kind][0]}`,
        EXPORT_FILES[kind][1], `export export-${kind}`)]));
  }

  const savedSteps = new Set();
  function addCheckpoint(c) {
    if (savedSteps.has(c.step)) { showExports(c); return; } // listed once, then also announced by the stream
    savedSteps.add(c.step);
    const exportsCell = el("span", { class: "exports" });
    exportCells.set(c.step, exportsCell);
    ckptBody.prepend(el("tr", { dataset: { step: String(c.step) } },
      el("td", { class: "num" }, c.step.toLocaleString("en-US")),
      el("td", { class: "num" }, String(c.attempt)),
      el("td", { class: "num" }, bytes(c.size_bytes)),
      el("td", {}, when(c.created_at_ms)),
      el("td", {}, saveLink(`/api/jobs/${jobId}/checkpoints/${c.step}/download`,
        `${jobId}-${String(c.step).padStart(12, "0")}.tar`, "download", "download"), exportsCell)));
    showExports(c);
  }

  let videoStep = null;
  let videoUrl = null;
  async function showVideo(step) {
    if (step === videoStep) return;
    videoStep = step;
    try {
      const url = await blobUrl(`/api/jobs/${jobId}/checkpoints/${step}/artifacts/video`);
      if (stopped) { URL.revokeObjectURL(url); return; }
      if (videoUrl) URL.revokeObjectURL(videoUrl);
      videoUrl = url;
      video.src = url;
      video.dataset.step = String(step);
      videoCaption.textContent = `policy at step ${step.toLocaleString("en-US")}`;
      videoCard.hidden = false;
    } catch (err) {
      videoStep = null;
      ctx.toast(`rollout video: ${err.message}`);
    }
  }

  // Exports appear after their checkpoint (at the end of a job): asked again when the log says so.
  async function refreshCheckpoints() {
    let listed;
    try {
      listed = (await api(`/api/jobs/${jobId}/checkpoints`)).checkpoints;
    } catch (_) { return; /* the stream reports problems */ }
    if (stopped) return;
    listed.forEach(addCheckpoint);
    const withVideo = listed.filter((c) => (c.exports || []).includes("video")).pop();
    if (withVideo) await showVideo(withVideo.step);
  }

  function tookPoint(point) {
    rate.add(point);
    if (!job) return;
    job.steps_done = Math.max(job.steps_done, point.step);
    job.progress = job.steps_total ? Math.min(1, job.steps_done / job.steps_total) : 0;
    if (point.values["episode/reward"] !== undefined) job.last_metrics = point.values;
  }

  // Points the stream did not bring (it is down, or events were trimmed) from the history.
  let catching = false;
  async function catchUp() {
    if (catching || stopped) return;
    catching = true;
    try {
      const before = series.length;
      await loadHistory(jobId, series, tookPoint, series.lastSeq);
      if (series.length !== before) scheduleRedraw();
    } catch (_) { /* the notice already says the server is hard to reach */ }
    finally { catching = false; }
  }

  function onEvent(kind, data) {
    if (kind === "snapshot") { job = data; renderHeader(); return; }
    if (kind === "metrics") {
      if (series.add(data)) { tookPoint(data); scheduleRedraw(); }
      return;
    }
    addLog(data);
    if (kind === "trimmed") catchUp();
    if (kind === "checkpoint") addCheckpoint(data);
    if (kind === "log" && /^(video|onnx export) of step/.test(data.message || "")) refreshCheckpoints();
    if (kind === "state") { job.state = data.state; job.attempt = data.attempt ?? job.attempt; renderHeader(); }
  }

  async function refreshJob() {
    try {
      job = await api(`/api/jobs/${jobId}`);
      if (!stopped) renderHeader();
    } catch (_) { /* the stream reports problems */ }
    if (!live && !stopped) await catchUp();
    if (!stopped && !TERMINAL.has(job?.state)) timer = setTimeout(refreshJob, 5000);
  }

  (async () => {
    try {
      job = await api(`/api/jobs/${jobId}`);
    } catch (err) {
      root.replaceChildren(el("p", { class: "error" }, `Job ${jobId}: ${err.message}`));
      return;
    }
    renderHeader();
    specBox.textContent = JSON.stringify(job.spec, null, 2);
    // History up to `until`, then live events after it: nothing missed, nothing twice.
    const until = await loadHistory(jobId, series, tookPoint);
    if (stopped) return;
    renderHeader(); // steps/s and ETA from the history's recent iterations
    layout();
    redraw();
    const [log, ckpts] = await Promise.all([
      api(`/api/jobs/${jobId}/log?until=${until}&limit=500`),
      api(`/api/jobs/${jobId}/checkpoints`),
    ]);
    if (stopped) return;
    log.events.forEach(addLog);
    ckpts.checkpoints.forEach(addCheckpoint);
    const withVideo = ckpts.checkpoints.filter((c) => (c.exports || []).includes("video")).pop();
    if (withVideo) showVideo(withVideo.step);
    stream = followEvents(jobId, until, {
      event: onEvent,
      status: streamStatus,
      end: () => { live = false; notice.hidden = true; ctx.live("ended"); refreshJob(); refreshCheckpoints(); },
      error: (err) => ctx.toast(err.message),
    });
    timer = setTimeout(refreshJob, 5000);
  })();

  const onResize = () => charts.forEach((c) => c.resize());
  window.addEventListener("resize", onResize);
  return () => {
    stopped = true;
    clearTimeout(timer);
    cancelAnimationFrame(frame);
    stream?.close();
    window.removeEventListener("resize", onResize);
    charts.forEach((c) => c.destroy());
    if (videoUrl) URL.revokeObjectURL(videoUrl);
  };
}
