// A job's metric series in the browser: points in seq order, a resumed attempt replacing the
// steps it repeats, and the debiased exponential moving average used to smooth curves.

// TensorBoard's smoothing: an EMA whose start is debiased (divided by 1 - w^n), so the curve
// does not begin near zero. `weight` in [0, 1); non-finite values pass through and are skipped.
export function ema(values, weight) {
  const out = new Array(values.length);
  let last = 0;
  let count = 0;
  for (let i = 0; i < values.length; i++) {
    const v = values[i];
    if (v === null || v === undefined || !Number.isFinite(v)) { out[i] = v ?? null; continue; }
    last = last * weight + (1 - weight) * v;
    count += 1;
    out[i] = weight === 0 ? v : last / (1 - Math.pow(weight, count));
  }
  return out;
}

export class MetricSeries {
  constructor() {
    this.steps = [];
    this.times = []; // ms, Redis clock
    this.attempts = [];
    this.values = new Map(); // name -> array aligned with steps
    this.lastSeq = 0;
  }

  get length() { return this.steps.length; }

  // A point from /metrics or an SSE `metrics` event. A later attempt that resumed from an
  // earlier checkpoint repeats steps: the points it supersedes are dropped (newest write wins).
  add(point) {
    if (point.seq <= this.lastSeq) return false;
    this.lastSeq = point.seq;
    let keep = this.steps.length;
    while (keep > 0 && this.steps[keep - 1] >= point.step) keep--;
    if (keep < this.steps.length) this.truncate(keep);
    const n = this.steps.length;
    this.steps.push(point.step);
    this.times.push(point.time_ms);
    this.attempts.push(point.attempt);
    for (const [name, value] of Object.entries(point.values)) {
      let column = this.values.get(name);
      if (!column) { column = new Array(n).fill(null); this.values.set(name, column); }
      column.push(value);
    }
    for (const column of this.values.values()) if (column.length === n) column.push(null);
    return true;
  }

  truncate(n) {
    this.steps.length = n;
    this.times.length = n;
    this.attempts.length = n;
    for (const column of this.values.values()) column.length = n;
  }

  names() { return [...this.values.keys()].sort(); }

  // A metric that has taken more than one value (null/non-finite points aside).
  varies(name) {
    let first;
    for (const v of this.values.get(name) ?? []) {
      if (v === null || !Number.isFinite(v)) continue;
      if (first === undefined) first = v;
      else if (v !== first) return true;
    }
    return false;
  }

  // The latest finite value of a metric (undefined when none).
  latest(name) {
    const column = this.values.get(name) ?? [];
    for (let i = column.length - 1; i >= 0; i--) if (column[i] !== null && Number.isFinite(column[i])) return column[i];
    return undefined;
  }

  // x values: env steps, seconds since `startMs` (the job's start; wall clock, all attempts), or
  // the fraction of the run done (steps / `total`), which puts runs of any length side by side.
  xs(mode, startMs, total) {
    if (mode === "time") {
      const t0 = startMs || this.times[0] || 0;
      return this.times.map((t) => (t - t0) / 1000);
    }
    if (mode === "fraction") return this.steps.map((s) => (total > 0 ? s / total : 0));
    return this.steps.slice();
  }
}

// Throughput and ETA from recent iterations rather than the last one: env steps over the
// worker's own clock (a point's wall_time_s, seconds since its attempt started) across the
// points of the last `windowS` seconds (at most `maxPoints`), so one slow iteration (an
// evaluation, a checkpoint) neither halves the rate nor doubles the ETA. A new attempt, or steps
// going back, starts the window afresh. Before two points: an EMA of the reported rate.
export class RateEstimate {
  constructor(windowS = 60, maxPoints = 50) {
    this.windowS = windowS;
    this.maxPoints = maxPoints;
    this.points = []; // { step, wall }
    this.attempt = null;
    this.reported = null;
  }

  add(point) {
    const wall = Number(point.wall_time_s);
    const last = this.points[this.points.length - 1];
    if (last && (point.attempt !== this.attempt || point.step <= last.step || wall < last.wall)) this.points = [];
    this.attempt = point.attempt;
    if (Number.isFinite(wall) && wall > 0) this.points.push({ step: point.step, wall });
    while (this.points.length > this.maxPoints
      || (this.points.length > 2 && wall - this.points[0].wall > this.windowS)) this.points.shift();
    const rate = point.values?.env_steps_per_s;
    if (Number.isFinite(rate) && rate > 0) this.reported = this.reported === null ? rate : 0.8 * this.reported + 0.2 * rate;
  }

  stepsPerSecond() {
    const n = this.points.length;
    if (n >= 2) {
      const first = this.points[0];
      const last = this.points[n - 1];
      if (last.wall > first.wall) return (last.step - first.step) / (last.wall - first.wall);
    }
    return this.reported;
  }

  // Seconds to `total` steps from `done`, at the estimated rate (null when unknown).
  eta(done, total) {
    const rate = this.stepsPerSecond();
    return rate > 0 && total > done ? (total - done) / rate : rate > 0 ? 0 : null;
  }
}

// Sections of the job page, in order; a metric goes to the first whose test matches.
export const SECTIONS = [
  ["Episode", (n) => n.startsWith("episode/") && n !== "episode/count"],
  ["Throughput", (n) => n.endsWith("_per_s") || n.startsWith("time/")],
  ["Losses", (n) => n.startsWith("loss/")],
  ["Policy and optimiser", (n) => n.startsWith("policy/") || n === "gradient_norm" || n.startsWith("kl")],
  ["Reward terms", (n) => n.startsWith("reward/")],
  ["Evaluation", (n) => n.startsWith("eval/")],
  ["AMP health", (n) => n.startsWith("amp/")],
  ["Meta-learning", (n) => n.startsWith("maml/")],
  ["Test-time adaptation", (n) => n.startsWith("tta/")],
  ["Other", () => true],
];

export function sectionOf(name) {
  return SECTIONS.find(([, test]) => test(name))[0];
}

// The metrics worth a chart: constant bookkeeping flags are left out.
export function charted(name) {
  return name !== "params_finite" && name !== "episode/count";
}

// On a job page, "Other" (settings and counters the worker reports: learning_rate, compile_s,
// ...) gets a chart only once its value has changed; until then it is listed as a constant.
export function chartedIn(series, name) {
  return charted(name) && (sectionOf(name) !== "Other" || series.varies(name));
}
