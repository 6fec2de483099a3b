import {
  type AsyncBackend,
  FcAsyncError,
  PQueueDriver,
  pageTasks,
  patchedRecord,
  type TaskRecord,
  type TaskStore,
  transitionedRecord,
} from '@fc-async/core';
import { createHandler } from '@fc-async/express';
import express from 'express';

/** Your database: a row per task (the whole record, its body included) and a version to compare and set. */
export interface TaskTable {
  read(taskId: string): Promise<{ record: TaskRecord; version: number } | undefined>;
  /** Durable before it resolves; `false` when the id exists (a unique key). */
  create(record: TaskRecord): Promise<boolean>;
  /** Writes `record` only if the row is still at `version`; `false` when it changed meanwhile. */
  replace(record: TaskRecord, version: number): Promise<boolean>;
  all(): Promise<TaskRecord[]>;
}

/** A database error the caller may retry: 503 with Retry-After, not a bare 500. */
const unavailable = (cause: unknown) =>
  new FcAsyncError('TaskTableUnavailable', 'The task table did not answer', {
    statusCode: 503,
    retryAfterSeconds: 1,
    cause,
  });

function tableStore(table: TaskTable): TaskStore {
  // Every change is a compare-and-set, tried again when the row changed meanwhile.
  async function change(taskId: string, next: (current: TaskRecord) => TaskRecord | undefined) {
    for (;;) {
      const row = await table.read(taskId).catch((e) => Promise.reject(unavailable(e)));
      const changed = row && next(row.record);
      if (!row || !changed) return undefined;
      if (await table.replace(changed, row.version).catch((e) => Promise.reject(unavailable(e)))) return changed;
    }
  }
  return {
    insert: (record) => table.create(record).catch((e) => Promise.reject(unavailable(e))),
    get: async (taskId) => (await table.read(taskId).catch((e) => Promise.reject(unavailable(e))))?.record,
    transition: (taskId, status, options) => change(taskId, (r) => transitionedRecord(r, status, options)),
    // A field patched to `undefined` is cleared (patchedRecord leaves it out).
    update: async (taskId, patch) => void (await change(taskId, (r) => patchedRecord(r, patch))),
    // For a large table, filter and page in SQL with normaliseQuery, encodeCursor and decodeCursor.
    list: async (query) => pageTasks(await table.all(), query),
    unfinished: async () =>
      (await table.all())
        .filter(
          (r) => !['Succeeded', 'Failed', 'Stopped', 'Expired', 'Invalid'].includes(r.status) || r.deliveryPending,
        )
        .sort((a, b) => (a.startedTime ?? 0) - (b.startedTime ?? 0)),
  };
}

/** Persistent, with the in-process queue: on start the engine queues every unfinished task again. */
export function taskTable(table: TaskTable): AsyncBackend {
  return {
    name: 'task-table',
    persistent: true,
    create: ({ concurrency }) => ({ store: tableStore(table), queue: new PQueueDriver(concurrency) }),
  };
}

const app = express();
app.post('/exports', express.json(), (req, res) => {
  res.json({ table: req.body.table });
});
export const handlerOn = (table: TaskTable) => createHandler(app, { async: { backend: taskTable(table) } });
