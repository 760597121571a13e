// uPlot charts: one metric (raw faint, smoothed bold) or one metric across jobs (compare).
// Redraws are batched per animation frame; a user's zoom is kept across live updates until
// a double-click resets it.
import { ema } from "./series.js";
import { el, compact, duration, steps as fmtSteps } from "./format.js";

export const PALETTE = ["#2563eb", "#dc2626", "#16a34a", "#9333ea", "#ea580c", "#0891b2", "#be185d", "#4d7c0f"];
const SYNC_KEY = "wildrobot";

const X_LABELS = { steps: "env steps", time: "wall time", fraction: "fraction of run" };
const X_TICKS = {
  steps: fmtSteps,
  time: duration,
  fraction: (t) => `${Number((t * 100).toPrecision(3))}%`,
};

function xAxis(mode) {
  return { label: X_LABELS[mode], values: (u, ticks) => ticks.map(X_TICKS[mode]), size: 40 };
}

// What uPlot can draw: finite numbers (and, on a log axis, positive ones); the rest are gaps.
function logSafe(values, logY) {
  const keep = logY ? (v) => Number.isFinite(v) && v > 0 : Number.isFinite;
  return values.map((v) => (v !== null && keep(v) ? v : null));
}

function fade(hex, alpha) {
  const n = parseInt(hex.slice(1), 16);
  return `rgba(${(n >> 16) & 255}, ${(n >> 8) & 255}, ${n & 255}, ${alpha})`;
}

class BaseChart {
  constructor(container, title, options) {
    this.options = options; // { logY, xMode, smoothing }
    this.zoomed = false;
    this.frame = 0;
    this.body = el("div", { class: "chart-body" });
    this.card = el("figure", { class: "chart", dataset: { metric: title, points: "0" } },
      el("figcaption", {}, title), this.body);
    container.append(this.card);
    this.plot = null;
    this.body.addEventListener("dblclick", () => { this.zoomed = false; });
  }

  width() {
    return Math.max(240, this.card.clientWidth - 16);
  }

  make(series, data) {
    this.plot?.destroy();
    this.zoomed = false; // a rebuilt chart (log y, another x axis) starts at the full range
    const self = this;
    this.plot = new uPlot({
      width: this.width(),
      height: 190,
      legend: { show: true, live: true },
      cursor: { sync: { key: SYNC_KEY }, drag: { x: true, y: false } },
      scales: { x: { time: false }, y: { distr: this.options.logY ? 3 : 1 } },
      axes: [xAxis(this.options.xMode), { size: 52, values: (u, ticks) => ticks.map(compact) }],
      series: [{ label: { time: "time", fraction: "fraction" }[this.options.xMode] ?? "step" }, ...series],
      hooks: { setSelect: [(u) => { if (u.select.width > 0) self.zoomed = true; }] },
    }, data, this.body);
    this.card.uplot = this.plot; // for tests and the browser console
  }

  draw(data) {
    this.card.dataset.points = String(data[0].length);
    if (this.frame) return this.pending = data;
    this.pending = data;
    this.frame = requestAnimationFrame(() => {
      this.frame = 0;
      this.plot.setData(this.pending, !this.zoomed);
    });
  }

  resize() {
    this.plot?.setSize({ width: this.width(), height: 190 });
  }

  destroy() {
    cancelAnimationFrame(this.frame);
    this.plot?.destroy();
    this.card.remove();
  }
}

// One metric of one job: the raw series faint behind its smoothed version.
export class MetricChart extends BaseChart {
  constructor(container, name, color, options) {
    super(container, name, options);
    this.name = name;
    this.color = color;
    this.make(
      [
        { label: "raw", stroke: fade(color, 0.25), width: 1, points: { show: false } },
        { label: "smoothed", stroke: color, width: 2, points: { show: false } },
      ],
      [[], [], []],
    );
  }

  update(series, startMs) {
    const xs = series.xs(this.options.xMode, startMs);
    const raw = logSafe(series.values.get(this.name) ?? [], this.options.logY);
    this.draw([xs, raw, ema(raw, this.options.smoothing)]);
  }
}

// One metric across jobs: one smoothed line per job, each on its own x values.
export class CompareChart extends BaseChart {
  constructor(container, name, labels, options) {
    super(container, name, options);
    this.name = name;
    this.make(
      labels.map((label, i) => ({ label, stroke: PALETTE[i % PALETTE.length], width: 2, points: { show: false }, spanGaps: true })),
      [[], ...labels.map(() => [])],
    );
  }

  // uPlot wants one shared x array: take the union of the jobs' x values, nulls elsewhere.
  // totals: each job's steps_total (x as a fraction of its run).
  update(seriesList, startsMs, totals = []) {
    const perJob = seriesList.map((s, i) => {
      const xs = s.xs(this.options.xMode, startsMs[i], totals[i]);
      const ys = ema(logSafe(s.values.get(this.name) ?? [], this.options.logY), this.options.smoothing);
      return new Map(xs.map((x, j) => [x, ys[j]]));
    });
    const xs = [...new Set(perJob.flatMap((m) => [...m.keys()]))].sort((a, b) => a - b);
    this.draw([xs, ...perJob.map((m) => xs.map((x) => (m.has(x) ? m.get(x) : null)))]);
  }
}

// Smoothing slider, log-y toggle and x-axis choice (`xModes`: those offered, of steps, time,
// fraction); `onChange(options)` after each change.
export function chartControls(options, onChange, extra = [], xModes = ["steps", "time"]) {
  const value = el("output", {}, options.smoothing.toFixed(2));
  const slider = el("input", {
    type: "range", min: "0", max: "0.99", step: "0.01", value: String(options.smoothing),
    id: "smoothing", "aria-label": "smoothing",
    oninput: (e) => { options.smoothing = Number(e.target.value); value.textContent = options.smoothing.toFixed(2); onChange(options, false); },
  });
  const logY = el("input", {
    type: "checkbox", id: "log-y", checked: options.logY,
    onchange: (e) => { options.logY = e.target.checked; onChange(options, true); },
  });
  const xMode = el("select", {
    id: "x-mode",
    onchange: (e) => { options.xMode = e.target.value; onChange(options, true); },
  }, xModes.map((mode) => el("option", { value: mode, selected: options.xMode === mode }, X_LABELS[mode])));
  return el("div", { class: "controls" },
    el("label", {}, "Smoothing ", slider, value),
    el("label", {}, logY, " log y"),
    el("label", {}, "x: ", xMode),
    ...extra);
}
