import { type AsyncTaskStatus, pageTasks, silentLogger, type TaskQuery, type TaskRecord } from '@fc-async/core';
import { Redis } from 'ioredis';
import { afterEach, describe, expect, inject, it } from 'vitest';
import { keysOf } from '../src/keys.js';
import { resolveBullmqOptions } from '../src/options.js';
import { Pruner } from '../src/prune.js';
import { openStore, record, uniquePrefix, until } from './helpers.js';

const closers: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const close of closers.splice(0)) await close();
});

async function stores(count: number) {
  const prefix = uniquePrefix();
  const opened = [];
  for (let i = 0; i < count; i++) {
    const s = await openStore(prefix);
    closers.push(s.close);
    opened.push(s.store);
  }
  return opened;
}

describe('RedisTaskStore', () => {
  it('inserts a task id once across instances and reads it back, binary body included', async () => {
    const [a, b] = await stores(2);
    const r = record('t_1', {
      traceContext: { traceparent: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01' },
    });
    expect(await a?.insert(r)).toBe(true);
    expect(await b?.insert(record('t_1'))).toBe(false);
    expect(await b?.get('t_1')).toEqual(r);
    expect(await b?.get('t_2')).toBeUndefined();
  });

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

  it('update sets fields and drops the ones patched to undefined', async () => {
    const [a] = await stores(1);
    await a?.insert(record('t_1', { status: 'Succeeded', endTime: 1, deliveryPending: true }));
    await a?.update('t_1', { destinationStatus: 'Succeeded', deliveryPending: undefined });
    const r = (await a?.get('t_1')) as TaskRecord;
    expect(r.destinationStatus).toBe('Succeeded');
    expect('deliveryPending' in r).toBe(false);
  });

  it('unfinished: tasks not terminal, and finished ones whose destination call is pending', async () => {
    const [a] = await stores(1);
    const statuses: [string, AsyncTaskStatus, boolean?][] = [
      ['a', 'Enqueued'],
      ['b', 'Running'],
      ['c', 'Succeeded'],
      ['d', 'Failed', true],
    ];
    let t = 1000;
    for (const [id, status, pending] of statuses) {
      await a?.insert(record(id, { status, deliveryPending: pending, startedTime: t++ }));
    }
    expect((await a?.unfinished())?.map((r) => r.taskId)).toEqual(['a', 'b', 'd']);
    await a?.transition('a', 'Stopped', { from: ['Enqueued'], patch: { endTime: 1 } });
    expect((await a?.unfinished())?.map((r) => r.taskId)).toEqual(['b', 'd']);
  });

  it('lists exactly as the in-memory store pages (filters, order, cursor)', async () => {
    const [a] = await stores(1);
    const all: TaskRecord[] = [];
    const statuses: AsyncTaskStatus[] = ['Enqueued', 'Succeeded', 'Failed', 'Running'];
    for (let i = 0; i < 450; i++) {
      const r = record(`${i % 3 === 0 ? 'resize_' : 'job_'}${String(i).padStart(3, '0')}`, {
        startedTime: 1_700_000_000_000 + Math.floor(i / 4) * 1000,
        status: statuses[i % 4],
      });
      all.push(r);
      await a?.insert(r);
    }
    const queries: TaskQuery[] = [
      {},
      { limit: 100 },
      { limit: 100, sortOrderByTime: 'asc' },
      { status: 'Succeeded', limit: 30 },
      { prefix: 'resize_', limit: 40, sortOrderByTime: 'asc' },
      { startedTimeBegin: 1_700_000_003_000, startedTimeEnd: 1_700_000_008_000, limit: 6 },
      { prefix: 'job_', status: 'Failed', limit: 3 },
      { prefix: 'none' },
    ];
    for (const query of queries) {
      let expected = pageTasks(all, query);
      let actual = await a?.list(query);
      for (;;) {
        expect(actual?.tasks.map((t) => t.taskId)).toEqual(expected.tasks.map((t) => t.taskId));
        expect(actual?.nextToken).toBe(expected.nextToken);
        if (!expected.nextToken) break;
        expected = pageTasks(all, { ...query, nextToken: expected.nextToken });
        actual = await a?.list({ ...query, nextToken: actual?.nextToken });
      }
    }
    const withPayload = await a?.list({ limit: 1, includePayload: true });
    expect(withPayload?.tasks[0]?.payload.body).toEqual(Buffer.from([0, 1, 2, 255]));
  });

  it('keeps every field of a task, and takes a burst of inserts in one turn with duplicates refused', async () => {
    const [a, b] = await stores(2);
    // Required<>: a field added to TaskRecord makes this test name it, and the codec keep it.
    const full: Required<TaskRecord> = {
      ...record('t_full'),
      status: 'Succeeded',
      instanceId: 'i-1',
      startedTime: 1_700_000_000_000,
      endTime: 1_700_000_001_000,
      durationMs: 1000,
      alreadyRetriedTimes: 2,
      destinationStatus: 'Failed',
      taskErrorMessage: 'boom "quoted" \\ \n',
      taskPayload: '{"x":1}',
      returnPayload: 'done ✓',
      events: [
        { eventId: 1, status: 'Enqueued', timestamp: 1_700_000_000_000, eventDetail: '' },
        { eventId: 2, status: 'Succeeded', timestamp: 1_700_000_001_000 },
      ],
      traceId: '0af7651916cd43dd8448eb211c80319c',
      acceptedAt: 1_699_999_999_000,
      attempts: 3,
      dueAt: 1_700_000_000_500,
      condition: '',
      traceContext: { traceparent: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01' },
      deliveryPending: true,
      payload: {
        method: 'PUT',
        url: '/a%20b?x=1',
        headers: { 'x-multi': ['a', 'b'], 'content-type': 'application/octet-stream' },
        body: Buffer.from([0, 255, 10]),
        remoteAddress: '203.0.113.7',
      },
    };
    // One turn: the inserts go out together; the id inserted twice is refused the second time.
    const added = await Promise.all([
      a?.insert(full),
      a?.insert(record('t_1')),
      a?.insert(record('t_1')),
      a?.insert(record('t_2')),
    ]);
    expect(added).toEqual([true, true, false, true]);
    await a?.update('t_full', { destinationStatus: 'Succeeded' });
    expect(await b?.get('t_full')).toEqual({ ...full, destinationStatus: 'Succeeded' });
    expect((await b?.unfinished())?.map((r) => r.taskId).sort()).toEqual(['t_1', 't_2', 't_full']);
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

  it('carries a stop request to every instance', async () => {
    const [a, b, c] = await stores(3);
    const heard: string[] = [];
    b?.onStopRequested((id) => heard.push(`b:${id}`));
    c?.onStopRequested((id) => heard.push(`c:${id}`));
    await a?.requestStop('t_9');
    await until('both instances to hear the stop', () => heard.length === 2, 5000);
    expect(heard.sort()).toEqual(['b:t_9', 'c:t_9']);
  });

  it('prunes finished tasks past retentionMs, then the oldest past maxTasks, never unfinished ones', async () => {
    const prefix = uniquePrefix();
    const { store, close } = await openStore(prefix);
    closers.push(close);
    const now = Date.now();
    let n = 0;
    const add = async (count: number, status: AsyncTaskStatus, endTime: (i: number) => number | undefined) => {
      await Promise.all(
        Array.from({ length: count }, (_, i) => store.insert(record(`t_${n++}`, { status, endTime: endTime(i) }))),
      );
    };
    await add(700, 'Succeeded', () => now - 120_000); // past retention: all go
    await add(5, 'Enqueued', () => undefined); // unfinished: stay
    await add(800, 'Failed', (i) => now - 50_000 + i); // within retention: the 200 that ended first go
    const redis = new Redis(inject('redisUrl'));
    closers.push(async () => void (await redis.quit()));
    const options = resolveBullmqOptions({ connection: inject('redisUrl'), maxTasks: 600, retentionMs: 60_000 });
    const pruner = new Pruner(redis, keysOf(prefix), options, silentLogger, (ids) => store.forget(ids));
    closers.push(async () => pruner.stop());
    expect(await pruner.run()).toBe(900);
    expect(await pruner.run()).toBe(0);
    expect(await store.get('t_0')).toBeUndefined();
    expect(await store.get('t_904')).toBeUndefined();
    expect(await store.get('t_905')).toBeDefined();
    expect(await store.unfinished()).toHaveLength(5);
    let listed = 0;
    let page = await store.list({ limit: 100 });
    for (;;) {
      listed += page.tasks.length;
      if (!page.nextToken) break;
      page = await store.list({ limit: 100, nextToken: page.nextToken });
    }
    expect(listed).toBe(605);
  });
});
