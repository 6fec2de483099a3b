import { join } from 'node:path';
import { seeded } from '@fc-async/test-kit/random';
import Database from 'better-sqlite3';
import { afterEach, describe, expect, it } from 'vitest';
import { WriteBatch, type WriteOptions } from '../src/batch.js';
import { tempDir } from './helpers.js';

// WriteBatch under seeded interleavings: callers that each wait for a write before making the
// next (a task's claim, end, the next accept), writes made together in one turn, writes made
// from another write's settlement, at FULL and NORMAL mixed, some refused (a constraint, the
// file full), the task API's reads committing the open batch at any time. Whatever the order: a
// write whose promise resolved is committed (a second connection reads it at once), at FULL when
// it is a flush write of a store opened so; one that rejected left nothing; no promise is left
// pending.

const ACCEPT: WriteOptions = { flush: true, single: true };
const SINGLE: WriteOptions = { single: true };
const PROGRESS: WriteOptions = {};
const FULL = 2;

const cleanups: (() => void)[] = [];
afterEach(() => {
  for (const c of cleanups.splice(0).reverse()) c();
});

type Kind = 'accept' | 'single' | 'progress' | 'two' | 'taken' | 'big';

interface Made {
  kind: Kind;
  options: WriteOptions;
  keys: string[];
  /** The level of the commit that took this write (read at the commit, or as it ran alone). */
  level?: number;
}

interface Counts {
  resolved: number;
  taken: number;
  full: number;
  rollbacks: number;
}

