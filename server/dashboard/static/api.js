// Talks to the dashboard's HTTP API: bearer token from the tab's session, JSON calls, and
// Server-Sent Events read over fetch (EventSource cannot send an Authorization header).

const TOKEN_KEY = "wildrobot.token";
const listeners = { unauthorized: [] };

export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

export const token = {
  get: () => sessionStorage.getItem(TOKEN_KEY),
  set: (value) => sessionStorage.setItem(TOKEN_KEY, value),
  clear: () => sessionStorage.removeItem(TOKEN_KEY),
};

export function onUnauthorized(fn) {
  listeners.unauthorized.push(fn);
}

function authHeaders(extra = {}) {
  const value = token.get();
  return value ? { authorization: `Bearer ${value}`, ...extra } : { ...extra };
}

async function failure(res) {
  let code = "HTTP_" + res.status;
  let message = res.statusText;
  try {
    const body = await res.json();
    code = body.error.code;
    message = body.error.message;
  } catch (_) { /* not JSON */ }
  if (res.status === 401) listeners.unauthorized.forEach((fn) => fn(message));
  return new ApiError(res.status, code, message);
}

export async function api(path, { method = "GET" } = {}) {
  const res = await fetch(path, { method, headers: authHeaders() });
  if (!res.ok) throw await failure(res);
  return res.json();
}

// A file from the API (fetched with the token) as a blob: URL the page can show or save.
export async function blobUrl(path) {
  const res = await fetch(path, { headers: authHeaders() });
  if (!res.ok) throw await failure(res);
  return URL.createObjectURL(await res.blob());
}

// Saves a checkpoint tar or an export: fetched with the token, handed to the browser as a file.
export async function download(path, filename) {
  const url = await blobUrl(path);
  const link = Object.assign(document.createElement("a"), { href: url, download: filename });
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}

function parseFrame(block) {
  const frame = { event: "message", data: "", id: null };
  let hasData = false;
  for (const line of block.split("\n")) {
    if (!line || line.startsWith(":")) continue;
    const colon = line.indexOf(":");
    const name = colon < 0 ? line : line.slice(0, colon);
    let value = colon < 0 ? "" : line.slice(colon + 1);
    if (value.startsWith(" ")) value = value.slice(1);
    if (name === "event") frame.event = value;
    else if (name === "id") frame.id = Number(value);
    else if (name === "data") { frame.data += value; hasData = true; }
  }
  return hasData ? { ...frame, data: JSON.parse(frame.data) } : null;
}

// Wait before reconnect number `failures` (1-based): 2 s doubling to 60 s, +-20% jitter, and
// never sooner than a Retry-After the server sent.
export const RETRY_BASE_MS = 2000;
export const RETRY_MAX_MS = 60_000;
export function backoffMs(failures, retryAfterMs = 0, jitter = Math.random()) {
  const base = Math.min(RETRY_BASE_MS * 2 ** Math.max(0, failures - 1), RETRY_MAX_MS);
  return Math.max(Math.round(base * (0.8 + 0.4 * jitter)), retryAfterMs);
}

function retryAfterMs(res) {
  const value = Number(res.headers.get("retry-after"));
  return Number.isFinite(value) && value > 0 ? value * 1000 : 0;
}

// Follows a job's events from `since` (a seq): calls on.event(kind, data) for each, reconnects
// with Last-Event-ID after a drop, and calls on.end() after the job's terminal state.
// on.status(state, info) tells the page how the stream stands: "live", "limited" (HTTP 429: the
// server's live-stream cap; info.message is its reason) or "offline" (any other failure), with
// info.retryMs, the wait before the next try (exponential backoff, reset once a stream opens).
export function followEvents(jobId, since, on) {
  let lastId = since;
  let stopped = false;
  let controller = null;
  let failures = 0;
  let wake = null;
  const sleep = (ms) => new Promise((resolve) => { wake = resolve; setTimeout(resolve, ms); });
  (async () => {
    while (!stopped) {
      controller = new AbortController();
      let state = "offline";
      let message = "connection lost";
      let wait = 0;
      try {
        const res = await fetch(`/api/jobs/${jobId}/events`, {
          headers: authHeaders({ "last-event-id": String(lastId), accept: "text/event-stream" }),
          signal: controller.signal,
        });
        if (!res.ok) {
          wait = retryAfterMs(res);
          const err = await failure(res);
          if (res.status === 401 || res.status === 404) { on.error?.(err); return; }
          throw err;
        }
        failures = 0;
        on.status?.("live", {});
        const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
        let buffer = "";
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          buffer += value;
          let cut;
          while ((cut = buffer.indexOf("\n\n")) >= 0) {
            const frame = parseFrame(buffer.slice(0, cut));
            buffer = buffer.slice(cut + 2);
            if (!frame) continue;
            if (frame.id !== null) lastId = frame.id;
            if (frame.event === "end") {
              stopped = true;
              controller.abort();
              on.end?.();
              return;
            }
            on.event(frame.event, frame.data);
          }
        }
      } catch (err) {
        if (stopped) return;
        if (err instanceof ApiError) {
          state = err.status === 429 ? "limited" : "offline";
          message = err.message || `HTTP ${err.status}`;
        } else {
          message = err?.message || message;
        }
      }
      failures += 1;
      const retryMs = backoffMs(failures, wait);
      on.status?.(state, { message, retryMs, failures });
      await sleep(retryMs);
    }
  })();
  return {
    close() {
      stopped = true;
      controller?.abort();
      wake?.();
    },
    // Tries again now instead of waiting out the backoff (a "retry now" button).
    retry() { wake?.(); },
  };
}
