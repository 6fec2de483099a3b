import type { AsyncTaskEvent } from '../fc-types.js';
import type { TaskRecord, TaskStore, TransitionOptions } from './backend.js';
import type { CapturedRequest } from './payload.js';

/**
 * Short names of a task record's fields in its compact JSON. A backend writes the record on
 * every status change, so it is kept small and quick to write: the payload is stored apart,
 * once per task, and events are arrays. Every field of `TaskRecord` but the payload has a name
 * here (the type says so).
 */
const SHORT = {
  taskId: 'i',
  requestId: 'q',
  status: 's',
  functionArn: 'f',
  qualifier: 'l',
  instanceId: 'n',
  startedTime: 't',
  endTime: 'et',
  durationMs: 'd',
  alreadyRetriedTimes: 'r',
  destinationStatus: 'ds',
  taskErrorMessage: 'm',
  taskPayload: 'tp',
  returnPayload: 'rp',
  events: 'e',
  traceId: 'ti',
  acceptedAt: 'aa',
  attempts: 'at',
  dueAt: 'du',
  condition: 'c',
  lastStatusCode: 'sc',
  lastErrorType: 'ty',
  traceContext: 'tc',
  deliveryPending: 'dp',
  deliveredTo: 'dt',
  deliveryTraceContext: 'dc',
} as const satisfies { [K in keyof Omit<TaskRecord, 'payload'>]-?: string };
const LONG: Readonly<Record<string, string>> = Object.fromEntries(Object.entries(SHORT).map(([k, v]) => [v, k]));

/** An event as `[eventId, status, timestamp, eventDetail]`, the detail left out when there is none. */
type CompactEvent =
  | [eventId: number, status: AsyncTaskEvent['status'], timestamp: number]
  | [eventId: number, status: AsyncTaskEvent['status'], timestamp: number, eventDetail: string];

