import { join } from 'node:path';
import { silentLogger } from '@fc-async/core';
import { taskRecord as record } from '@fc-async/test-kit/task-store';
import { afterEach, describe, expect, it } from 'vitest';
import { openDatabase } from '../src/database.js';
import { resolveSqliteOptions, type SqliteBackendOptions } from '../src/options.js';
import { SqliteTaskStore } from '../src/store.js';
import { tempDir } from './helpers.js';

const cleanups: (() => void)[] = [];
afterEach(() => {
  for (const c of cleanups.splice(0)) c();
});

const MiB = 1024 * 1024;

function open(options: SqliteBackendOptions): { store: SqliteTaskStore; count: () => number } {
  const { dir, cleanup } = tempDir();
  cleanups.push(cleanup);
  const path = join(dir, 'tasks.db');
  const resolved = resolveSqliteOptions(path, options);
  const db = openDatabase(path, resolved);
  const store = new SqliteTaskStore(db, resolved, silentLogger);
  cleanups.unshift(() => store.close());
  // This connection's own view: the deletes of the turn's open transaction included.
  const count = db.prepare('SELECT count(*) FROM fc_async_tasks').pluck();
  return { store, count: () => count.get() as number };
}

describe('sqlite(): pruning finished tasks of large requests', () => {
  // SQLite reads every page of a body it deletes: 500 tasks of 6 MB in one turn held every
  // request up for seconds (200 of them: 1.4 s). A turn deletes at most 8 MiB of bodies.
  // Ended long ago (retention), or just now (the count).
  const cases: [string, SqliteBackendOptions, boolean][] = [
    ['older than retentionMs', { retentionMs: 1000 }, true],
    ['past maxTasks', { maxTasks: 0 }, false],
  ];
  it.each(cases)(
    '%s: deletes at most 8 MiB of request bodies in one turn of the event loop, and all of them in the pass',
    async (_, options, old) => {
      const { store, count } = open(options);
      await store.prune();
      const body = Buffer.alloc(3 * MiB, 0x61);
      for (let i = 0; i < 10; i++) {
        const task = record(`big_${i}`, { status: 'Succeeded', endTime: (old ? 1_000 : Date.now()) + i, attempts: 1 });
        task.payload.body = body;
        await store.insert(task);
      }
      expect(count()).toBe(10);
      let done = false;
      const pass = store.prune().then((deleted) => {
        done = true;
        return deleted;
      });
      const perTurn: number[] = [];
      let before = count();
      for (let turns = 0; !done && turns < 1000; turns++) {
        await new Promise((resolve) => setImmediate(resolve));
        const now = count();
        if (now < before) perTurn.push(before - now);
        before = now;
      }
      expect(await pass).toBe(10);
      expect(count()).toBe(0);
      // 3 MiB each: two fit in 8 MiB, a third does not.
      expect(Math.max(...perTurn)).toBe(2);
    },
  );

  it('deletes a task whose body alone is past the bound, one a turn', async () => {
    const { store, count } = open({ maxTasks: 0 });
    await store.prune();
    const body = Buffer.alloc(9 * MiB, 0x62);
    for (let i = 0; i < 3; i++) {
      const task = record(`huge_${i}`, { status: 'Succeeded', endTime: Date.now() + i, attempts: 1 });
      task.payload.body = body;
      await store.insert(task);
    }
    expect(await store.prune()).toBe(3);
    expect(count()).toBe(0);
  });
});
