/**
 * Bounds a long-lived instance relies on: what the Redis store keeps of a task must be the task,
 * not the connection's buffers it was read from.
 */
import { taskRecord } from '@fc-async/test-kit/task-store';
import { afterEach, describe, expect, it } from 'vitest';
import type { RedisTaskStore } from '../src/store.js';
import { openStore, uniquePrefix } from './helpers.js';

const closers: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const close of closers.splice(0)) await close();
});

async function storeOn(prefix: string): Promise<RedisTaskStore> {
  const { store, close } = await openStore(prefix);
  closers.push(close);
  return store;
}

/** The bytes a record's body keeps from being collected: its own, or the whole buffer it is a view of. */
function keptBytes(record: { payload: { body: Buffer } } | undefined): number {
  return record?.payload.body.buffer.byteLength ?? 0;
}

describe('records the Redis store keeps', () => {
  // ioredis hands a reply's bulk strings as views of the connection's read buffer: one read in a
  // burst holds many replies (up to 64 KB). A record kept in the store's cache (up to 10,000) for
  // a task read by this instance (another instance's task it runs, a tasks.get, a delayed retry)
  // kept the whole buffer alive through its body: up to 64 KB for a body of 100 bytes.
  it('a record read in a burst keeps its own body, not the connection buffer it came in', async () => {
    const prefix = uniquePrefix();
    const accepting = await storeOn(prefix);
    const running = await storeOn(prefix);
    const ids = Array.from({ length: 500 }, (_, i) => `task_${i}`);
    const body = Buffer.alloc(100, 'x');
    const inserted = await Promise.all(
      ids.map((id) => {
        const record = taskRecord(id);
        record.payload.body = body;
        return accepting.insert(record);
      }),
    );
    expect(inserted.every(Boolean)).toBe(true);
    // The other instance reads them all at once, as a worker taking a burst of tasks does.
    const read = await Promise.all(ids.map((id) => running.get(id)));
    expect(read.map((r) => r?.payload.body.toString())).toEqual(ids.map(() => body.toString()));
    // What its cache keeps for each: the body's bytes, at most in Node's shared pool slab for small buffers.
    const oversized = ids.filter((id) => keptBytes(running.lastSeen(id)) > Buffer.poolSize);
    expect(oversized).toEqual([]);
  });
});
