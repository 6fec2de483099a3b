import { join } from 'node:path';
import { type AsyncTaskStatus, pageTasks, silentLogger, type TaskQuery, type TaskRecord } from '@fc-async/core';
import { afterEach, describe, expect, it } from 'vitest';
import { openDatabase } from '../src/database.js';
import { resolveSqliteOptions, type SqliteBackendOptions } from '../src/options.js';
import { SqliteTaskStore } from '../src/store.js';
import { record, tempDir } from './helpers.js';

const cleanups: (() => void)[] = [];
afterEach(() => {
  for (const c of cleanups.splice(0)) c();
});

function open(options: SqliteBackendOptions = {}, file?: string) {
  let path = file;
  if (!path) {
    const { dir, cleanup } = tempDir();
    path = join(dir, 'tasks.db');
    cleanups.push(cleanup);
  }
  const resolved = resolveSqliteOptions(path, options);
  const db = openDatabase(path, resolved);
  const store = new SqliteTaskStore(db, resolved, silentLogger);
  cleanups.unshift(() => {
    try {
      store.close();
    } catch {
      // already closed by the test
    }
  });
  return { store, path, db };
}

describe('SqliteTaskStore', () => {
  it('inserts a task once, committed when the promise resolves, and reads it back with its binary body', async () => {
    const { store, path } = open();
    const r = record('t_1', {
      traceContext: { traceparent: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01' },
    });
    expect(await store.insert(r)).toBe(true);
    expect(await store.insert(record('t_1'))).toBe(false);
    store.close();
    const { store: again } = open({}, path);
    const read = again.get('t_1');
    expect(read).toEqual(r);
    expect(Buffer.isBuffer(read?.payload.body)).toBe(true);
    expect(again.get('t_2')).toBeUndefined();
  });

  it('a write resolves only once its transaction has committed', async () => {
    const { store, db } = open();
    const first = store.insert(record('t_1'));
    const second = store.insert(record('t_2'));
    expect(db.inTransaction).toBe(true);
    expect(store.get('t_2')?.taskId).toBe('t_2'); // visible to reads at once
    let settled = false;
    void first.then(() => {
      settled = true;
    });
    await Promise.resolve();
    await Promise.resolve();
    expect(settled).toBe(false);
    expect(await second).toBe(true);
    expect(db.inTransaction).toBe(false);
    expect(settled).toBe(true);
  });

  it('transition is a compare-and-set on the status and appends events (with `via` first)', async () => {
    const { store } = open();
    await store.insert(record('t_1'));
    expect(await store.transition('t_1', 'Succeeded', { from: ['Running'] })).toBeUndefined();
    const running = await store.transition('t_1', 'Running', {
      from: ['Enqueued'],
      via: 'Dequeued',
      patch: { attempts: 1 },
    });
    expect(running?.status).toBe('Running');
    expect(running?.events.map((e) => [e.eventId, e.status])).toEqual([
      [1, 'Enqueued'],
      [2, 'Dequeued'],
      [3, 'Running'],
    ]);
    expect(running?.payload.body).toEqual(Buffer.from([0, 1, 2, 255]));
    expect(store.get('t_1')?.attempts).toBe(1);
    expect(await store.transition('nope', 'Running', { from: ['Enqueued'] })).toBeUndefined();
  });

  it('update sets fields and removes the ones patched to undefined', async () => {
    const { store } = open();
    await store.insert(record('t_1', { dueAt: 123, deliveryPending: true }));
    await store.update('t_1', { destinationStatus: 'Succeeded', deliveryPending: undefined, dueAt: undefined });
    const r = store.get('t_1') as TaskRecord;
    expect(r.destinationStatus).toBe('Succeeded');
    expect('deliveryPending' in r).toBe(false);
    expect('dueAt' in r).toBe(false);
  });

  it('unfinished: tasks not terminal, and finished ones whose destination call is pending', async () => {
    const { store } = open();
    const statuses: [string, AsyncTaskStatus, boolean?][] = [
      ['a', 'Enqueued'],
      ['b', 'Running'],
      ['c', 'Retrying'],
      ['d', 'Stopping'],
      ['e', 'Succeeded'],
      ['f', 'Failed', true],
      ['g', 'Stopped'],
    ];
    for (const [id, status, pending] of statuses) await store.insert(record(id, { status, deliveryPending: pending }));
    expect(store.unfinished().map((r) => r.taskId)).toEqual(['a', 'b', 'c', 'd', 'f']);
    await store.update('f', { deliveryPending: undefined });
    expect(store.unfinished().map((r) => r.taskId)).toEqual(['a', 'b', 'c', 'd']);
  });

  it('lists exactly as the in-memory store pages (filters, order, cursor)', async () => {
    const { store } = open();
    const all: TaskRecord[] = [];
    const statuses: AsyncTaskStatus[] = ['Enqueued', 'Succeeded', 'Failed', 'Running'];
    for (let i = 0; i < 60; i++) {
      // Several tasks share a start time so that the task id breaks ties.
      const r = record(`${i % 3 === 0 ? 'resize_' : 'job_'}${String(i).padStart(2, '0')}`, {
        startedTime: 1_700_000_000_000 + Math.floor(i / 4) * 1000,
        status: statuses[i % 4],
      });
      all.push(r);
      await store.insert(r);
    }
    const queries: TaskQuery[] = [
      {},
      { limit: 7 },
      { limit: 7, sortOrderByTime: 'asc' },
      { status: 'Succeeded', limit: 4 },
      { prefix: 'resize_', limit: 5, sortOrderByTime: 'asc' },
      { startedTimeBegin: 1_700_000_003_000, startedTimeEnd: 1_700_000_008_000, limit: 6 },
      { prefix: 'job_', status: 'Failed', limit: 3 },
      { prefix: 'none' },
    ];
    for (const query of queries) {
      let expected = pageTasks(all, query);
      let actual = store.list(query);
      let pages = 0;
      for (;;) {
        expect(actual.tasks.map((t) => t.taskId)).toEqual(expected.tasks.map((t) => t.taskId));
        expect(actual.nextToken).toBe(expected.nextToken);
        if (!expected.nextToken) break;
        pages++;
        expected = pageTasks(all, { ...query, nextToken: expected.nextToken });
        actual = store.list({ ...query, nextToken: actual.nextToken });
      }
      if (query.limit === 7) expect(pages).toBeGreaterThan(3);
    }
  });

  it('lists payload bodies only when asked', async () => {
    const { store } = open();
    await store.insert(record('t_1'));
    expect(store.list({}).tasks[0]?.payload.body.length).toBe(0);
    expect(store.list({ includePayload: true }).tasks[0]?.payload.body).toEqual(Buffer.from([0, 1, 2, 255]));
  });

  it('rejects a bad nextToken with 400 InvalidArgument', () => {
    const { store } = open();
    expect(() => store.list({ nextToken: 'garbage' })).toThrow(expect.objectContaining({ code: 'InvalidArgument' }));
  });

  it('prunes finished tasks past retentionMs, then the oldest past maxTasks, never unfinished ones', async () => {
    const { store } = open({ maxTasks: 600, retentionMs: 60_000 });
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
    await store.prune();
    const count = (status: AsyncTaskStatus) => {
      let total = 0;
      let page = store.list({ status, limit: 100 });
      for (;;) {
        total += page.tasks.length;
        if (!page.nextToken) return total;
        page = store.list({ status, limit: 100, nextToken: page.nextToken });
      }
    };
    expect(count('Succeeded')).toBe(0);
    expect(count('Failed')).toBe(600);
    expect(store.unfinished()).toHaveLength(5);
    expect(store.get('t_904')).toBeUndefined();
    expect(store.get('t_905')).toBeDefined();
    expect(await store.prune()).toBe(0);
  });

  it('prunes in steps that let other writes commit in between', async () => {
    const { store } = open({ maxTasks: 0 });
    await Promise.all(
      Array.from({ length: 2000 }, (_, i) => store.insert(record(`old_${i}`, { status: 'Succeeded', endTime: i }))),
    );
    let pruned = false;
    const pruning = store.prune().then(() => {
      pruned = true;
    });
    expect(await store.insert(record('new'))).toBe(true);
    expect(pruned).toBe(false);
    await pruning;
    expect(store.get('old_1999')).toBeUndefined();
    expect(store.get('new')).toBeDefined();
  });

  it('refuses a file another store holds, with SqliteStoreLocked', () => {
    const { path } = open();
    expect(() => open({ openTimeoutMs: 0 }, path)).toThrow(expect.objectContaining({ code: 'SqliteStoreLocked' }));
  });
});
