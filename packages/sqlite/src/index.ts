import { type AsyncBackend, PQueueDriver } from '@fc-async/core';
import { openDatabase } from './database.js';
import { resolveSqliteOptions, type SqliteBackendOptions } from './options.js';
import { SqliteTaskStore } from './store.js';

export type { SqliteBackendOptions } from './options.js';

/**
 * The durable backend for one machine: tasks in one SQLite file (WAL), each committed before its
 * 202 is sent; on start every task not finished is recovered (queued ones run, delayed ones keep
 * their due time, an attempt cut short by a crash counts and is retried or sent to onFailure,
 * a destination call cut short is made). Attempts run in-process with the handler's
 * concurrency. One process owns a file: a second one fails with `SqliteStoreLocked`.
 *
 * @param path - The database file; its folder is created when missing.
 * @example
 * ```ts
 * import express from 'express';
 * import { createHandler } from '@fc-async/express';
 * import { sqlite } from '@fc-async/sqlite';
 *
 * const app = express();
 * export const handler = createHandler(app, { async: { backend: sqlite('./data/tasks.db') } });
 * ```
 */
export function sqlite(path: string, options?: SqliteBackendOptions): AsyncBackend {
  const resolved = resolveSqliteOptions(path, options);
  return {
    name: 'sqlite',
    persistent: true,
    create({ concurrency, logger }) {
      const db = openDatabase(path, resolved);
      try {
        return { store: new SqliteTaskStore(db, resolved, logger), queue: new PQueueDriver(concurrency) };
      } catch (error) {
        db.close(); // its exclusive lock would refuse the next try as "in use by another process"
        throw error;
      }
    },
  };
}
