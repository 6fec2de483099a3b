import { encodeCompactRecord, silentLogger, type TaskRecord } from '@fc-async/core';
import { leanListCase, type OpenTaskStore, taskRecord as record, taskStoreCases } from '@fc-async/test-kit/task-store';
import { Redis } from 'ioredis';
import { afterEach, describe, expect, inject, it, vi } from 'vitest';
import { bullmq } from '../src/index.js';
import { keysOf } from '../src/keys.js';
import { resolveBullmqOptions } from '../src/options.js';
import { Pruner } from '../src/prune.js';
import { jobIdOf } from '../src/queue.js';
import { RedisTaskStore } from '../src/store.js';
import { bullQueue, openStore, uniquePrefix, until } from './helpers.js';

const closers: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const close of closers.splice(0)) await close();
});

/** A store on `prefix`, closed after the test. */
async function storeOn(prefix: string): Promise<RedisTaskStore> {
  const { store, close } = await openStore(prefix);
  closers.push(close);
  return store;
}

async function stores(count: number) {
  const prefix = uniquePrefix();
  const opened = [];
  for (let i = 0; i < count; i++) opened.push(await storeOn(prefix));
  return opened;
}

/** The conformance table's view: a second store is another instance on the same prefix. */
const openTaskStore: OpenTaskStore = async (retention = {}) => {
  const prefix = uniquePrefix();
  const store = await storeOn(prefix);
  let pruner: Pruner | undefined;
  return {
    store,
    reopen: () => storeOn(prefix),
    prune() {
      if (!pruner) {
        const redis = new Redis(inject('redisUrl'));
        closers.push(async () => void (await redis.quit()));
        const options = resolveBullmqOptions({ connection: inject('redisUrl'), ...retention });
        const own = new Pruner(redis, keysOf(prefix), options, silentLogger, (ids) => store.forget(ids));
        closers.push(async () => own.stop());
        pruner = own;
      }
      return pruner.run();
    },
  };
};

