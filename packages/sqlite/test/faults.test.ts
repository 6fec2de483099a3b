import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  type AsyncBackend,
  createFcHandler,
  type FcHandler,
  type Logger,
  PQueueDriver,
  silentLogger,
  TERMINAL_STATUSES,
} from '@fc-async/core';
import { asyncEvent } from '@fc-async/test-kit/fc-server';
import type Database from 'better-sqlite3';
import { afterEach, describe, expect, it } from 'vitest';
import { openDatabase } from '../src/database.js';
import { sqlite } from '../src/index.js';
import { resolveSqliteOptions } from '../src/options.js';
import { SqliteTaskStore } from '../src/store.js';
import { tempDir, until } from './helpers.js';

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0)) await c();
});

function folder(): string {
  const { dir, cleanup } = tempDir();
  cleanups.push(cleanup);
  return dir;
}

/** `sqlite(path)` that hands the test its connection, to set a size limit on it (a full disk). */
function sqliteWithConnection(path: string): { backend: AsyncBackend; db: () => Database.Database } {
  let db: Database.Database | undefined;
  const backend: AsyncBackend = {
    name: 'sqlite',
    persistent: true,
    create({ concurrency, logger }) {
      const options = resolveSqliteOptions(path, {});
      db = openDatabase(path, options);
      return { store: new SqliteTaskStore(db, options, logger), queue: new PQueueDriver(concurrency) };
    },
  };
  return { backend, db: () => db as Database.Database };
}

describe('sqlite(): faults of the task file', () => {
  it('a path that cannot be a task database fails with SqliteStoreUnavailable naming it; the file is left as it was', async () => {
    const dir = folder();
    const garbage = join(dir, 'garbage.db');
    const bytes = Buffer.alloc(8192, 0x41);
    writeFileSync(garbage, bytes);
    const plainFile = join(dir, 'plain');
    writeFileSync(plainFile, 'x');
    mkdirSync(join(dir, 'folder.db'));
    // Below /proc, Node's recursive mkdir never returns: the folder is made one level at a time.
    for (const path of [garbage, join(plainFile, 'tasks.db'), join(dir, 'folder.db'), '/proc/fc-async-x/tasks.db']) {
      const handler = createFcHandler((_req, res) => res.end(), {
        logger: silentLogger,
        env: {},
        async: { mode: 'local', backend: sqlite(path) },
      });
      // The start failed: whenReady() rejects with it, and async requests are answered it (503).
      await expect(handler.engine?.whenReady()).rejects.toMatchObject({
        code: 'SqliteStoreUnavailable',
        statusCode: 503,
        message: expect.stringContaining(`Cannot open the task file ${path}: `),
      });
      await handler.close();
    }
    expect(readFileSync(garbage)).toEqual(bytes);
  });

  it('says what SQLite leaves out: a folder given as the task file is named a folder', async () => {
    const path = join(folder(), 'folder.db');
    mkdirSync(path);
    const handler = createFcHandler((_req, res) => res.end(), {
      logger: silentLogger,
      env: {},
      async: { mode: 'local', backend: sqlite(path) },
    });
    await expect(handler.engine?.whenReady()).rejects.toThrow(
      new RegExp(`^Cannot open the task file ${path}: .*\\(SQLITE_CANTOPEN\\): it is a folder$`),
    );
    await handler.close();
  });

  it('a full disk mid-burst: each request gets 202 or 503 SqliteWriteFailed; every 202 runs once after a restart, no 503 does', async () => {
    const path = join(folder(), 'tasks.db');
    const calls = new Map<string, number>();
    const count = (requestId: string) => calls.set(requestId, (calls.get(requestId) ?? 0) + 1);
    const open = (backend: AsyncBackend): FcHandler => {
      const handler = createFcHandler((_req, res) => res.end('ok'), {
        logger: silentLogger,
        env: {},
        async: { mode: 'local', backend },
        destinations: { onSuccess: (r) => void count(r.requestContext.requestId) },
      });
      cleanups.unshift(() => handler.close({ timeoutMs: 100 }));
      return handler;
    };

    const { backend, db } = sqliteWithConnection(path);
    const first = open(backend);
    await first.engine?.whenReady();
    // Room for a few tasks only: SQLite answers SQLITE_FULL past it, as on a full disk.
    db().pragma(`max_page_count = ${(db().pragma('page_count', { simple: true }) as number) + 8}`);
    const accepted: string[] = [];
    const refused: string[] = [];
    for (let turn = 0; turn < 10; turn++) {
      const ids = Array.from({ length: 20 }, (_, i) => `t_${turn}_${i}`);
      // Delayed so that nothing runs in this process: the next one runs what this one accepted.
      const results = await Promise.all(
        ids.map((id) => first(asyncEvent(id, { pad: 'x'.repeat(2000) }, { 'X-Fc-Async-Delay': '1' }))),
      );
      for (const [i, result] of results.entries()) {
        const id = ids[i] as string;
        if (result.statusCode === 202) {
          accepted.push(id);
          continue;
        }
        expect({
          status: result.statusCode,
          retryAfter: result.headers['retry-after'],
          body: JSON.parse(result.body),
        }).toEqual({
          status: 503,
          retryAfter: '1',
          body: {
            code: 'SqliteWriteFailed',
            message: 'The task store could not commit the write (SQLITE_FULL); retry later',
          },
        });
        refused.push(id);
      }
    }
    expect(accepted.length).toBeGreaterThan(0);
    expect(refused.length).toBeGreaterThan(0);
    await first.close({ timeoutMs: 10 });

    const second = open(sqlite(path));
    await second.engine?.whenReady();
    await second.drain();
    for (const id of accepted) {
      const task = await second.tasks.get(id);
      expect(TERMINAL_STATUSES.has(task?.status ?? 'Enqueued')).toBe(true);
      expect([task?.status, calls.get(task?.requestId ?? '')]).toEqual(['Succeeded', 1]);
    }
    for (const id of refused) expect(await second.tasks.get(id)).toBeUndefined();
  });
});

