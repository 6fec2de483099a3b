import { join } from 'node:path';
import { type AsyncTaskStatus, pageTasks, silentLogger, type TaskQuery, type TaskRecord } from '@fc-async/core';
import Database from 'better-sqlite3';
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
    // A write that leaves the task unfinished (only its status and record change) lists it under its new status.
    await store.transition('a', 'Running', { from: ['Enqueued'] });
    expect(store.unfinished().map((r) => [r.taskId, r.status])).toContainEqual(['a', 'Running']);
    expect(store.list({ status: 'Running', sortOrderByTime: 'asc' }).tasks.map((r) => r.taskId)).toEqual(['a', 'b']);
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

  it('keeps every field of a task through a write and a reopen', async () => {
    const { store, path } = open();
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
    await store.insert(full);
    await store.update('t_full', { destinationStatus: 'Succeeded' });
    store.close();
    const { store: again } = open({}, path);
    expect(again.get('t_full')).toEqual({ ...full, destinationStatus: 'Succeeded' });
  });

  it('reads and updates the tasks of a file written by schema 1, and upgrades it', async () => {
    const { dir, cleanup } = tempDir();
    cleanups.push(cleanup);
    const path = join(dir, 'tasks.db');
    // A schema 1 file as @fc-async/sqlite 0.1 left it: the whole record as JSON, the body apart.
    const old = new Database(path);
    old.exec(`CREATE TABLE fc_async_tasks (task_id TEXT PRIMARY KEY NOT NULL, status TEXT NOT NULL,
        started_time INTEGER NOT NULL, end_time INTEGER, open INTEGER NOT NULL, record TEXT NOT NULL, body BLOB NOT NULL);
      CREATE INDEX fc_async_tasks_by_time ON fc_async_tasks (started_time, task_id);
      CREATE INDEX fc_async_tasks_open ON fc_async_tasks (open) WHERE open = 1;
      CREATE INDEX fc_async_tasks_ended ON fc_async_tasks (end_time) WHERE open = 0;
      PRAGMA user_version = 1;`);
    const waiting = record('t_old', { startedTime: 1_700_000_000_000 });
    const { body, ...payload } = waiting.payload;
    old
      .prepare('INSERT INTO fc_async_tasks VALUES (?, ?, ?, NULL, 1, ?, ?)')
      .run('t_old', 'Enqueued', 1_700_000_000_000, JSON.stringify({ ...waiting, payload }), body);
    old.close();

    const { store, db } = open({}, path);
    expect(db.pragma('user_version', { simple: true })).toBe(2);
    expect(store.get('t_old')).toEqual(waiting);
    expect(store.unfinished().map((r) => r.taskId)).toEqual(['t_old']);
    const running = await store.transition('t_old', 'Running', { from: ['Enqueued'], patch: { attempts: 1 } });
    expect(running?.payload.body).toEqual(body);
    await store.insert(record('t_new', { startedTime: 1_700_000_001_000 }));
    expect(store.list({ includePayload: true, sortOrderByTime: 'asc' }).tasks.map((t) => [t.taskId, t.status])).toEqual(
      [
        ['t_old', 'Running'],
        ['t_new', 'Enqueued'],
      ],
    );
  });

  it('commits an accepted task with synchronous FULL (flushed to disk), later progress with NORMAL', async () => {
    const { store, db } = open();
    const level = () => db.pragma('synchronous', { simple: true });
    const inserting = store.insert(record('t_1'));
    expect(level()).toBe(2);
    await inserting;
    const running = store.transition('t_1', 'Running', { from: ['Enqueued'] });
    expect(level()).toBe(1);
    await running;
    const second = store.insert(record('t_2'));
    expect(level()).toBe(2);
    await second;
    const { store: normal, db: normalDb } = open({ synchronous: 'normal' });
    await normal.insert(record('t_1'));
    expect(normalDb.pragma('synchronous', { simple: true })).toBe(1);
  });

  it("with synchronous 'normal', a write resolves only once committed, alone or with the others of its turn", async () => {
    const { store, db } = open({ synchronous: 'normal' });
    // The turn's first two writes (a quick task's claim and end, say): each committed on its own at once.
    const first = store.insert(record('t_1'));
    expect(db.inTransaction).toBe(false);
    const second = store.insert(record('t_2'));
    expect(db.inTransaction).toBe(false);
    // The turn's others: grouped, committed together later.
    const third = store.insert(record('t_3'));
    const fourth = store.update('t_1', { attempts: 1 });
    expect(db.inTransaction).toBe(true);
    let settled = false;
    void third.then(() => {
      settled = true;
    });
    await Promise.all([first, second]);
    await Promise.resolve();
    expect(settled).toBe(false);
    await Promise.all([third, fourth]);
    expect(db.inTransaction).toBe(false);
    expect(store.get('t_1')?.attempts).toBe(1);
    // The next turn: on its own again.
    const claiming = store.transition('t_2', 'Running', { from: ['Enqueued'] });
    expect(db.inTransaction).toBe(false);
    await claiming;
    const ending = store.transition('t_2', 'Succeeded', { from: ['Running'], patch: { endTime: Date.now() } });
    expect(db.inTransaction).toBe(false);
    expect((await ending)?.status).toBe('Succeeded');
    expect(store.unfinished().map((t) => t.taskId)).toEqual(['t_1', 't_3']);
  });

  it('refuses a file another store holds, with SqliteStoreLocked', () => {
    const { path } = open();
    expect(() => open({ openTimeoutMs: 0 }, path)).toThrow(expect.objectContaining({ code: 'SqliteStoreLocked' }));
  });
});
