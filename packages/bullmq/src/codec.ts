import { type CapturedRequest, decodeCompactRecord, type TaskRecord, TERMINAL_STATUSES } from '@fc-async/core';

// `r` holds core's compact record (encodeCompactRecord), `p` the request without its body
// (encodeRequestHead), `b` the body as it is.

/**
 * A record from its `r`, `p` and `b` fields; without `p`, the payload has an empty body. Reads
 * what earlier versions wrote too: `r` the whole record with its field names in full, and the
 * body in `p`, in base64, with no `b`.
 */
export function decodeRecord(r: string, p: string | null | undefined, b: Buffer | null | undefined): TaskRecord {
  const record = decodeCompactRecord(r) as TaskRecord;
  if (p) {
    const payload = JSON.parse(p) as Omit<CapturedRequest, 'body'> & { body?: string };
    record.payload = {
      method: payload.method,
      url: payload.url,
      headers: payload.headers,
      body: b ?? Buffer.from(payload.body ?? '', 'base64'),
      remoteAddress: payload.remoteAddress,
    };
    if (payload.acceptedByMiddleware === true) record.payload.acceptedByMiddleware = true;
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
