// What the dashboard shows of a task, as pure functions (no DOM, no clock of their own): imported by
// dashboard.js in the page and by the package's unit tests in Node. Types in view.d.ts.

const pad = (n) => String(n).padStart(2, '0');

/**
 * A time as one 24-hour format: `HH:MM:SS` on the day of `now`, `YYYY-MM-DD HH:MM:SS` on any
 * other (records are kept 7 days) or when `withDate`; local time, '' without a time.
 */
export function formatTime(ms, now, withDate = false) {
  if (!ms) return '';
  const d = new Date(ms);
  const clock = `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
  const day = formatDay(ms);
  return withDate || day !== formatDay(now) ? `${day} ${clock}` : clock;
}

function formatDay(ms) {
  const d = new Date(ms);
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}`;
}

/** Statuses of a task not ended yet: its duration so far is shown, counting. */
export const UNDER_WAY = new Set(['Enqueued', 'Dequeued', 'Running', 'Retrying', 'Stopping']);

/**
 * A task's duration: FC's `durationMs` once it ended, else the time since it started by the
 * server's clock (`serverNow`), so that a browser whose clock is off shows no negative time.
 */
export function durationText(task, serverNow) {
  if (task.durationMs !== undefined) return `${task.durationMs} ms`;
  if (task.startedTime && UNDER_WAY.has(task.status))
    return `${Math.max(0, Math.round(serverNow - task.startedTime))} ms…`;
  return '';
}

/**
 * The server's clock minus the browser's, from a server time read in an answer that took from
 * `sentAt` to `receivedAt` (browser clock): taken as read half-way.
 */
export function clockOffset(serverTime, sentAt, receivedAt) {
  return serverTime - (sentAt + receivedAt) / 2;
}

/**
 * Whether two records of one task id are the same run: an id can be used again (a restart with
 * the in-memory store, a retention that ended), and the new task has another request id.
 */
export function sameRun(a, b) {
  return a.requestId === b.requestId && a.startedTime === b.startedTime;
}

function pretty(text) {
  if (!text) return '(none)';
  try {
    return JSON.stringify(JSON.parse(text), null, 2);
  } catch {
    return text;
  }
}

/**
 * A task's payload: for a function with an HTTP trigger the request it was queued with (method,
 * url, headers, body), for an event function its event as JSON, whatever fields the event has.
 */
export function prettyPayload(payload, http) {
  if (!payload) return '';
  if (!http) return pretty(payload);
  let req;
  try {
    req = JSON.parse(payload);
  } catch {
    return payload;
  }
  if (typeof req?.method !== 'string' || typeof req.url !== 'string') return pretty(payload);
  const headers = Object.entries(req.headers ?? {}).map(([k, v]) => `${k}: ${v}`);
  return [`${req.method} ${req.url}`, ...headers, '', requestBody(req)].join('\n');
}

function requestBody(req) {
  const body = req.body ?? '';
  if (req.isBase64Encoded) return body ? `(base64) ${body}` : '';
  try {
    return JSON.stringify(JSON.parse(body), null, 2);
  } catch {
    // not JSON: shown as is
    return body;
  }
}

export { pretty as prettyResponse };