async function runModel(seed: number, full: boolean): Promise<Counts> {
  const random = seeded(seed);
  const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)] as T;
  const { dir, cleanup } = tempDir();
  cleanups.push(cleanup);
  const path = join(dir, 'batch.db');
  const db = new Database(path);
  db.pragma('journal_mode = WAL');
  db.exec('CREATE TABLE t (k TEXT PRIMARY KEY NOT NULL, v BLOB NOT NULL)');
  // Small enough that some large writes find the file full (SQLITE_FULL).
  db.pragma('max_page_count = 400');
  cleanups.push(() => db.close());
  const reader = new Database(path, { readonly: true });
  cleanups.push(() => reader.close());
  const read = reader.prepare('SELECT v FROM t WHERE k = ?').pluck();

  // The level each commit runs at, told to the writes it takes.
  let inTransaction: Made[] = [];
  const prepare = db.prepare.bind(db);
  (db as { prepare: typeof db.prepare }).prepare = ((sql: string) => {
    const statement = prepare(sql);
    if (sql === 'COMMIT') {
      const run = statement.run.bind(statement);
      (statement as { run: typeof statement.run }).run = (...args: unknown[]) => {
        const level = db.pragma('synchronous', { simple: true }) as number;
        const taken = inTransaction;
        inTransaction = [];
        for (const made of taken) made.level = level;
        return run(...(args as []));
      };
    }
    return statement;
  }) as typeof db.prepare;
  let rolledBack = 0;
  const batch = new WriteBatch(db, full, () => {
    rolledBack++;
    inTransaction = [];
  });
  const insert = db.prepare('INSERT INTO t (k, v) VALUES (?, ?)');
  const remove = db.prepare('DELETE FROM t WHERE k = ?');

  let next = 0;
  const taken: string[] = [];
  const bigs: string[] = [];
  let resolved = 0;
  let refusedTaken = 0;
  let refusedFull = 0;
  const failures: string[] = [];

  function write(wanted: Kind): { made: Made; done: Promise<unknown> } {
    // A taken id is one committed and never removed (large rows are, to make room).
    const kind = wanted === 'taken' && taken.length === 0 ? 'single' : wanted;
    const id = `k${next++}`;
    const options = kind === 'accept' ? ACCEPT : kind === 'single' || kind === 'taken' ? SINGLE : PROGRESS;
    const keys = kind === 'two' ? [id, `${id}b`] : kind === 'taken' ? [pick(taken)] : [id];
    const made: Made = { kind, options, keys };
    const value = kind === 'big' ? Buffer.alloc(4096 * (20 + Math.floor(random() * 200)), 7) : Buffer.from(id);
    const done = batch.run(() => {
      if (db.inTransaction) inTransaction.push(made);
      else made.level = db.pragma('synchronous', { simple: true }) as number;
      // A large row made room for now and then, so that the file does not stay full.
      if (kind === 'big' && bigs.length > 2) remove.run(bigs.shift());
      for (const key of keys) insert.run(key, kind === 'taken' ? Buffer.from('again') : value);
      return id;
    }, options);
    return {
      made,
      done: done.then(
        () => check(made, value),
        (error) => checkRefused(made, error),
      ),
    };
  }

  function check(made: Made, value: Buffer): void {
    resolved++;
    const where = `seed ${seed} (full ${full}): ${made.kind} ${made.keys.join(',')}`;
    if (made.kind === 'taken') failures.push(`${where} resolved though its key was taken`);
    for (const key of made.keys) {
      const seen = read.get(key) as Buffer | undefined;
      if (!seen?.equals(value)) failures.push(`${where} resolved, not committed (a second connection reads none)`);
      if (made.kind === 'big') bigs.push(key);
      else taken.push(key);
    }
    if (made.options.flush && full && made.level !== FULL) {
      failures.push(`${where} resolved, committed at synchronous ${made.level}, not FULL`);
    }
  }

  function checkRefused(made: Made, error: unknown): void {
    const where = `seed ${seed} (full ${full}): ${made.kind} ${made.keys.join(',')}`;
    const code = (error as { code?: string; cause?: { code?: string } }).cause?.code;
    if (made.kind === 'taken') {
      refusedTaken++;
      if (code !== 'SQLITE_CONSTRAINT_PRIMARYKEY') failures.push(`${where} refused with ${String(error)}`);
      return;
    }
    // A write refused for the file full (or its transaction rolled back with one that was) left nothing.
    refusedFull++;
    if (code !== 'SQLITE_FULL') failures.push(`${where} refused with ${String(error)}`);
    for (const key of made.keys) {
      if (read.get(key) !== undefined) failures.push(`${where} refused, yet committed`);
    }
  }

  const kinds: Kind[] = ['accept', 'accept', 'single', 'single', 'single', 'progress', 'two', 'taken', 'big'];
  const pending: Promise<unknown>[] = [];
  const yieldSome = async () => {
    // The task API's reads (list, getCommitted) commit what is open, at any time.
    if (random() < 0.1) batch.flush();
    const r = random();
    if (r < 0.3) return;
    if (r < 0.6) await Promise.resolve();
    else await new Promise((resolve) => setImmediate(resolve));
  };

  // Callers that wait for each write before making the next (a task's steps, a client's requests).
  const caller = async (steps: number) => {
    for (let i = 0; i < steps; i++) {
      const { done } = write(pick(kinds));
      // Some wait for their write, some make the next at once.
      if (random() < 0.7) await done;
      else pending.push(done);
      await yieldSome();
    }
  };
  // Writes made from another write's settlement.
  const chained = (depth: number): Promise<unknown> => {
    const { done } = write(pick(kinds));
    return depth === 0 ? done : done.then(() => chained(depth - 1));
  };

  for (let turn = 0; turn < 40; turn++) {
    const callers = Math.floor(random() * 4);
    for (let i = 0; i < callers; i++) pending.push(caller(1 + Math.floor(random() * 6)));
    const burst = Math.floor(random() * 5);
    for (let i = 0; i < burst; i++) pending.push(write(pick(kinds)).done);
    if (random() < 0.5) pending.push(chained(1 + Math.floor(random() * 4)));
    if (random() < 0.2) batch.flush();
    await new Promise((resolve) => setImmediate(resolve));
  }
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`seed ${seed} (full ${full}): a write promise never settled`)), 10_000);
  });
  try {
    // Callers push more as they go: wait until the list stops growing.
    for (let settledCount = 0; settledCount < pending.length; ) {
      const now = pending.length;
      await Promise.race([Promise.all(pending.slice(0)), timeout]);
      settledCount = now;
    }
  } finally {
    clearTimeout(timer);
  }
  expect(failures).toEqual([]);
  expect(db.inTransaction).toBe(false);
  return { resolved, taken: refusedTaken, full: refusedFull, rollbacks: rolledBack };
}

describe('WriteBatch: seeded interleavings of writes', () => {
  it('every resolved write is committed (at FULL when a flush write of a store opened so), every refused one left nothing, none pending', async () => {
    const total: Counts = { resolved: 0, taken: 0, full: 0, rollbacks: 0 };
    for (let seed = 1; seed <= 30; seed++) {
      for (const full of [true, false]) {
        const counts = await runModel(seed, full);
        for (const key of Object.keys(total) as (keyof Counts)[]) total[key] += counts[key];
      }
    }
    // The runs took every path: writes committed, refused by a constraint (the transaction going
    // on), refused for the file full, transactions rolled back whole.
    expect(total.resolved).toBeGreaterThan(1000);
    expect(total.taken).toBeGreaterThan(10);
    expect(total.full).toBeGreaterThan(10);
    expect(total.rollbacks).toBeGreaterThan(0);
  });
});
