import type { CapturedRequest, TaskRecord } from '@fc-async/core';
import { TERMINAL_STATUSES } from '@fc-async/core';

/** The record without its payload, as the `r` field. */
export function encodeRecord(record: TaskRecord): string {
  return JSON.stringify({ ...record, payload: undefined });
}

/** The payload with its body in base64, as the `p` field (written once, at insert). */
export function encodePayload(payload: CapturedRequest): string {
  return JSON.stringify({ ...payload, body: payload.body.toString('base64') });
}

/** A record from its `r` and `p` fields; without `p`, the payload has an empty body. */
export function decodeRecord(r: string, p: string | null | undefined): TaskRecord {
  const record = JSON.parse(r) as TaskRecord;
  if (p) {
    const payload = JSON.parse(p) as Omit<CapturedRequest, 'body'> & { body: string };
    record.payload = { ...payload, body: Buffer.from(payload.body, 'base64') };
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
