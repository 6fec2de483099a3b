import type { AsyncTaskEvent, CapturedRequest, TaskRecord } from '@fc-async/core';
import { TERMINAL_STATUSES } from '@fc-async/core';

// The compact record below is the one @fc-async/sqlite writes too (its codec.ts): keep them alike.

/**
 * Short names of the record's fields in the `r` field. The record is written
 * on every status change, so it is kept small and quick to write: the payload has a field of
 * its own (`p`), written once with the task, and events are arrays. Every field of `TaskRecord` but the
 * payload must have a name here (the type says so).
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
  traceContext: 'tc',
  deliveryPending: 'dp',
} as const satisfies { [K in keyof Omit<TaskRecord, 'payload'>]-?: string };
const LONG: Readonly<Record<string, string>> = Object.fromEntries(Object.entries(SHORT).map(([k, v]) => [v, k]));

/** An event as `[eventId, status, timestamp, eventDetail]`, the detail left out when there is none. */
type CompactEvent =
  | [eventId: number, status: AsyncTaskEvent['status'], timestamp: number]
  | [eventId: number, status: AsyncTaskEvent['status'], timestamp: number, eventDetail: string];

/** A JSON value; a number is written with a template (V8's `JSON.stringify` of a large double is slow). */
function json(value: unknown): string {
  if (typeof value === 'number') return Number.isFinite(value) ? `${value}` : 'null';
  return JSON.stringify(value);
}

/**
 * The `record` column of a task: every field but the payload, under its short name, written out
 * field by field. Fields that are `undefined` are left out, as `JSON.stringify` would.
 */
export function encodeRecord(r: TaskRecord): string {
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
  if (r.traceContext !== undefined) out += `,"tc":${json(r.traceContext)}`;
  if (r.deliveryPending !== undefined) out += `,"dp":${json(r.deliveryPending)}`;
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

/** The payload without its body, as the `p` field (written once, at insert; the body goes in `b` as it is). */
export function encodePayload(payload: CapturedRequest): string {
  return JSON.stringify({
    method: payload.method,
    url: payload.url,
    headers: payload.headers,
    remoteAddress: payload.remoteAddress,
  });
}

/**
 * A record from its `r`, `p` and `b` fields; without `p`, the payload has an empty body. Reads
 * what earlier versions wrote too: `r` the whole record with its field names in full, and the
 * body in `p`, in base64, with no `b`.
 */
export function decodeRecord(r: string, p: string | null | undefined, b: Buffer | null | undefined): TaskRecord {
  const stored = JSON.parse(r) as Record<string, unknown>;
  let record: TaskRecord;
  if (typeof stored.taskId === 'string') {
    record = stored as unknown as TaskRecord;
  } else {
    const expanded: Record<string, unknown> = {};
    for (const key in stored) {
      const name = LONG[key] ?? key;
      expanded[name] = name === 'events' ? expandEvents(stored[key] as CompactEvent[]) : stored[key];
    }
    record = expanded as unknown as TaskRecord;
  }
  if (p) {
    const payload = JSON.parse(p) as Omit<CapturedRequest, 'body'> & { body?: string };
    record.payload = {
      method: payload.method,
      url: payload.url,
      headers: payload.headers,
      body: b ?? Buffer.from(payload.body ?? '', 'base64'),
      remoteAddress: payload.remoteAddress,
    };
  } else {
    record.payload = { method: '', url: '', headers: {}, body: Buffer.alloc(0) };
  }
  return record;
}

/** The index fields of a record: open flag and end time. */
export function indexArgs(record: TaskRecord): [string, string] {
  const open = !TERMINAL_STATUSES.has(record.status) || record.deliveryPending === true;
  return [open ? '1' : '0', String(record.endTime ?? 0)];
}

function expandEvents(events: readonly CompactEvent[]): AsyncTaskEvent[] {
  return events.map((e) =>
    e.length === 4
      ? { eventId: e[0], status: e[1], timestamp: e[2], eventDetail: e[3] }
      : { eventId: e[0], status: e[1], timestamp: e[2] },
  );
}
