// The jobs table: filters (state, kind) in the URL, rows updated in place every few seconds so
// filters, selection and scroll stay put.
import { api } from "./api.js";
import { el, stateBadge, progressBar, number, duration, when, steps, jobLabel, latestReward, STATE_TEXT } from "./format.js";

export const REFRESH_MS = 3000;
const KINDS = ["ppo", "amp", "inverse_dynamics", "tta_eval"];

export function jobsView(root, params, ctx) {
  const filters = {
    states: new Set((params.get("state") || "").split(",").filter(Boolean)),
    kind: params.get("kind") || "",
  };
  const selected = new Set();
  const pages = [""]; // page tokens: pages[i] starts page i
  let page = 0;
  let timer = 0;
  let stopped = false;

  const rows = new Map(); // job_id -> <tr>
  const tbody = el("tbody", {});
  const status = el("span", { class: "muted", id: "table-status" });
  const compareButton = el("button", { class: "primary", id: "compare-selected", disabled: true, onclick: () => {
    location.hash = `#/compare?ids=${[...selected].join(",")}`;
  } }, "Compare selected");
  const prev = el("button", { onclick: () => { page -= 1; refresh(); } }, "‹ Newer");
  const next = el("button", { onclick: () => { page += 1; refresh(); } }, "Older ›");

  function saveFilters() {
    const query = new URLSearchParams();
    if (filters.states.size) query.set("state", [...filters.states].join(","));
    if (filters.kind) query.set("kind", filters.kind);
    history.replaceState(null, "", `#/${query.toString() ? "?" + query : ""}`);
    pages.length = 1;
    page = 0;
    refresh();
  }

  const stateChips = Object.keys(STATE_TEXT).map((state) => el("label", { class: "chip" },
    el("i", { class: `dot state-${state.toLowerCase()}` }),
    el("input", { type: "checkbox", value: state, checked: filters.states.has(state), onchange: (e) => {
      e.target.checked ? filters.states.add(state) : filters.states.delete(state);
      saveFilters();
    } }), state.toLowerCase()));
  const kindSelect = el("select", { id: "kind-filter", onchange: (e) => { filters.kind = e.target.value; saveFilters(); } },
    el("option", { value: "" }, "all kinds"),
    KINDS.map((k) => el("option", { value: k, selected: filters.kind === k }, k)));

  root.append(
    el("section", { class: "toolbar" },
      el("div", { class: "chips" }, stateChips),
      kindSelect,
      compareButton,
      el("span", { class: "spacer" }),
      status),
    el("div", { class: "table-wrap" },
      el("table", { class: "jobs", id: "jobs-table" },
        el("thead", {}, el("tr", {},
          el("th", {}, ""), el("th", {}, "name"), el("th", { class: "opt" }, "kind"), el("th", {}, "state"),
          el("th", { class: "wide" }, "progress"), el("th", { class: "num opt" }, "steps/s"),
          el("th", { class: "num opt" }, "ETA"), el("th", { class: "num opt" }, "attempt"),
          el("th", { class: "num opt" }, "latest reward"), el("th", { class: "opt" }, "created"))),
        tbody)),
    el("div", { class: "pager" }, prev, next),
  );

  function cells(job) {
    const box = el("input", { type: "checkbox", checked: selected.has(job.job_id), "aria-label": "select", onchange: (e) => {
      e.target.checked ? selected.add(job.job_id) : selected.delete(job.job_id);
      compareButton.disabled = selected.size < 2;
      compareButton.textContent = `Compare selected (${selected.size})`;
    } });
    return [
      el("td", {}, box),
      el("td", {}, el("a", { href: `#/job/${job.job_id}`, class: "job-link", title: job.job_id }, jobLabel(job)),
        job.error && job.state === "FAILED" ? el("div", { class: "error small" }, job.error.slice(0, 120)) : null),
      el("td", { class: "opt" }, job.kind),
      el("td", { class: "state-cell" }, stateBadge(job.state)),
      el("td", { class: "wide" }, progressBar(job.progress, job.state),
        el("div", { class: "muted small" }, `${steps(job.steps_done)} / ${steps(job.steps_total)}`)),
      el("td", { class: "num opt" }, job.steps_per_second ? number(job.steps_per_second) : "–"),
      el("td", { class: "num opt" }, duration(job.eta_s)),
      el("td", { class: "num opt", title: job.lost ? `${job.lost} lost lease(s)` : "" }, String(job.attempt), job.lost ? el("span", { class: "warn" }, ` (${job.lost} lost)`) : null),
      el("td", { class: "num opt" }, latestReward(job)),
      el("td", { class: "opt" }, when(job.created_at_ms)),
    ];
  }

  function render(jobs) {
    const seen = new Set();
    let before = null;
    for (const job of jobs) {
      seen.add(job.job_id);
      let row = rows.get(job.job_id);
      const stamp = `${job.state}|${job.steps_done}|${job.attempt}|${job.updated_at_ms}`;
      if (!row) {
        row = el("tr", { dataset: { jobId: job.job_id } });
        rows.set(job.job_id, row);
      }
      if (row.dataset.stamp !== stamp) {
        row.replaceChildren(...cells(job));
        Object.assign(row.dataset, { stamp, state: job.state, steps: String(job.steps_done) });
      }
      // Keep the server's order (newest first) without touching rows already in place.
      const want = before ? before.nextSibling : tbody.firstChild;
      if (want !== row) tbody.insertBefore(row, want);
      before = row;
    }
    for (const [id, row] of rows) if (!seen.has(id)) { row.remove(); rows.delete(id); }
    if (!jobs.length && !tbody.querySelector(".empty")) {
      tbody.append(el("tr", { class: "empty" }, el("td", { colspan: "10" }, "No jobs match these filters.")));
    } else if (jobs.length) tbody.querySelector(".empty")?.remove();
  }

  async function refresh() {
    clearTimeout(timer);
    const query = new URLSearchParams({ page_size: "50" });
    if (filters.states.size) query.set("state", [...filters.states].join(","));
    if (filters.kind) query.set("kind", filters.kind);
    if (pages[page]) query.set("page_token", pages[page]);
    try {
      const body = await api(`/api/jobs?${query}`);
      if (stopped) return;
      render(body.jobs);
      if (body.next_page_token) pages[page + 1] = body.next_page_token;
      else pages.length = page + 1;
      prev.disabled = page === 0;
      next.disabled = !body.next_page_token;
      status.textContent = `${body.jobs.length} job${body.jobs.length === 1 ? "" : "s"} · updated ${when(Date.now())}`;
      ctx.live(true);
    } catch (err) {
      if (stopped) return;
      status.textContent = `refresh failed: ${err.message}`;
      ctx.live(false);
    }
    if (!stopped) timer = setTimeout(refresh, REFRESH_MS);
  }

  refresh();
  return () => { stopped = true; clearTimeout(timer); };
}
