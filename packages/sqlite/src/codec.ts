import type { AsyncTaskEvent, CapturedRequest, TaskRecord } from '@fc-async/core';

/**
 * A row as read: the `record` column, the body BLOB, and the `payload` column (schema 2; NULL
 * in rows written by schema 1, whose `record` holds the whole task with its payload).
 */
export interface Row {
  record: string;
  body: Buffer;
  payload: string | null;
}

/**
 * Short names of the record's fields in the `record` column (schema 2). The record is written
 * on every status change, so it is kept small and quick to write: the payload has a column of
 * its own, written once with the task, and events are arrays. Every field of `TaskRecord` but the
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

/** The `payload` column: the captured request without its body (in the BLOB). */
export function encodePayload(payload: CapturedRequest): string {
  return JSON.stringify({
    method: payload.method,
    url: payload.url,
    headers: payload.headers,
    remoteAddress: payload.remoteAddress,
  });
}

/** A task from its row, whichever schema wrote it. */
export function decodeRow(row: Row): TaskRecord {
  if (row.payload === null) {
    const record = JSON.parse(row.record) as TaskRecord;
    record.payload.body = row.body;
    return record;
  }
  const stored = JSON.parse(row.record) as Record<string, unknown>;
  const record: Record<string, unknown> = {};
  for (const key in stored) {
    const name = LONG[key] ?? key;
    record[name] = name === 'events' ? expandEvents(stored[key] as CompactEvent[]) : stored[key];
  }
  const payload = JSON.parse(row.payload) as CapturedRequest;
  payload.body = row.body;
  record.payload = payload;
  return record as unknown as TaskRecord;
}

function expandEvents(events: readonly CompactEvent[]): AsyncTaskEvent[] {
  return events.map((e) =>
    e.length === 4
      ? { eventId: e[0], status: e[1], timestamp: e[2], eventDetail: e[3] }
      : { eventId: e[0], status: e[1], timestamp: e[2] },
  );
}
