import { join } from 'node:path';
import { type AsyncBackend, createFcHandler, type Logger, PQueueDriver, silentLogger } from '@fc-async/core';
import { asyncEvent } from '@fc-async/test-kit/fc-server';
import type Database from 'better-sqlite3';
import { afterEach, describe, expect, it } from 'vitest';
import { openDatabase } from '../src/database.js';
import { resolveSqliteOptions } from '../src/options.js';
import { SqliteTaskStore } from '../src/store.js';
import { tempDir } from './helpers.js';

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0)) await c();
});

async function until(what: string, check: () => boolean | Promise<boolean>, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`Timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

describe('engine: a store write that fails while a task runs (disk full), then works again', () => {
  it('every accepted task still reaches a terminal status with one destination call, in the same process', async () => {
    const { dir, cleanup } = tempDir();
    cleanups.push(cleanup);
    const path = join(dir, 'tasks.db');
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
    const full = db as Database.Database;
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