describe('RedisTaskStore', () => {
  for (const { name, run } of [...taskStoreCases, leanListCase]) it(name, () => run(openTaskStore));

  it('transition is a compare-and-set: of two instances racing, exactly one wins', async () => {
    const [a, b] = await stores(2);
    await a?.insert(record('t_1'));
    await b?.get('t_1');
    const results = await Promise.all([
      a?.transition('t_1', 'Running', { from: ['Enqueued'], via: 'Dequeued', patch: { attempts: 1 } }),
      b?.transition('t_1', 'Stopped', { from: ['Enqueued'], patch: { endTime: 5 } }),
    ]);
    expect(results.filter(Boolean)).toHaveLength(1);
    const final = (await a?.get('t_1')) as TaskRecord;
    expect(final.status).toBe(results[0] ? 'Running' : 'Stopped');
    expect(final.events.map((e) => e.eventId)).toEqual(results[0] ? [1, 2, 3] : [1, 2]);
  });

  it('of two instances making the very same change at the same moment, only one is told it won', async () => {
    const [a, b] = await stores(2);
    await a?.insert(record('t_1'));
    await b?.get('t_1');
    // Two stops of a queued task in the same millisecond write byte-identical records.
    const now = vi.spyOn(Date, 'now').mockReturnValue(1_700_000_000_000);
    const stop = { from: ['Enqueued'] as const, patch: { endTime: 1_700_000_000_000, deliveryPending: true } };
    const results = await Promise.all([a?.transition('t_1', 'Stopped', stop), b?.transition('t_1', 'Stopped', stop)]);
    now.mockRestore();
    expect(results.filter(Boolean)).toHaveLength(1);
    expect((await a?.get('t_1'))?.events.map((e) => e.status)).toEqual(['Enqueued', 'Stopped']);
  });

  it('a task id deleted by retention and accepted again: an instance that cached the first task does not write over the second', async () => {
    const prefix = uniquePrefix();
    const a = await storeOn(prefix);
    const b = await storeOn(prefix);
    await b.insert(record('t_1', { requestId: 'first', startedTime: 1 })); // b keeps it, at its first version
    await a.transition('t_1', 'Succeeded', { from: ['Enqueued'], patch: { endTime: 2 } });
    const redis = new Redis(inject('redisUrl'));
    closers.push(async () => void (await redis.quit()));
    const options = resolveBullmqOptions({ connection: inject('redisUrl'), maxTasks: 0 });
    expect(await new Pruner(redis, keysOf(prefix), options, silentLogger, (ids) => a.forget(ids)).run()).toBe(1);
    expect(await a.insert(record('t_1', { requestId: 'second', startedTime: 3 }))).toBe(true);
    const claimed = await b.transition('t_1', 'Running', { from: ['Enqueued'], via: 'Dequeued' });
    expect(claimed?.requestId).toBe('second');
    const stored = await a.get('t_1');
    expect([stored?.requestId, stored?.status, stored?.events.map((e) => e.status)]).toEqual([
      'second',
      'Running',
      ['Enqueued', 'Dequeued', 'Running'],
    ]);
  });

  it("a task the queue refused, sent again: another instance's cached copy of the refused one writes nothing over the new one", async () => {
    const prefix = uniquePrefix();
    const a = await storeOn(prefix);
    const b = await storeOn(prefix);
    await a.insert(record('t_1', { requestId: 'first' }));
    await a.transition('t_1', 'Invalid', { from: ['Enqueued'], patch: { endTime: Date.now() } });
    expect((await b.get('t_1'))?.status).toBe('Invalid'); // b keeps its copy of the refused task
    expect(await a.insert(record('t_1', { requestId: 'second', startedTime: 3 }))).toBe(true);
    expect(b.lastSeen('t_1')?.requestId).toBe('first');
    // A write from b's copy: its version and token are the refused task's, not the new one's.
    await b.update('t_1', { destinationStatus: 'Succeeded' });
    const claimed = await b.transition('t_1', 'Running', { from: ['Enqueued'], via: 'Dequeued' });
    expect(claimed?.requestId).toBe('second');
    const stored = await a.get('t_1');
    expect([stored?.requestId, stored?.status, stored?.destinationStatus, stored?.events.map((e) => e.status)]).toEqual(
      ['second', 'Running', 'Succeeded', ['Enqueued', 'Dequeued', 'Running']],
    );
  });

  it('a task the queue refused keeps its id while a job of that id is in the queue (an enqueue whose reply was lost)', async () => {
    const prefix = uniquePrefix();
    const store = await storeOn(prefix);
    const queue = bullQueue(prefix, closers);
    for (const id of ['t_1', 't_2']) {
      await store.insert(record(id, { requestId: 'first' }));
      await store.transition(id, 'Invalid', { from: ['Enqueued'], patch: { endTime: Date.now() } });
    }
    // Their jobs made it into the queue after all: BullMQ would take the new tasks' adds for them.
    const jobs = await Promise.all(
      ['t_1', 't_2'].map((id) => queue.add('task', {}, { jobId: jobIdOf(id), delay: 60_000 })),
    );
    expect(await store.insert(record('t_1', { requestId: 'second' }))).toBe(false);
    expect(await Promise.all([store.insert(record('t_2')), store.insert(record('t_3'))])).toEqual([false, true]);
    expect((await store.get('t_1'))?.status).toBe('Invalid');
    // Once the job is gone, the id is taken again: alone, and in a burst.
    for (const job of jobs) await job.remove();
    expect(await store.insert(record('t_1', { requestId: 'second' }))).toBe(true);
    expect(await Promise.all([store.insert(record('t_2')), store.insert(record('t_4'))])).toEqual([true, true]);
    expect([(await store.get('t_1'))?.requestId, (await store.get('t_2'))?.status]).toEqual(['second', 'Enqueued']);
  });

  it('a write from a copy of a task that another instance ended and retention deleted finds the task gone, not an error', async () => {
    const prefix = uniquePrefix();
    const a = await storeOn(prefix);
    const b = await storeOn(prefix);
    await a.insert(record('t_1')); // a keeps its copy, Enqueued
    await b.transition('t_1', 'Succeeded', { from: ['Enqueued'], patch: { endTime: 2 } });
    const redis = new Redis(inject('redisUrl'));
    closers.push(async () => void (await redis.quit()));
    const options = resolveBullmqOptions({ connection: inject('redisUrl'), maxTasks: 0 });
    expect(await new Pruner(redis, keysOf(prefix), options, silentLogger, (ids) => b.forget(ids)).run()).toBe(1);
    // a's copy says Enqueued: a stop or a claim from it learns the task is gone, as for an unknown id.
    expect(await a.transition('t_1', 'Stopped', { from: ['Enqueued'], patch: { endTime: 3 } })).toBeUndefined();
    await a.insert(record('t_2'));
    await b.transition('t_2', 'Succeeded', { from: ['Enqueued'], patch: { endTime: 4 } });
    expect(await new Pruner(redis, keysOf(prefix), options, silentLogger, (ids) => b.forget(ids)).run()).toBe(1);
    await expect(a.update('t_2', { destinationStatus: 'Succeeded' })).resolves.toBeUndefined();
    expect([await a.get('t_1'), await a.get('t_2')]).toEqual([undefined, undefined]);
  });

  it('does not write over a write of an instance of the release before write tokens (a rolling upgrade)', async () => {
    const prefix = uniquePrefix();
    const store = await storeOn(prefix);
    await store.insert(record('t_1')); // the store keeps its copy: version 1, with its insert's token
    // An instance of the previous release claims the task: its compare-and-set bumped the version and
    // wrote the status and the record, and knew nothing of the token, which it left as it was.
    const redis = new Redis(inject('redisUrl'));
    closers.push(async () => void (await redis.quit()));
    const running = {
      ...record('t_1'),
      status: 'Running' as const,
      attempts: 1,
      events: [
        ...record('t_1').events,
        { eventId: 2, status: 'Dequeued' as const, timestamp: 2 },
        { eventId: 3, status: 'Running' as const, timestamp: 2 },
      ],
    };
    await redis.hset(keysOf(prefix).task('t_1'), 'v', '2', 's', 'Running', 'r', encodeCompactRecord(running));
    // A stop of the task as it was queued, decided on the store's copy, must not end it while it runs.
    expect(await store.transition('t_1', 'Stopped', { from: ['Enqueued'], patch: { endTime: 3 } })).toBeUndefined();
    const stopping = await store.transition('t_1', 'Stopping', { from: ['Running'] });
    expect(stopping?.events.map((e) => e.status)).toEqual(['Enqueued', 'Dequeued', 'Running', 'Stopping']);
  });

  it('retention leaves nothing of the tasks it deletes in Redis', async () => {
    const prefix = uniquePrefix();
    const store = await storeOn(prefix);
    await store.insert(record('t_kept', { startedTime: 1 }));
    for (const id of ['t_1', 't_2']) {
      await store.insert(record(id, { startedTime: 2 }));
      await store.transition(id, 'Succeeded', { from: ['Enqueued'], patch: { endTime: 3 } });
    }
    await store.insert(record('t_3', { status: 'Failed', startedTime: 2, endTime: 3 }));
    const redis = new Redis(inject('redisUrl'));
    closers.push(async () => void (await redis.quit()));
    const options = resolveBullmqOptions({ connection: inject('redisUrl'), maxTasks: 0 });
    expect(await new Pruner(redis, keysOf(prefix), options, silentLogger, (ids) => store.forget(ids)).run()).toBe(3);
    // Only the unfinished task is left: its record and its place in the indexes (the time index of
    // a long-lived function would otherwise grow by every task it ever ran).
    const keys = keysOf(prefix);
    expect((await redis.keys(`${prefix}:*`)).sort()).toEqual([keys.byTime, keys.open, keys.task('t_kept')].sort());
    expect(await redis.zrange(keys.byTime, 0, '-1')).toEqual(['t_kept']);
  });

  it('counts a compare-and-set that Redis applied as won when ioredis sends it again after a lost reply', async () => {
    const [store] = (await stores(1)) as [RedisTaskStore];
    await store.insert(record('t_1'));
    // The reply to the script is lost with the connection, and ioredis resends it on reconnecting:
    // the first run writes, the second finds the record at the next version, the one it wrote.
    const scripts = store as unknown as { redis: { fcAsyncCasBuffer(...args: string[]): Promise<unknown> } };
    const cas = scripts.redis.fcAsyncCasBuffer.bind(scripts.redis);
    scripts.redis.fcAsyncCasBuffer = async (...args) => {
      await cas(...args);
      return cas(...args);
    };
    const ended = await store.transition('t_1', 'Succeeded', { from: ['Enqueued'], patch: { endTime: 5 } });
    expect(ended?.status).toBe('Succeeded');
    expect((await store.get('t_1'))?.events.map((e) => e.status)).toEqual(['Enqueued', 'Succeeded']);
  });

  it('counts an insert that Redis applied as added when ioredis sends it again after a lost reply', async () => {
    const [store] = (await stores(1)) as [RedisTaskStore];
    const scripts = store as unknown as {
      redis: Record<'fcAsyncInsert' | 'fcAsyncInsertMany', (...args: unknown[]) => Promise<unknown>>;
    };
    for (const name of ['fcAsyncInsert', 'fcAsyncInsertMany'] as const) {
      const script = scripts.redis[name].bind(scripts.redis);
      scripts.redis[name] = async (...args) => {
        await script(...args);
        return script(...args);
      };
    }
    expect(await store.insert(record('t_1'))).toBe(true);
    expect(await Promise.all([store.insert(record('t_2')), store.insert(record('t_3'))])).toEqual([true, true]);
    // A second insert of a known id, even of the same record, is still refused.
    expect(await Promise.all([store.insert(record('t_1')), store.insert(record('t_4'))])).toEqual([false, true]);
    expect(await store.insert(record('t_2'))).toBe(false);
  });

  it('decides on fresh data when its cached copy is stale', async () => {
    const [a, b] = await stores(2);
    await a?.insert(record('t_1')); // a caches it as Enqueued
    await b?.transition('t_1', 'Running', { from: ['Enqueued'], via: 'Dequeued' });
    // a's copy says Enqueued; the task is Running: a must not start it again, and may stop it.
    expect(await a?.transition('t_1', 'Running', { from: ['Enqueued'] })).toBeUndefined();
    const stopping = await a?.transition('t_1', 'Stopping', { from: ['Running'] });
    expect(stopping?.events.map((e) => e.status)).toEqual(['Enqueued', 'Dequeued', 'Running', 'Stopping']);
    expect((await b?.get('t_1'))?.status).toBe('Stopping');
  });

  it('reads and updates records written by earlier versions (whole record, body in base64)', async () => {
    const prefix = uniquePrefix();
    const { store, close } = await openStore(prefix);
    closers.push(close);
    const redis = new Redis(inject('redisUrl'));
    closers.push(async () => void (await redis.quit()));
    const keys = keysOf(prefix);
    const old = record('t_old', { startedTime: 1_700_000_000_000 });
    await redis.hset(keys.task('t_old'), {
      v: '1',
      s: 'Enqueued',
      r: JSON.stringify({ ...old, payload: undefined }),
      p: JSON.stringify({ ...old.payload, body: old.payload.body.toString('base64') }),
    });
    await redis.zadd(keys.byTime, 1_700_000_000_000, 't_old');
    await redis.sadd(keys.open, 't_old');
    expect(await store.get('t_old')).toEqual(old);
    const running = await store.transition('t_old', 'Running', { from: ['Enqueued'], patch: { attempts: 1 } });
    expect(running?.payload.body).toEqual(old.payload.body);
    const listed = await store.list({ includePayload: true });
    expect(listed.tasks.map((t) => [t.taskId, t.status, t.payload.body])).toEqual([
      ['t_old', 'Running', old.payload.body],
    ]);
  });

  it('an accept-only instance keeps no copy of what it inserts (memory, and GC per accept); one with a worker does', async () => {
    const prefix = uniquePrefix();
    const redis = new Redis(inject('redisUrl'));
    const acceptOnly = new RedisTaskStore(redis, redis.duplicate(), keysOf(prefix), false);
    closers.push(() => acceptOnly.close());
    const runner = await storeOn(prefix);
    expect(await acceptOnly.insert(record('t_1'))).toBe(true);
    expect(acceptOnly.lastSeen('t_1')).toBeUndefined();
    expect(await runner.insert(record('t_2'))).toBe(true);
    expect(runner.lastSeen('t_2')?.status).toBe('Enqueued');
    // Its writes read first, and see the task as every instance does.
    expect((await acceptOnly.peek('t_1'))?.status).toBe('Enqueued');
    await runner.transition('t_1', 'Running', { from: ['Enqueued'], via: 'Dequeued' });
    const stopping = await acceptOnly.transition('t_1', 'Stopping', { from: ['Running'] });
    expect(stopping?.events.map((e) => e.status)).toEqual(['Enqueued', 'Dequeued', 'Running', 'Stopping']);
  });

  it('keeps copies of at most 10,000 tasks, the oldest going first (a worker running for months)', async () => {
    const [store] = (await stores(1)) as [RedisTaskStore];
    const ids = Array.from({ length: 10_001 }, (_, i) => `t_${i}`);
    const added = await Promise.all(ids.map((id) => store.insert(record(id))));
    expect(added.every(Boolean)).toBe(true);
    expect(ids.filter((id) => store.lastSeen(id) !== undefined)).toEqual(ids.slice(1));
    // A task no longer kept is read again when needed.
    expect((await store.peek('t_0'))?.status).toBe('Enqueued');
  });

  it('bullmq() keeps the inserted tasks only on instances with a worker', async () => {
    const prefix = uniquePrefix();
    const seen: (string | undefined)[] = [];
    for (const worker of [false, true]) {
      const { store, queue } = await bullmq({ connection: inject('redisUrl'), prefix, worker }).create({
        concurrency: 1,
        logger: silentLogger,
      });
      closers.push(async () => {
        await queue.close();
        await store.close?.();
      });
      const taskId = worker ? 't_worker' : 't_api';
      expect(await store.insert(record(taskId))).toBe(true);
      seen.push((store as RedisTaskStore).lastSeen(taskId)?.taskId);
    }
    expect(seen).toEqual([undefined, 't_worker']);
  });

  it('bullmq(): a closed instance prunes no more (its connections are gone): no error logged after close', async () => {
    const errors: string[] = [];
    const logger = { ...silentLogger, error: (message: string) => void errors.push(message) };
    const backend = bullmq({ connection: inject('redisUrl'), prefix: uniquePrefix(), pruneIntervalMs: 50 });
    const { store, queue } = await backend.create({ concurrency: 1, logger });
    await queue.close();
    await store.close?.();
    await new Promise((resolve) => setTimeout(resolve, 500)); // ten prune intervals
    expect(errors).toEqual([]);
  });

  it('stores a body as its very bytes, whether UTF-8 text (sent as a string) or not', async () => {
    const prefix = uniquePrefix();
    const [a, b] = [await storeOn(prefix), await storeOn(prefix)];
    const redis = new Redis(inject('redisUrl'));
    closers.push(async () => void (await redis.quit()));
    const bodies = {
      t_text: Buffer.from('{"name":"héllo → 世界 🎉"}\n', 'utf8'),
      t_bom: Buffer.from([0xef, 0xbb, 0xbf, 0x7b, 0x7d]),
      t_empty: Buffer.alloc(0),
      t_latin1: Buffer.from('caf\u00e9', 'latin1'),
      t_surrogate: Buffer.from([0xed, 0xa0, 0x80]),
    };
    for (const [id, body] of Object.entries(bodies)) {
      const r = record(id);
      expect(await a.insert({ ...r, payload: { ...r.payload, body } })).toBe(true);
    }
    for (const [id, body] of Object.entries(bodies)) {
      expect((await b.get(id))?.payload.body).toEqual(body);
      expect(await redis.hgetBuffer(keysOf(prefix).task(id), 'b')).toEqual(body);
    }
  });

  it('carries a stop request to every instance', async () => {
    const [a, b, c] = await stores(3);
    const heard: string[] = [];
    b?.onStopRequested((id) => heard.push(`b:${id}`));
    c?.onStopRequested((id) => heard.push(`c:${id}`));
    await a?.requestStop('t_9');
    await until('both instances to hear the stop', () => heard.length === 2, 5000);
    expect(heard.sort()).toEqual(['b:t_9', 'c:t_9']);
  });
});

/** The bytes a record's body keeps from being collected: its own, or the whole buffer it is a view of. */
function keptBytes(record: { payload: { body: Buffer } } | undefined): number {
  return record?.payload.body.buffer.byteLength ?? 0;
}

describe('records the Redis store keeps: the task, not the connection buffer it was read from', () => {
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
        const task = record(id);
        task.payload.body = body;
        return accepting.insert(task);
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
