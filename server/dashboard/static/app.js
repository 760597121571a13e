// The dashboard's entry point: sign-in, hash routes (#/ jobs, #/job/<id>, #/compare?ids=...).
import { api, backoffMs, token, onUnauthorized } from "./api.js";
import { jobsView } from "./table.js";
import { jobView } from "./job.js";
import { compareView } from "./compare.js";
import { ema, MetricSeries, RateEstimate } from "./series.js";
import { el } from "./format.js";

const view = document.getElementById("view");
const login = document.getElementById("login");
const liveDot = document.getElementById("live");
let teardown = null;

const ctx = {
  // true / "live", "limited" (the server's live-stream cap), "ended" (the job is over),
  // false / "offline".
  live(state) {
    const name = state === true ? "live" : state === false ? "offline" : state;
    liveDot.className = `live ${{ live: "on", limited: "limited", ended: "ended" }[name] ?? "off"}`;
    liveDot.textContent = name;
    liveDot.dataset.state = name;
  },
  toast(message) {
    const note = el("div", { class: "toast" }, message);
    document.body.append(note);
    setTimeout(() => note.remove(), 6000);
  },
  confirm(title, text) {
    const dialog = document.getElementById("confirm");
    document.getElementById("confirm-title").textContent = title;
    document.getElementById("confirm-text").textContent = text;
    dialog.returnValue = "";
    dialog.showModal();
    return new Promise((resolve) => dialog.addEventListener("close", () => resolve(dialog.returnValue === "yes"), { once: true }));
  },
  rerender: () => route(),
};

function route() {
  teardown?.();
  teardown = null;
  view.replaceChildren();
  const hash = location.hash.slice(1) || "/";
  const [path, query = ""] = hash.split("?");
  const params = new URLSearchParams(query);
  document.querySelectorAll("[data-nav]").forEach((a) => a.classList.toggle("active",
    (a.dataset.nav === "compare") === path.startsWith("/compare")));
  if (path.startsWith("/job/")) teardown = jobView(view, path.slice(5), ctx);
  else if (path.startsWith("/compare")) teardown = compareView(view, params, ctx);
  else teardown = jobsView(view, params, ctx);
}

async function signIn() {
  try {
    const me = await api("/api/whoami");
    document.getElementById("who").textContent = `tenant ${me.tenant}`;
    document.getElementById("signout").hidden = false;
    if (login.open) login.close();
    route();
  } catch (err) {
    if (err.status !== 401) showLogin(err.message); // a 401 already showed the sign-in
  }
}

function showLogin(message) {
  teardown?.();
  teardown = null;
  view.replaceChildren();
  const error = document.getElementById("login-error");
  error.hidden = !message;
  error.textContent = message;
  if (!login.open) login.showModal();
}

document.getElementById("login-form").addEventListener("submit", (e) => {
  e.preventDefault();
  token.set(document.getElementById("token").value.trim());
  document.getElementById("token").value = "";
  signIn();
});
login.addEventListener("cancel", (e) => e.preventDefault()); // no token, no page
document.getElementById("signout").addEventListener("click", () => {
  token.clear();
  document.getElementById("who").textContent = "";
  document.getElementById("signout").hidden = true;
  showLogin("");
});
onUnauthorized((message) => { token.clear(); showLogin(message); });
window.addEventListener("hashchange", () => { if (token.get()) route(); });

// For tests and the curious: the smoothing and series logic the charts use.
window.wildrobot = { ema, MetricSeries, RateEstimate, backoffMs };

if (token.get()) signIn(); else showLogin("");
