import type { TaskRecord } from '@fc-async/core';
import type { TaskTable } from './custom-backend.js';

/** The custom-backend snippet's table in memory: rows copied in and out, as a database reads them back. */
export function memoryTable(): TaskTable & { rows: Map<string, { record: TaskRecord; version: number }> } {
  const rows = new Map<string, { record: TaskRecord; version: number }>();
  const copy = (r: TaskRecord): TaskRecord => ({ ...r, events: r.events.map((e) => ({ ...e })) });
  return {
    rows,
    read: async (taskId) => {
      const row = rows.get(taskId);
      return row && { record: copy(row.record), version: row.version };
    },
    create: async (record) => {
      if (rows.has(record.taskId)) return false;
      rows.set(record.taskId, { record: copy(record), version: 1 });
      return true;
    },
    replace: async (record, version) => {
      const row = rows.get(record.taskId);
      if (row?.version !== version) return false;
      rows.set(record.taskId, { record: copy(record), version: version + 1 });
      return true;
    },
    all: async () => [...rows.values()].map((row) => copy(row.record)),
  };
}
