import { statSync } from 'node:fs';
import { join } from 'node:path';
import { silentLogger } from '@fc-async/core';
import { taskRecord as record } from '@fc-async/test-kit/task-store';
import { afterEach, describe, expect, it } from 'vitest';
import { openDatabase } from '../src/database.js';
import { resolveSqliteOptions } from '../src/options.js';
import { SqliteTaskStore } from '../src/store.js';
import { tempDir } from './helpers.js';

const cleanups: (() => void)[] = [];
afterEach(() => {
  for (const c of cleanups.splice(0)) c();
});

const MiB = 1024 * 1024;

describe('sqlite(): the -wal after a burst of large requests', () => {
  // The -wal grows to hold a group commit (every accept of a turn) and SQLite reuses it from the
  // start after a checkpoint without making it smaller: a burst of 190 MB of requests left a
  // 190 MB -wal beside the file until the process ended.
  it('is cut back to 64 MiB once its frames are checkpointed, rather than keeping the size of the largest commit', async () => {
    const { dir, cleanup } = tempDir();
    cleanups.push(cleanup);
    const path = join(dir, 'tasks.db');
    const options = resolveSqliteOptions(path, {});
    const store = new SqliteTaskStore(openDatabase(path, options), options, silentLogger);
    cleanups.unshift(() => store.close());
    const body = Buffer.alloc(6 * MiB, 0x61);
    // One turn: one commit of 84 MiB.
    await Promise.all(
      Array.from({ length: 14 }, (_, i) => {
        const task = record(`big_${i}`);
        task.payload.body = body;
        return store.insert(task);
      }),
    );
    expect(statSync(`${path}-wal`).size).toBeGreaterThan(80 * MiB);
    // The next commits start the -wal over (the burst was checkpointed as it committed).
    await store.insert(record('small_1'));
    await store.insert(record('small_2'));
    expect(statSync(`${path}-wal`).size).toBeLessThanOrEqual(64 * MiB);
    // Buffer.equals: a deep equality of 6 MiB compares byte by byte for a long time.
    expect(store.get('big_13')?.payload.body.equals(body)).toBe(true);
  });
});
