import { join } from 'node:path';
import { silentLogger, type TaskQuery } from '@fc-async/core';
import { leanListCase, type OpenTaskStore, taskRecord as record, taskStoreCases } from '@fc-async/test-kit/task-store';
import Database from 'better-sqlite3';
import { afterEach, describe, expect, it } from 'vitest';
import { openDatabase } from '../src/database.js';
import { resolveSqliteOptions, type SqliteBackendOptions } from '../src/options.js';
import { SqliteTaskStore } from '../src/store.js';
import { tempDir } from './helpers.js';

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

/** The conformance table's view: a second store is the file reopened. */
const openTaskStore: OpenTaskStore = async (retention = {}) => {
  const { store, path } = open(retention);
  // Joins the pass a store starts on opening, so that the case's own passes are the only others.
  await store.prune();
  return {
    store,
    reopen: async () => {
      store.close();
      return open({}, path).store;
    },
    prune: () => store.prune(),
  };
};

describe('SqliteTaskStore', () => {
  for (const { name, run } of [...taskStoreCases, leanListCase]) it(name, () => run(openTaskStore));

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

  it('a list commits the open transaction first: it shows only what survives a crash', async () => {
    const { store, db } = open();
    const first = store.insert(record('t_1'));
    store.insert(record('t_2'));
    expect(db.inTransaction).toBe(true);
    let settled = false;
    void first.then(() => {
      settled = true;
    });
    const listed = store.list({});
    expect(db.inTransaction).toBe(false);
    expect(listed.tasks.map((t) => t.taskId).sort()).toEqual(['t_1', 't_2']);
    await Promise.resolve();
    expect(settled).toBe(true);
  });

  it("getCommitted (the task API's read) commits the open transaction first, as list does", async () => {
    const { store, db } = open();
    const accepted = store.insert(record('t_1'));
    expect(db.inTransaction).toBe(true);
    expect(store.getCommitted('t_1')?.taskId).toBe('t_1');
    expect(db.inTransaction).toBe(false);
    expect(await accepted).toBe(true);
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
    // Partway through the pass (the first tasks deleted, not the last): a task accepted now is
    // committed before the pass ends, rather than after all 2000 deletions.
    while (store.get('old_0')) await new Promise((resolve) => setImmediate(resolve));
    expect(store.get('old_1999')).toBeDefined();
    expect(await store.insert(record('new'))).toBe(true);
    expect(pruned).toBe(false);
    await pruning;
    expect(store.get('old_1999')).toBeUndefined();
    expect(store.get('new')).toBeDefined();
  });

  it('past maxTasks, deletes the task that finished first, even when the wall clock stepped back before the last', async () => {
    const { store } = open({ maxTasks: 3 });
    await store.prune(); // the pass the store starts on opening
    const now = Date.now();
    // endTime is the wall clock at the end: an NTP correction steps it back an hour before `last` ends.
    const ends: [string, number][] = [
      ['a', now - 3000],
      ['b', now - 2000],
      ['c', now - 1000],
      ['last', now - 3_600_000],
    ];
    for (const [id, endTime] of ends) {
      await store.insert(record(id));
      await store.transition(id, 'Succeeded', { from: ['Enqueued'], patch: { endTime } });
    }
    expect(await store.prune()).toBe(1);
    expect(['a', 'b', 'c', 'last'].filter((id) => store.get(id))).toEqual(['b', 'c', 'last']);
    expect(store.get('last')?.endTime).toBe(now - 3_600_000); // the record keeps the clock's word
  });

  it('past maxTasks, deletes the task that finished first though its destination call ended after later ones', async () => {
    const { store } = open({ maxTasks: 2 });
    await store.prune(); // the pass the store starts on opening
    const now = Date.now();
    // `a` ends first, its destination call still owed; `b` and `c` end after it; then a's call ends.
    for (const [id, endTime, deliveryPending] of [
      ['a', now - 3000, true],
      ['b', now - 2000, undefined],
      ['c', now - 1000, undefined],
    ] as const) {
      await store.insert(record(id));
      await store.transition(id, 'Succeeded', { from: ['Enqueued'], patch: { endTime, deliveryPending } });
    }
    await store.update('a', { deliveryPending: undefined, destinationStatus: 'Succeeded' });
    expect(await store.prune()).toBe(1);
    expect(['a', 'b', 'c'].filter((id) => store.get(id))).toEqual(['b', 'c']);
  });

  it.each([
    ['a day', 86_400_000],
    ['45 minutes', 2_700_000],
  ])(
    'retentionMs still deletes a task after one ended with a clock %s ahead (more than half retentionMs), then corrected',
    async (_, aheadMs) => {
      const { store } = open({ retentionMs: 3_600_000 });
      await store.prune();
      const now = Date.now();
      // A machine resumed with its clock ahead when `ahead` ended, corrected before `old` did: `old`
      // ended 70 minutes ago, past the hour; keeping it for the clock's sake would raise it by more
      // than half an hour.
      for (const [id, endTime] of [
        ['ahead', now + aheadMs],
        ['old', now - 4_200_000],
      ] as const) {
        await store.insert(record(id));
        await store.transition(id, 'Succeeded', { from: ['Enqueued'], patch: { endTime } });
      }
      await store.prune();
      expect(['ahead', 'old'].filter((id) => store.get(id))).toEqual(['ahead']);
    },
  );

  it('retentionMs deletes a task that ended just past it and keeps one that ended within it', async () => {
    const { store } = open({ retentionMs: 60_000 });
    await store.prune();
    const now = Date.now();
    for (const [id, endTime] of [
      ['past', now - 90_000],
      ['within', now - 30_000],
    ] as const) {
      await store.insert(record(id));
      await store.transition(id, 'Succeeded', { from: ['Enqueued'], patch: { endTime } });
    }
    expect(await store.prune()).toBe(1);
    expect(['past', 'within'].filter((id) => store.get(id))).toEqual(['within']);
  });

  it('never prunes a task whose destination call is still owed, however long ago it ended', async () => {
    const { store } = open({ retentionMs: 60_000 });
    await store.prune();
    const endTime = Date.now() - 3_600_000;
    await store.insert(record('owed', { status: 'Succeeded', attempts: 1, endTime, deliveryPending: true }));
    await store.insert(record('delivered', { status: 'Succeeded', attempts: 1, endTime }));
    expect(await store.prune()).toBe(1);
    expect(store.get('delivered')).toBeUndefined();
    expect(store.unfinished().map((t) => t.taskId)).toEqual(['owed']);
  });

  it('filters by a prefix taken literally and case-sensitively (`_` and `%` are no wildcards)', async () => {
    const { store } = open();
    for (const id of ['job_1', 'jobx_2', 'JOB_3', 'job%_4', 'job_%5']) await store.insert(record(id));
    const listed = (prefix: string) =>
      store
        .list({ prefix })
        .tasks.map((t) => t.taskId)
        .sort();
    expect(listed('job_')).toEqual(['job_%5', 'job_1']);
    expect(listed('job%')).toEqual(['job%_4']);
    expect(listed('JOB')).toEqual(['JOB_3']);
  });

  it('a prefix of few tasks (read by their id range) and of many (the time index walked) lists every match in order', async () => {
    const { store } = open();
    // 1,200 `m_` tasks (the time index walked), and ids at the ends of a prefix's id range.
    const edges = [
      'a',
      'a\u{10FFFF}',
      'a\u{10FFFF}b',
      'a\uD7FF',
      'a\uD7FFx',
      'a\uE000',
      'ab',
      'a~',
      'b',
      'm',
      'm_',
      'n',
    ];
    const all = [...edges, ...Array.from({ length: 1200 }, (_, i) => `m_${String(i).padStart(4, '0')}`)];
    for (const [i, id] of all.entries()) await store.insert(record(id, { startedTime: 1_700_000_000_000 + (i % 7) }));
    const walk = (query: TaskQuery) => {
      const ids: string[] = [];
      let page = store.list({ ...query, limit: 100 });
      for (;;) {
        ids.push(...page.tasks.map((t) => t.taskId));
        if (!page.nextToken) return ids;
        page = store.list({ ...query, limit: 100, nextToken: page.nextToken });
      }
    };
    const time = (id: string) => 1_700_000_000_000 + (all.indexOf(id) % 7);
    const byKey = (a: string, b: string) => time(a) - time(b) || Buffer.compare(Buffer.from(a), Buffer.from(b));
    for (const prefix of [
      'a',
      'a\u{10FFFF}',
      'a\uD7FF',
      'a\uE000',
      'm_',
      'm_1',
      'm_11',
      'm_0999',
      'zz',
      '\u{10FFFF}',
    ]) {
      const expected = all.filter((id) => id.startsWith(prefix)).sort(byKey);
      expect(walk({ prefix, sortOrderByTime: 'asc' }), `prefix ${JSON.stringify(prefix)}`).toEqual(expected);
      expect(walk({ prefix, status: 'Enqueued' }), `prefix ${JSON.stringify(prefix)}, desc`).toEqual(
        expected.reverse(),
      );
    }
  });

  it('a prefix of characters outside the BMP lists its tasks by the time index too, and across a switch of path between pages', async () => {
    const { store } = open();
    const walk = (query: TaskQuery, first?: string) => {
      const ids: string[] = [];
      let page = store.list({ ...query, limit: 100, ...(first === undefined ? {} : { nextToken: first }) });
      for (;;) {
        ids.push(...page.tasks.map((t) => t.taskId));
        if (!page.nextToken) return ids;
        page = store.list({ ...query, limit: 100, nextToken: page.nextToken });
      }
    };
    // A prefix of U+10FFFF only has no id range: the time index is walked.
    for (const id of ['\u{10FFFF}', '\u{10FFFF}x', 'z']) await store.insert(record(id, { startedTime: 1 }));
    expect(walk({ prefix: '\u{10FFFF}', sortOrderByTime: 'asc' })).toEqual(['\u{10FFFF}', '\u{10FFFF}x']);
    // 999 tasks under 😀 (read by their id range), then more: the next pages walk the time index.
    const id = (i: number) => `😀_${String(i).padStart(4, '0')}`;
    for (let i = 0; i < 999; i++) await store.insert(record(id(i), { startedTime: 1_000 + i }));
    const first = store.list({ prefix: '😀', sortOrderByTime: 'asc', limit: 100 });
    expect(first.tasks.map((t) => t.taskId)).toEqual(Array.from({ length: 100 }, (_, i) => id(i)));
    for (let i = 999; i < 1010; i++) await store.insert(record(id(i), { startedTime: 1_000 + i }));
    expect(walk({ prefix: '😀', sortOrderByTime: 'asc' }, first.nextToken)).toEqual(
      Array.from({ length: 910 }, (_, i) => id(100 + i)),
    );
    expect(walk({ prefix: '😀_', sortOrderByTime: 'desc' })).toEqual(
      Array.from({ length: 1010 }, (_, i) => id(1009 - i)),
    );
    // The same switch with an ASCII prefix.
    const plain = (i: number) => `p_${String(i).padStart(4, '0')}`;
    for (let i = 0; i < 999; i++) await store.insert(record(plain(i), { startedTime: 5_000 + i }));
    const page = store.list({ prefix: 'p', sortOrderByTime: 'desc', limit: 100 });
    for (let i = 999; i < 1010; i++) await store.insert(record(plain(i), { startedTime: 4_000 - i }));
    expect([
      ...page.tasks.map((t) => t.taskId),
      ...walk({ prefix: 'p', sortOrderByTime: 'desc' }, page.nextToken),
    ]).toEqual([
      ...Array.from({ length: 999 }, (_, i) => plain(998 - i)),
      ...Array.from({ length: 11 }, (_, i) => plain(999 + i)),
    ]);
  });

  it('a commit SQLite refuses (a disk full as the -wal is written) fails every write of its group with 503 SqliteWriteFailed; none is kept, and later writes commit', async () => {
    const { store, db, path } = open();
    // A deferred constraint, which only COMMIT checks: SQLite refuses the commit itself, as it does
    // when the disk fills up while the -wal is written (a statement only changes pages in memory).
    db.exec(`PRAGMA foreign_keys = ON;
      CREATE TABLE fault_parent (id INTEGER PRIMARY KEY);
      CREATE TABLE fault_child (parent INTEGER REFERENCES fault_parent (id) DEFERRABLE INITIALLY DEFERRED);`);
    const first = store.insert(record('t_1'));
    const second = store.insert(record('t_2'));
    expect(db.inTransaction).toBe(true);
    db.prepare('INSERT INTO fault_child VALUES (1)').run();
    const refused = expect.objectContaining({
      code: 'SqliteWriteFailed',
      statusCode: 503,
      message: 'The task store could not commit the write (SQLITE_CONSTRAINT_FOREIGNKEY); retry later',
    });
    await expect(first).rejects.toEqual(refused);
    await expect(second).rejects.toEqual(refused);
    // Not read back from memory either: the task API says "no such task", as the next start would.
    expect(store.get('t_1')).toBeUndefined();
    expect(store.getCommitted('t_2')).toBeUndefined();
    expect(store.unfinished()).toEqual([]);
    expect(await store.insert(record('t_3'))).toBe(true);
    expect(await store.transition('t_3', 'Running', { from: ['Enqueued'] })).toMatchObject({ status: 'Running' });
    store.close();
    expect(
      open({}, path)
        .store.unfinished()
        .map((t) => [t.taskId, t.status]),
    ).toEqual([['t_3', 'Running']]);
  });

  it('close() stops the prune timer: nothing runs (or fails) on the closed file', async () => {
    const { dir, cleanup } = tempDir();
    cleanups.push(cleanup);
    const path = join(dir, 'tasks.db');
    const errors: string[] = [];
    const resolved = resolveSqliteOptions(path, { pruneIntervalMs: 5 });
    const store = new SqliteTaskStore(openDatabase(path, resolved), resolved, {
      ...silentLogger,
      error: (message) => void errors.push(message),
    });
    await store.prune();
    store.close();
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(errors).toEqual([]);
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
    // An accept in a turn whose progress writes already opened a NORMAL group: that group is
    // committed first, and the accept gets a FULL one of its own.
    await store.insert(record('t_3'));
    const progress = ['t_1', 't_2', 't_3'].map((id) => store.update(id, { attempts: 1 }));
    expect(db.inTransaction).toBe(true);
    expect(level()).toBe(1);
    const third = store.insert(record('t_4'));
    expect(level()).toBe(2);
    await Promise.all([...progress, third]);
    const { store: normal, db: normalDb } = open({ synchronous: 'normal' });
    await normal.insert(record('t_1'));
    expect(normalDb.pragma('synchronous', { simple: true })).toBe(1);
  });

  it("with synchronous 'normal', a write resolves only once committed, alone or with the others made with it", async () => {
    const { store, db } = open({ synchronous: 'normal' });
    // A write with nothing else under way: committed on its own at once.
    const first = store.insert(record('t_1'));
    expect(db.inTransaction).toBe(false);
    // Writes made before it settled (a burst): grouped, committed together later.
    const second = store.insert(record('t_2'));
    expect(db.inTransaction).toBe(true);
    const third = store.insert(record('t_3'));
    const fourth = store.update('t_1', { attempts: 1 });
    let settled = false;
    void third.then(() => {
      settled = true;
    });
    await first;
    await Promise.resolve();
    expect(settled).toBe(false);
    await Promise.all([second, third, fourth]);
    expect(db.inTransaction).toBe(false);
    expect(store.get('t_1')?.attempts).toBe(1);
    // Writes made one after another, each once the previous one is done (a quick task's claim and
    // end, then the next accept of a caller waiting for that end), all in one turn: each
    // committed on its own at once, none waits for a turn of the event loop.
    let turnEnded = false;
    setImmediate(() => {
      turnEnded = true;
    });
    const claiming = store.transition('t_2', 'Running', { from: ['Enqueued'] });
    expect(db.inTransaction).toBe(false);
    await claiming;
    const ending = store.transition('t_2', 'Succeeded', { from: ['Running'], patch: { endTime: Date.now() } });
    expect(db.inTransaction).toBe(false);
    expect((await ending)?.status).toBe('Succeeded');
    const next = store.insert(record('t_4'));
    expect(db.inTransaction).toBe(false);
    expect(await next).toBe(true);
    expect(turnEnded).toBe(false);
    expect(store.unfinished().map((t) => t.taskId)).toEqual(['t_1', 't_3', 't_4']);
  });

  it('refuses a file another store holds, with SqliteStoreLocked', () => {
    const { path } = open();
    expect(() => open({ openTimeoutMs: 0 }, path)).toThrow(expect.objectContaining({ code: 'SqliteStoreLocked' }));
  });
});
