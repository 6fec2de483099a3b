// Types of view.js (the dashboard's pure functions), for the package's tests.

/** The fields of an FC `AsyncTask` the dashboard's views read. */
export interface TaskView {
  status: string;
  requestId?: string;
  startedTime?: number;
  durationMs?: number;
}

/**
 * A time as `HH:MM:SS` on the day of `now`, else `YYYY-MM-DD HH:MM:SS` (always with `withDate`).
 *
 * @example
 * ```ts
 * formatTime(task.startedTime, Date.now()); // '14:03:07', or '2025-01-30 14:03:07' on another day
 * ```
 */
export function formatTime(ms: number | undefined, now: number, withDate?: boolean): string;

/** Statuses of a task not ended yet. */
export const UNDER_WAY: ReadonlySet<string>;

/**
 * `durationMs` once ended, else the time since its start by the server's clock.
 *
 * @example
 * ```ts
 * durationText({ status: 'Running', startedTime: 1000 }, 3500); // '2500 ms…'
 * ```
 */
export function durationText(task: TaskView, serverNow: number): string;

/**
 * The server's clock minus the browser's.
 *
 * @example
 * ```ts
 * clockOffset(10_000, 129_000, 131_000); // -120000: the browser is 2 minutes ahead
 * ```
 */
export function clockOffset(serverTime: number, sentAt: number, receivedAt: number): number;

/**
 * Whether two records of one task id are the same run (same request id and start).
 *
 * @example
 * ```ts
 * sameRun(shown, listed); // false after a restart that used the id again
 * ```
 */
export function sameRun(a: TaskView, b: TaskView): boolean;

/**
 * A task's payload as shown: the request of an HTTP function, the event (JSON) of an event function.
 *
 * @example
 * ```ts
 * prettyPayload('{"method":"sms","to":"+86"}', false); // '{\n  "method": "sms",\n  "to": "+86"\n}'
 * ```
 */
export function prettyPayload(payload: string | undefined, http: boolean): string;

/**
 * A response payload as shown: pretty JSON, else as is, `(none)` when empty.
 *
 * @example
 * ```ts
 * prettyResponse('{"ok":true}'); // '{\n  "ok": true\n}'
 * ```
 */
export function prettyResponse(text: string | undefined): string;
