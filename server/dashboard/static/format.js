// Small formatting helpers shared by the views.

export const STATE_TEXT = {
  PENDING: "pending",
  RUNNING: "running",
  SUCCEEDED: "succeeded",
  FAILED: "failed",
  CANCELLED: "cancelled",
  RECOVERING: "recovering (worker lost)",
  CANCELLING: "cancelling",
};
export const TERMINAL = new Set(["SUCCEEDED", "FAILED", "CANCELLED"]);

export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "class") node.className = value;
    else if (key === "dataset") Object.assign(node.dataset, value);
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else if (key in node && typeof value !== "string") node[key] = value;
    else node.setAttribute(key, value === true ? "" : value);
  }
  for (const child of children.flat()) {
    if (child !== null && child !== undefined && child !== false) {
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
  }
  return node;
}

export function stateBadge(state) {
  return el("span", { class: `state state-${state.toLowerCase()}`, title: state }, STATE_TEXT[state] ?? state);
}

export function number(value, digits = 3) {
  if (value === null || value === undefined || !Number.isFinite(value)) return "–";
  const abs = Math.abs(value);
  if (abs !== 0 && (abs >= 1e6 || abs < 1e-3)) return value.toExponential(2);
  return Number(value.toPrecision(digits)).toLocaleString("en-US");
}

// Axis ticks: short (300k, 2.5M, 3e-4), so labels fit the axis.
export function compact(value) {
  if (value === null || !Number.isFinite(value)) return "";
  const abs = Math.abs(value);
  if (abs >= 1e4) return (value < 0 ? "-" : "") + steps(abs);
  if (abs !== 0 && abs < 1e-2) return value.toExponential(0);
  return String(Number(value.toPrecision(3)));
}

export function steps(value) {
  if (!value) return "0";
  const units = [[1e9, "G"], [1e6, "M"], [1e3, "k"]];
  for (const [size, unit] of units) if (value >= size) return `${Number((value / size).toPrecision(3))}${unit}`;
  return String(value);
}

export function duration(seconds) {
  if (seconds === null || seconds === undefined || !Number.isFinite(seconds)) return "–";
  const s = Math.round(seconds);
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m ${String(s % 60).padStart(2, "0")}s`;
  const h = Math.floor(s / 3600);
  if (h < 48) return `${h}h ${String(Math.floor((s % 3600) / 60)).padStart(2, "0")}m`;
  return `${Math.floor(h / 24)}d ${h % 24}h`;
}

export function when(ms) {
  if (!ms) return "–";
  const d = new Date(ms);
  const today = new Date();
  const sameDay = d.toDateString() === today.toDateString();
  const time = d.toLocaleTimeString("en-GB", { hour: "2-digit", minute: "2-digit", second: "2-digit" });
  return sameDay ? time : `${d.toLocaleDateString("en-CA")} ${time}`;
}

export function bytes(n) {
  if (!n) return "0 B";
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  const i = Math.min(units.length - 1, Math.floor(Math.log(n) / Math.log(1024)));
  return `${Number((n / 1024 ** i).toPrecision(3))} ${units[i]}`;
}

export function progressBar(fraction, state) {
  const pct = Math.round(Math.max(0, Math.min(1, fraction || 0)) * 1000) / 10;
  return el(
    "div",
    { class: `progress progress-${state.toLowerCase()}`, title: `${pct}%` },
    el("div", { class: "bar", style: `width: ${pct}%` }),
    el("span", { class: "pct" }, `${pct}%`),
  );
}

export function jobLabel(job) {
  return job.name || job.job_id.slice(0, 8);
}

export function latestReward(job) {
  const value = job.last_metrics?.["episode/reward"];
  return value === undefined ? "–" : number(value);
}
