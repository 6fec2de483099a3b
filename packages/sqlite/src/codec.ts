import { type CapturedRequest, decodeCompactRecord, type TaskRecord } from '@fc-async/core';

// Rows of schema 2 hold the record as core's compact JSON (encodeCompactRecord) and the request
// without its body (encodeRequestHead) in the `payload` column.

/**
 * A row as read: the `record` column, the body BLOB, and the `payload` column (schema 2; NULL
 * in rows written by schema 1, whose `record` holds the whole task with its payload).
 */
export interface Row {
  /** Selected by a listing (see `listSql`). */
  task_id?: string;
  record: string;
  body: Buffer;
  payload: string | null;
}

/** A task from its row, whichever schema wrote it. */
export function decodeRow(row: Row): TaskRecord {
  if (row.payload === null) {
    const record = JSON.parse(row.record) as TaskRecord;
    record.payload.body = row.body;
    return record;
  }
  const record = decodeCompactRecord(row.record) as TaskRecord;
  const payload = JSON.parse(row.payload) as CapturedRequest;
  payload.body = row.body;
  record.payload = payload;
  return record;
}

/**
 * A task without its request, from its `record` column alone, whichever schema wrote it: what
 * recovery reads of every unfinished task (see `SqliteTaskStore.unfinished`).
 */
export function decodeHead(text: string): Omit<TaskRecord, 'payload'> {
  const head = decodeCompactRecord(text) as Partial<TaskRecord>;
  // Schema 1 kept the request, without its body, in the record.
  if (head.payload !== undefined) delete head.payload;
  return head as Omit<TaskRecord, 'payload'>;
}