describe('engine: a store write that fails while a task runs (disk full), then works again', () => {
  it('every accepted task still reaches a terminal status with one destination call, in the same process', async () => {
    const { backend, db } = sqliteWithConnection(join(folder(), 'tasks.db'));
    let bookkeepingErrors = 0;
    const logger: Logger = {
      ...silentLogger,
      error: (message) => {
        if (message === 'async task bookkeeping failed') bookkeepingErrors++;
      },
    };
    let runs = 0;
    const calls = new Map<string, number>();
    const handler = createFcHandler(
      (_req, res) => {
        runs++;
        res.end('y'.repeat(3000)); // the task's end grows its row: a new page, refused below
      },
      {
        logger,
        env: {},
        async: { mode: 'local', backend, backoff: { baseMs: 1, maxMs: 2 } },
        destinations: {
          onSuccess: (r) =>
            void calls.set(r.requestContext.requestId, (calls.get(r.requestContext.requestId) ?? 0) + 1),
        },
      },
    );
    cleanups.unshift(() => handler.close({ timeoutMs: 100 }));
    await handler.engine?.whenReady();
    const ids = Array.from({ length: 6 }, (_, i) => `t_${i}`);
    for (const id of ids) expect((await handler(asyncEvent(id, {}, { 'X-Fc-Async-Delay': '1' }))).statusCode).toBe(202);
    const full = db();
    full.pragma(`max_page_count = ${full.pragma('page_count', { simple: true }) as number}`);
    await until('the attempts to run and their ends to fail', () => runs >= ids.length && bookkeepingErrors > 0);
    full.pragma('max_page_count = 1000000'); // space again

    await until('every task to end', async () => {
      const tasks = await Promise.all(ids.map((id) => handler.tasks.get(id)));
      return tasks.every((t) => t?.status === 'Succeeded' && t.destinationStatus === 'Succeeded');
    });
    for (const id of ids) expect(calls.get((await handler.tasks.get(id))?.requestId ?? '')).toBe(1);
    await handler.drain(); // nothing left counted as outstanding
  });
});