/** What JSON escapes in a string: a quote, a backslash, a control character, a surrogate (lone ones). */
// biome-ignore lint/suspicious/noControlCharactersInRegex: finding control characters is the point.
const NEEDS_ESCAPE = /["\\\u0000-\u001f\ud800-\udfff]/;

/**
 * A JSON value. A number is written with a template (V8's `JSON.stringify` of a large double is
 * slow), a string that needs no escape in quotes: `JSON.stringify` costs about 200 ns a call on
 * Node 20 whatever it writes, and a record has a dozen strings (its ids, its statuses, its events').
 */
function json(value: unknown): string {
  if (typeof value === 'number') return Number.isFinite(value) ? `${value}` : 'null';
  if (typeof value === 'string' && !NEEDS_ESCAPE.test(value)) return `"${value}"`;
  return JSON.stringify(value);
}

/**
 * A task record without its payload as compact JSON: short field names, events as arrays,
 * written out field by field; fields that are `undefined` are left out, as `JSON.stringify`
 * would. For backends that store records as text (`@fc-async/sqlite`, `@fc-async/bullmq`);
 * {@link decodeCompactRecord} reads it back.
 *
 * @example
 * ```ts
 * import type { Database } from 'better-sqlite3';
 * declare const db: Database;
 * declare const record: TaskRecord;
 * db.prepare('UPDATE tasks SET record = ? WHERE id = ?').run(encodeCompactRecord(record), record.taskId);
 * ```
 */
export function encodeCompactRecord(r: TaskRecord): string {
  let out = '';
  if (r.taskId !== undefined) out += `,"i":${json(r.taskId)}`;
  if (r.requestId !== undefined) out += `,"q":${json(r.requestId)}`;
  if (r.status !== undefined) out += `,"s":${json(r.status)}`;
  if (r.functionArn !== undefined) out += `,"f":${json(r.functionArn)}`;
  if (r.qualifier !== undefined) out += `,"l":${json(r.qualifier)}`;
  if (r.alreadyRetriedTimes !== undefined) out += `,"r":${json(r.alreadyRetriedTimes)}`;
  if (r.acceptedAt !== undefined) out += `,"aa":${json(r.acceptedAt)}`;
  if (r.attempts !== undefined) out += `,"at":${json(r.attempts)}`;
  if (r.events !== undefined) out += `,"e":${encodeEvents(r.events)}`;
  if (r.instanceId !== undefined) out += `,"n":${json(r.instanceId)}`;
  if (r.startedTime !== undefined) out += `,"t":${json(r.startedTime)}`;
  if (r.endTime !== undefined) out += `,"et":${json(r.endTime)}`;
  if (r.durationMs !== undefined) out += `,"d":${json(r.durationMs)}`;
  if (r.destinationStatus !== undefined) out += `,"ds":${json(r.destinationStatus)}`;
  if (r.taskErrorMessage !== undefined) out += `,"m":${json(r.taskErrorMessage)}`;
  if (r.taskPayload !== undefined) out += `,"tp":${json(r.taskPayload)}`;
  if (r.returnPayload !== undefined) out += `,"rp":${json(r.returnPayload)}`;
  if (r.traceId !== undefined) out += `,"ti":${json(r.traceId)}`;
  if (r.dueAt !== undefined) out += `,"du":${json(r.dueAt)}`;
  if (r.condition !== undefined) out += `,"c":${json(r.condition)}`;
  if (r.lastStatusCode !== undefined) out += `,"sc":${json(r.lastStatusCode)}`;
  if (r.lastErrorType !== undefined) out += `,"ty":${json(r.lastErrorType)}`;
  if (r.traceContext !== undefined) out += `,"tc":${json(r.traceContext)}`;
  if (r.deliveryPending !== undefined) out += `,"dp":${json(r.deliveryPending)}`;
  if (r.deliveredTo !== undefined) out += `,"dt":${json(r.deliveredTo)}`;
  if (r.deliveryTraceContext !== undefined) out += `,"dc":${json(r.deliveryTraceContext)}`;
  return `{${out.slice(1)}}`;
}

function encodeEvents(events: readonly AsyncTaskEvent[]): string {
  let out = '';
  for (const e of events) {
    const detail = e.eventDetail === undefined ? '' : `,${json(e.eventDetail)}`;
    out += `,[${json(e.eventId)},${json(e.status)},${json(e.timestamp)}${detail}]`;
  }
  return `[${out.slice(1)}]`;
}

/**
 * A task record without its payload, from {@link encodeCompactRecord}'s JSON. JSON with the
 * field names in full (`taskId`, as `JSON.stringify(record)` writes) is read as it is.
 *
 * @example
 * ```ts
 * declare const row: { record: string };
 * declare const payload: CapturedRequest;
 * const record: TaskRecord = { ...decodeCompactRecord(row.record), payload };
 * ```
 */
export function decodeCompactRecord(text: string): Omit<TaskRecord, 'payload'> {
  const stored = JSON.parse(text) as Record<string, unknown>;
  if (typeof stored.taskId === 'string') return stored as unknown as Omit<TaskRecord, 'payload'>;
  const record: Record<string, unknown> = {};
  for (const key in stored) {
    const name = LONG[key] ?? key;
    record[name] = name === 'events' ? expandEvents(stored[key] as CompactEvent[]) : stored[key];
  }
  return record as unknown as Omit<TaskRecord, 'payload'>;
}

function expandEvents(events: readonly CompactEvent[]): AsyncTaskEvent[] {
  return events.map((e) =>
    e.length === 4
      ? { eventId: e[0], status: e[1], timestamp: e[2], eventDetail: e[3] }
      : { eventId: e[0], status: e[1], timestamp: e[2] },
  );
}

/**
 * A captured request without its body, as JSON: what a backend stores once per task, next to
 * the body kept as bytes.
 *
 * @example
 * ```ts
 * import type { Statement } from 'better-sqlite3';
 * declare const insert: Statement;
 * declare const record: TaskRecord;
 * insert.run(record.taskId, encodeCompactRecord(record), encodeRequestHead(record.payload), record.payload.body);
 * ```
 */
export function encodeRequestHead(payload: CapturedRequest): string {
  return JSON.stringify({
    method: payload.method,
    url: payload.url,
    headers: payload.headers,
    remoteAddress: payload.remoteAddress,
    // The mark travels with the task (see CapturedRequest.acceptedByMiddleware); left out when unset.
    acceptedByMiddleware: payload.acceptedByMiddleware === true ? true : undefined,
  });
}

/**
 * A copy of `current` with `patch` applied (and `status`, `events` when given); fields patched
 * to `undefined` are left out. For stores that write a new version of a record rather than
 * changing it in place. Copied key by key: V8 builds `{ ...a, ...b }` on a slow path.
 *
 * @example
 * ```ts
 * declare const current: TaskRecord;
 * declare const event: AsyncTaskEvent;
 * const next = patchedRecord(current, { endTime: Date.now() }, 'Succeeded', [...current.events, event]);
 * ```
 */
export function patchedRecord(
  current: TaskRecord,
  patch: Partial<TaskRecord> | undefined,
  status?: TaskRecord['status'],
  events?: TaskRecord['events'],
): TaskRecord {
  const next: Record<string, unknown> = {};
  const from = current as unknown as Record<string, unknown>;
  const changes = patch as Record<string, unknown> | undefined;
  for (const key in from) {
    if (changes !== undefined && key in changes) continue;
    next[key] = from[key];
  }
  if (status !== undefined) next.status = status;
  if (events !== undefined) next.events = events;
  for (const key in changes) {
    const value = changes[key];
    if (value !== undefined) next[key] = value;
  }
  return next as unknown as TaskRecord;
}

/**
 * Appends the events of a transition to `events`: the `via` status first when there is one, then
 * `status` with the detail. What every store records for {@link TaskStore.transition}.
 *
 * @example
 * ```ts
 * declare const record: TaskRecord;
 * transitionEvents(record.events, 'Running', { from: ['Enqueued'], via: 'Dequeued' }, Date.now());
 * ```
 */
export function transitionEvents(
  events: AsyncTaskEvent[],
  status: TaskRecord['status'],
  options: TransitionOptions,
  now: number,
): void {
  if (options.via) events.push({ eventId: events.length + 1, status: options.via, timestamp: now, eventDetail: '' });
  events.push({ eventId: events.length + 1, status, timestamp: now, eventDetail: options.detail ?? '' });
}

/**
 * Whether a transition applies to `current`: its status is one of `options.from`, and its
 * attempt count is `options.attempts` when that is given.
 *
 * @example
 * ```ts
 * declare const current: TaskRecord;
 * declare const next: TaskRecord;
 * declare function save(record: TaskRecord): void;
 * if (transitionApplies(current, { from: ['Running'], attempts: 2 })) save(next);
 * ```
 */
export function transitionApplies(current: TaskRecord, options: TransitionOptions): boolean {
  return (
    options.from.includes(current.status) && (options.attempts === undefined || current.attempts === options.attempts)
  );
}

/**
 * The record a transition makes of `current`, as a new object (the events and fields copied,
 * `current` left as it is), or `undefined` when the transition does not apply to it (see {@link transitionApplies}).
 * For stores that write a new version of a record; the compare-and-set around it is theirs.
 *
 * @example
 * ```ts
 * declare const current: TaskRecord;
 * declare function save(next: TaskRecord, current: TaskRecord): Promise<void>;
 * const next = transitionedRecord(current, 'Running', { from: ['Enqueued'], via: 'Dequeued' });
 * if (next) await save(next, current);
 * ```
 */
export function transitionedRecord(
  current: TaskRecord,
  status: TaskRecord['status'],
  options: TransitionOptions,
): TaskRecord | undefined {
  if (!transitionApplies(current, options)) return undefined;
  const patch = typeof options.patch === 'function' ? options.patch(current) : options.patch;
  const events = current.events.slice();
  // A change that ends the task happens at its endTime: the event says the same instant.
  transitionEvents(events, status, options, patch?.endTime ?? Date.now());
  return patchedRecord(current, patch, status, events);
}
