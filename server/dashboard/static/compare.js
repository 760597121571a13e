// Compare: pick two or more jobs and overlay one metric, live. Jobs load in parallel; x can be
// the fraction of each run done, so a short run is not squashed against a long one.
import { api, followEvents } from "./api.js";
import { CompareChart, PALETTE, chartControls } from "./charts.js";
import { MetricSeries, charted } from "./series.js";
import { loadHistory } from "./job.js";
import { el, stateBadge, jobLabel, when } from "./format.js";

export function compareView(root, params, ctx) {
  const ids = (params.get("ids") || "").split(",").filter(Boolean);
  const X_MODES = ["steps", "fraction", "time"];
  const options = { smoothing: 0.6, logY: false, xMode: X_MODES.includes(params.get("x")) ? params.get("x") : "steps" };
  let metric = params.get("metric") || "episode/reward";
  let chart = null;
  let stopped = false;
  const streams = [];
  const loaded = []; // { job, series }

  const picker = el("div", { class: "picker", id: "compare-picker" });
  const metricSelect = el("select", { id: "compare-metric", onchange: (e) => { metric = e.target.value; save(); rebuild(); } });
  const legend = el("div", { class: "legend", id: "compare-legend" });
  const plotBox = el("div", { class: "grid single", id: "compare-chart" });
  const hint = el("p", { class: "muted", id: "compare-hint" });

  root.append(
    el("section", { class: "card" }, el("h3", {}, "Jobs to compare"), picker),
    el("section", { class: "card" },
      chartControls(options, () => { save(); rebuild(); }, [el("label", {}, "metric: ", metricSelect)], X_MODES),
      hint, legend, plotBox),
  );

  function save() {
    const query = new URLSearchParams({ ids: ids.join(","), metric });
    if (options.xMode !== "steps") query.set("x", options.xMode);
    history.replaceState(null, "", `#/compare?${query}`);
  }

  function rebuild() {
    chart?.destroy();
    chart = null;
    // What the chart shows, said once: nothing picked, one job (drawn alone), or a comparison.
    hint.hidden = loaded.length >= 2;
    hint.textContent = !ids.length ? "Pick two or more jobs above."
      : !loaded.length ? "None of the picked jobs could be loaded."
      : loaded.length === 1 ? `Showing ${jobLabel(loaded[0].job)} alone: pick another job above to compare.`
      : "";
    if (!loaded.length) { plotBox.replaceChildren(); return; }
    plotBox.replaceChildren();
    chart = new CompareChart(plotBox, metric, loaded.map(({ job }) => jobLabel(job)), options);
    redraw();
  }

  let frame = 0;
  function scheduleRedraw() {
    if (!frame) frame = requestAnimationFrame(() => { frame = 0; if (!stopped) redraw(); });
  }

  function redraw() {
    chart?.update(loaded.map((l) => l.series), loaded.map((l) => l.job.started_at_ms),
      loaded.map((l) => l.job.steps_total));
  }

  function refreshMetrics() {
    const names = new Set();
    loaded.forEach(({ series }) => series.names().filter(charted).forEach((n) => names.add(n)));
    if (names.size && !names.has(metric)) metric = [...names].sort()[0];
    metricSelect.replaceChildren(...[...names].sort().map((n) => el("option", { value: n, selected: n === metric }, n)));
    legend.replaceChildren(...loaded.map(({ job }, i) => el("span", { class: "legend-item" },
      el("i", { style: `background: ${PALETTE[i % PALETTE.length]}` }), jobLabel(job), " ", stateBadge(job.state))));
  }

  async function renderPicker() {
    const body = await api("/api/jobs?page_size=50");
    const known = new Set(body.jobs.map((j) => j.job_id));
    const extra = ids.filter((id) => !known.has(id));
    const jobs = [...body.jobs];
    for (const id of extra) { try { jobs.push(await api(`/api/jobs/${id}`)); } catch (_) { /* gone */ } }
    picker.replaceChildren(...jobs.map((job) => el("label", { class: "pick" },
      el("input", { type: "checkbox", value: job.job_id, checked: ids.includes(job.job_id), onchange: (e) => {
        if (e.target.checked) ids.push(job.job_id); else ids.splice(ids.indexOf(job.job_id), 1);
        save();
        ctx.rerender();
      } }),
      ` ${jobLabel(job)} `, stateBadge(job.state), el("span", { class: "muted small" }, ` ${job.kind} · ${when(job.created_at_ms)}`))));
  }

  // One job's record and history; null when it is gone or not this tenant's (a toast says so).
  async function load(id) {
    const series = new MetricSeries();
    try {
      const [job, until] = await Promise.all([api(`/api/jobs/${id}`), loadHistory(id, series)]);
      return { job, series, until };
    } catch (err) {
      ctx.toast(`${id.slice(0, 8)}: ${err.message}`);
      return null;
    }
  }

  (async () => {
    // The picker and every job's history at once; the chart keeps the order the ids were picked.
    const [, ...entries] = await Promise.all([renderPicker(), ...ids.map(load)]);
    if (stopped) return;
    for (const [i, entry] of entries.entries()) {
      if (!entry) continue;
      loaded.push(entry);
      const { series } = entry;
      streams.push(followEvents(ids[i], entry.until, {
        event: (kind, data) => {
          if (kind === "snapshot") { entry.job = data; refreshMetrics(); }
          else if (kind === "metrics" && series.add(data)) { scheduleRedraw(); }
          else if (kind === "state") { entry.job.state = data.state; refreshMetrics(); }
        },
        status: (s) => ctx.live(s),
      }));
    }
    refreshMetrics();
    rebuild();
  })().catch((err) => ctx.toast(err.message));

  const onResize = () => chart?.resize();
  window.addEventListener("resize", onResize);
  return () => {
    stopped = true;
    streams.forEach((s) => s.close());
    window.removeEventListener("resize", onResize);
    chart?.destroy();
  };
}
