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

  // x values: env steps, or seconds since `startMs` (the job's start; wall clock, all attempts).
  xs(mode, startMs) {
    if (mode === "time") {
      const t0 = startMs || this.times[0] || 0;
      return this.times.map((t) => (t - t0) / 1000);
    }
    return this.steps.slice();
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
