import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import {
  chmodSync,
  copyFileSync,
  existsSync,
  mkdirSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { Worker } from 'node:worker_threads';
import { type AsyncOptions, createFcHandler, type FcHandler, type Logger, silentLogger } from '@fc-async/core';
import { asyncEvent } from '@fc-async/test-kit/fc-server';
import { taskRecord } from '@fc-async/test-kit/task-store';
import { firstLine } from '@fc-async/test-kit/wait';
import Database from 'better-sqlite3';
import { afterEach, describe, expect, it } from 'vitest';
import { openDatabase } from '../src/database.js';
import { sqlite } from '../src/index.js';
import { resolveSqliteOptions, type SqliteBackendOptions } from '../src/options.js';
import { SqliteTaskStore } from '../src/store.js';
import { tempDir, until } from './helpers.js';

const SERVER = fileURLToPath(new URL('./fixtures/server.ts', import.meta.url));
const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0)) await c();
});

function folder(): string {
  const { dir, cleanup } = tempDir();
  cleanups.push(cleanup);
  return dir;
}

function handlerOn(path: string, async: Partial<AsyncOptions> = {}, logger: Logger = silentLogger): FcHandler {
  const handler = createFcHandler((_req, res) => res.end('ok'), {
    logger,
    env: {},
    async: { mode: 'local', backend: sqlite(path, { synchronous: 'normal' }), ...async },
  });
  cleanups.unshift(() => handler.close({ timeoutMs: 10 }));
  return handler;
}

/** `{ status, code }` of an FC response. */
function answer(result: { statusCode: number; body: string }) {
  return { status: result.statusCode, code: (JSON.parse(result.body || '{}') as { code?: string }).code };
}

/** What an async request to a handler whose store did not start is answered: status, retry-after and body. */
async function refusal(handler: FcHandler) {
  const result = await handler(asyncEvent('t_refused', {}));
  return { status: result.statusCode, retryAfter: result.headers?.['retry-after'], body: JSON.parse(result.body) };
}

/** Past the store's next look at its files (at most every 50 ms: a stat before each commit slowed it). */
const pastCheck = () => new Promise((resolve) => setTimeout(resolve, 60));

/** A store on `path`, closed after the test. */
function storeOn(path: string, options: SqliteBackendOptions = {}): SqliteTaskStore {
  const resolved = resolveSqliteOptions(path, { synchronous: 'normal', ...options });
  const store = new SqliteTaskStore(openDatabase(path, resolved), resolved, silentLogger);
  cleanups.unshift(() => store.close());
  return store;
}

/**
 * The task ids a crash now would leave: the file and its `-wal` as they are (the connection holds
 * an exclusive lock, so they are copied and the copy read).
 */
function afterCrash(path: string): unknown[] {
  const copy = `${path}.copy`;
  writeFileSync(copy, readFileSync(path));
  if (existsSync(`${path}-wal`)) writeFileSync(`${copy}-wal`, readFileSync(`${path}-wal`));
  const read = new Database(copy, { readonly: true });
  const ids = read.prepare('SELECT task_id FROM fc_async_tasks ORDER BY task_id').pluck().all();
  read.close();
  return ids;
}

const delayed = (id: string, body: unknown = {}) => asyncEvent(id, body, { 'X-Fc-Async-Delay': '600' });

describe('sqlite(): a second owner of the file', () => {
  it('another process holding the file refuses this one with SqliteStoreLocked naming it; its crash frees the file', async () => {
    const path = join(folder(), 'tasks.db');
    const child: ChildProcess = spawn(process.execPath, ['--import', 'tsx', SERVER, path, 'http://127.0.0.1:65000/'], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    cleanups.push(() => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    });
    await firstLine(child); // listening: it holds the file
    // The handler is made all the same (an FC instance stays): its async requests are answered 503.
    const handler = createFcHandler((_req, res) => res.end(), {
      logger: silentLogger,
      env: {},
      async: { mode: 'local', backend: sqlite(path, { openTimeoutMs: 0 }) },
    });
    cleanups.push(() => handler.close());
    const refused = await handler(asyncEvent('t_while_held', {}));
    expect(refused).toMatchObject({
      statusCode: 503,
      headers: { 'retry-after': '1' }, // the owner may be on its way out
    });
    expect(JSON.parse(refused.body)).toEqual({
      code: 'SqliteStoreLocked',
      message: `${path} is in use by another process; one process owns a task file`,
    });
    child.kill('SIGKILL');
    await once(child, 'exit');
    // A crashed owner leaves no lock behind: a later demand tries the start again.
    await new Promise((resolve) => setTimeout(resolve, 1100));
    await handler.engine?.whenReady();
    expect((await handler(asyncEvent('t_after_crash', {}))).statusCode).toBe(202);
  });
});

describe('sqlite(): an owner of the file on its way out', () => {
  it('a start waits for the file (openTimeoutMs, 2 s by default) rather than failing at once', async () => {
    const path = join(folder(), 'tasks.db');
    // The old owner (a restart's previous instance): holds the file, and lets it go 300 ms later.
    const owner = new Worker(
      `const Database = require('better-sqlite3');
      const { parentPort, workerData } = require('node:worker_threads');
      const db = new Database(workerData);
      db.pragma('locking_mode = EXCLUSIVE');
      db.exec('BEGIN EXCLUSIVE; COMMIT;');
      parentPort.postMessage('holding');
      setTimeout(() => db.close(), 300);`,
      { eval: true, workerData: path },
    );
    cleanups.push(() => owner.terminate());
    await once(owner, 'message');
    const handler = handlerOn(path);
    await handler.engine?.whenReady();
    expect((await handler(delayed('t_after_handover'))).statusCode).toBe(202);
  });
});

describe('sqlite(): a file that is not a task database', () => {
  it("refuses another application's SQLite database with SqliteStoreUnavailable and leaves it byte for byte", async () => {
    const path = join(folder(), 'app.db');
    const app = new Database(path);
    app.exec('CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT); PRAGMA user_version = 1;');
    app.close();
    const bytes = readFileSync(path);
    expect(await refusal(handlerOn(path))).toEqual({
      status: 503,
      retryAfter: undefined, // waiting does not make it a task file
      body: {
        code: 'SqliteStoreUnavailable',
        message: `Cannot open the task file ${path}: it is another application's SQLite database (tables users); give the tasks a file of their own`,
      },
    });
    expect(readFileSync(path)).toEqual(bytes);
    expect(existsSync(`${path}-wal`)).toBe(false);
  });

  it('refuses a SQLite file with no table yet but a user_version of its own, and leaves it byte for byte', async () => {
    const path = join(folder(), 'app.db');
    const app = new Database(path);
    app.pragma('user_version = 7'); // another application's, before its first table
    app.close();
    const bytes = readFileSync(path);
    expect((await refusal(handlerOn(path))).body).toEqual({
      code: 'SqliteStoreUnavailable',
      message: `Cannot open the task file ${path}: it is another application's SQLite database (user_version 7); give the tasks a file of their own`,
    });
    expect(readFileSync(path)).toEqual(bytes);
  });

  it('refuses a table named fc_async_tasks that is not a task table, leaves the file as it was, and says so again on the next try', async () => {
    const path = join(folder(), 'foreign.db');
    const app = new Database(path);
    app.exec('CREATE TABLE fc_async_tasks (task_id TEXT PRIMARY KEY, status TEXT, started_time INTEGER, data TEXT);');
    app.close();
    const bytes = readFileSync(path);
    for (let i = 0; i < 2; i++) {
      // The second try finds the same problem, not a lock a first connection left behind.
      expect((await refusal(handlerOn(path))).body).toEqual({
        code: 'SqliteStoreUnavailable',
        message: `Cannot open the task file ${path}: its table fc_async_tasks is not a task table (no column end_time, open, record, body); give the tasks a file of their own`,
      });
    }
    expect(readFileSync(path)).toEqual(bytes);
    expect(existsSync(`${path}-wal`)).toBe(false);
  });

  it('refuses a task file of a newer schema with SqliteStoreVersion and leaves it byte for byte', async () => {
    const path = join(folder(), 'tasks.db');
    const first = handlerOn(path);
    await first.engine?.whenReady();
    await first.close();
    const db = new Database(path);
    db.pragma('journal_mode = DELETE'); // as a newer version might leave it
    db.pragma('user_version = 3');
    db.close();
    const bytes = readFileSync(path);
    expect(await refusal(handlerOn(path))).toMatchObject({
      status: 503,
      body: {
        code: 'SqliteStoreVersion',
        message: `${path} was written by a newer @fc-async/sqlite (schema 3, this one reads 2)`,
      },
    });
    expect(readFileSync(path)).toEqual(bytes);
  });
});

describe('sqlite(): the file deleted or moved while the function runs', () => {
  it.each([
    ['deleted', (path: string) => rmSync(path)],
    ['moved', (path: string) => renameSync(path, `${path}.moved`)],
    [
      'replaced by a copy',
      (path: string) => {
        renameSync(path, `${path}.old`);
        copyFileSync(`${path}.old`, path); // a backup put back: the same name, another file
      },
    ],
  ])(
    '%s: accepts answer 503 SqliteStoreUnavailable rather than a 202 nobody finds again; logged once',
    async (_, fault) => {
      const path = join(folder(), 'tasks.db');
      const errors: unknown[] = [];
      const logger: Logger = {
        ...silentLogger,
        error: (message, fields) => void (message.startsWith('the task file') && errors.push({ message, fields })),
      };
      const handler = handlerOn(path, {}, logger);
      await handler.engine?.whenReady();
      expect((await handler(delayed('t_before'))).statusCode).toBe(202);
      fault(path);
      await pastCheck();
      for (const id of ['t_1', 't_2']) {
        expect(answer(await handler(delayed(id)))).toEqual({ status: 503, code: 'SqliteStoreUnavailable' });
      }
      expect(errors).toEqual([
        {
          message: 'the task file was deleted or moved while in use: no task is accepted until a restart',
          fields: { file: path },
        },
      ]);
    },
  );
});

describe('sqlite(): the file deleted while the function runs, and no accept came to notice it', () => {
  it('close() writes its tasks to a new file where it was, says so, and the next start runs them', async () => {
    const path = join(folder(), 'tasks.db');
    const errors: { message: string; fields?: Record<string, unknown> }[] = [];
    const logger: Logger = { ...silentLogger, error: (message, fields) => void errors.push({ message, fields }) };
    const first = handlerOn(path, {}, logger);
    await first.engine?.whenReady();
    for (const id of ['t_1', 't_2']) expect((await first(delayed(id))).statusCode).toBe(202);
    rmSync(path);
    await first.close({ timeoutMs: 10 });
    expect(errors).toEqual([
      {
        message: 'the task file was deleted or moved while in use: its tasks were written to a new file there',
        fields: { file: path, unfinished: 2 },
      },
    ]);
    expect(statSync(path).mode & 0o777).toBe(0o600);
    const next = handlerOn(path);
    await next.engine?.whenReady();
    expect((await next.tasks.list({})).tasks.map((t) => [t.taskId, t.status]).sort()).toEqual([
      ['t_1', 'Enqueued'],
      ['t_2', 'Enqueued'],
    ]);
  });
});

describe('sqlite(): the file replaced by another while the function runs, and no accept came to notice it', () => {
  it('close() says so and leaves the file now there as it is', async () => {
    const path = join(folder(), 'tasks.db');
    const errors: { message: string; fields?: Record<string, unknown> }[] = [];
    const logger: Logger = { ...silentLogger, error: (message, fields) => void errors.push({ message, fields }) };
    const first = handlerOn(path, {}, logger);
    await first.engine?.whenReady();
    for (const id of ['t_1', 't_2']) expect((await first(delayed(id))).statusCode).toBe(202);
    renameSync(path, `${path}.old`);
    writeFileSync(path, 'not the task file');
    await first.close({ timeoutMs: 10 });
    expect(errors).toEqual([
      {
        message: 'the task file was replaced while in use: the tasks it held are not in the file now there',
        fields: { file: path, unfinished: 2 },
      },
    ]);
    expect(readFileSync(path, 'utf8')).toBe('not the task file');
  });
});

describe('sqlite(): the folder of the file deleted while the function runs', () => {
  it('close() makes the folder again and writes the tasks there; the next start runs them', async () => {
    const data = join(folder(), 'data');
    const path = join(data, 'tasks.db');
    const errors: { message: string; fields?: Record<string, unknown> }[] = [];
    const logger: Logger = { ...silentLogger, error: (message, fields) => void errors.push({ message, fields }) };
    const first = handlerOn(path, {}, logger);
    await first.engine?.whenReady();
    for (const id of ['t_1', 't_2', 't_3']) expect((await first(delayed(id))).statusCode).toBe(202);
    rmSync(data, { recursive: true });
    await first.close({ timeoutMs: 10 });
    expect(errors).toEqual([
      {
        message: 'the task file was deleted or moved while in use: its tasks were written to a new file there',
        fields: { file: path, unfinished: 3 },
      },
    ]);
    expect(statSync(path).mode & 0o777).toBe(0o600);
    const next = handlerOn(path);
    await next.engine?.whenReady();
    expect((await next.tasks.list({})).tasks.map((t) => t.taskId).sort()).toEqual(['t_1', 't_2', 't_3']);
  });
});

describe('sqlite(): memory held by a backlog of large payloads', () => {
  it('200 delayed tasks of 1 MiB each keep well under 200 MiB of bodies in memory', async () => {
    setFlagsFromString('--expose-gc');
    const gc = runInNewContext('gc') as () => void;
    const path = join(folder(), 'tasks.db');
    const handler = handlerOn(path, { maxAsyncPayloadBytes: 2 * 1024 * 1024, maxQueuedTasks: 1000 });
    await handler.engine?.whenReady();
    gc();
    const before = process.memoryUsage().arrayBuffers;
    const mib = 'x'.repeat(1024 * 1024 - 16);
    for (let i = 0; i < 200; i++) expect((await handler(delayed(`big_${i}`, { mib }))).statusCode).toBe(202);
    gc();
    const held = process.memoryUsage().arrayBuffers - before;
    expect(held).toBeLessThan(100 * 1024 * 1024);
    const task = await handler.tasks.get('big_0');
    expect(task?.status).toBe('Enqueued');
    // 200 MiB written: on a loaded machine (a suite run beside other packages) past the default 30 s.
  }, 120_000);
});

describe('sqlite(): use after close', () => {
  it('the task API answers 503 ServiceUnavailable, not a TypeError from a closed connection', async () => {
    const handler = handlerOn(join(folder(), 'tasks.db'));
    await handler.engine?.whenReady();
    expect((await handler(asyncEvent('t_1', {}))).statusCode).toBe(202);
    await handler.drain();
    await handler.close({ timeoutMs: 10 });
    const closed = expect.objectContaining({
      code: 'ServiceUnavailable',
      statusCode: 503,
      message: 'The function is shutting down: its task store is closed',
    });
    await expect(handler.tasks.get('t_1')).rejects.toEqual(closed);
    await expect(handler.tasks.list({})).rejects.toEqual(closed);
    await expect(handler.tasks.stop('t_1')).rejects.toEqual(closed);
    expect(answer(await handler(asyncEvent('t_2', {})))).toEqual({ status: 503, code: 'ServiceUnavailable' });
  });
});

describe('sqlite(): who can read the task file', () => {
  it('creates the file and its WAL readable by their owner only: they hold request bodies', async () => {
    const path = join(folder(), 'tasks.db');
    const handler = handlerOn(path);
    expect((await handler(delayed('t_private', { secret: 'body' }))).statusCode).toBe(202);
    expect(statSync(path).mode & 0o777).toBe(0o600);
    expect(statSync(`${path}-wal`).mode & 0o777).toBe(0o600);
  });

  it('creates the file a symbolic link names, and its WAL, readable by their owner only too', async () => {
    const dir = folder();
    mkdirSync(join(dir, 'real'));
    const target = join(dir, 'real', 'tasks.db');
    const link = join(dir, 'link.db');
    symlinkSync('real/tasks.db', link);
    const handler = handlerOn(link);
    expect((await handler(delayed('t_private', { secret: 'body' }))).statusCode).toBe(202);
    expect(statSync(target).mode & 0o777).toBe(0o600);
    expect(statSync(`${target}-wal`).mode & 0o777).toBe(0o600);
  });

  it('leaves the mode of a file that already exists as it is', async () => {
    const path = join(folder(), 'shared.db');
    writeFileSync(path, '');
    chmodSync(path, 0o640);
    const handler = handlerOn(path);
    expect((await handler(delayed('t_shared'))).statusCode).toBe(202);
    expect(statSync(path).mode & 0o777).toBe(0o640);
  });
});

describe('sqlite(): the -wal deleted while the function runs', () => {
  it('is healed before the next accept: what a crash would leave (the file and its -wal) holds every task that got a 202', async () => {
    const dir = folder();
    const path = join(dir, 'tasks.db');
    const errors: unknown[] = [];
    const logger: Logger = { ...silentLogger, error: (message, fields) => void errors.push({ message, fields }) };
    const handler = handlerOn(path, {}, logger);
    await handler.engine?.whenReady();
    expect((await handler(delayed('t_before'))).statusCode).toBe(202);
    expect(existsSync(`${path}-wal`)).toBe(true);
    rmSync(`${path}-wal`);
    await pastCheck();
    for (const id of ['t_1', 't_2']) expect((await handler(delayed(id))).statusCode).toBe(202);
    // Deleted again, the new one: healed again.
    rmSync(`${path}-wal`);
    await pastCheck();
    expect((await handler(delayed('t_3'))).statusCode).toBe(202);
    // A crash now: the process's files as they are (the connection holds an exclusive lock, so copy them).
    const copy = join(dir, 'copy.db');
    writeFileSync(copy, readFileSync(path));
    if (existsSync(`${path}-wal`)) writeFileSync(`${copy}-wal`, readFileSync(`${path}-wal`));
    const read = new Database(copy, { readonly: true });
    const ids = read.prepare('SELECT task_id FROM fc_async_tasks ORDER BY task_id').pluck().all();
    read.close();
    expect(ids).toEqual(['t_1', 't_2', 't_3', 't_before']);
    const healed = {
      message:
        "the task file's -wal was deleted or replaced while in use: what it held was written into the task file, and a new -wal started",
      fields: { file: path },
    };
    expect(errors).toEqual([healed, healed]);
  });
});

describe('sqlite(): the -wal deleted, and no accept comes after', () => {
  it.each([
    ['an update', (store: SqliteTaskStore) => store.update('t_1', { lastStatusCode: 200 })],
    [
      'a status change (a claim)',
      (store: SqliteTaskStore) => store.transition('t_1', 'Running', { from: ['Enqueued'] }),
    ],
  ])(
    'is healed before the next progress write (%s): a crash then keeps every task that got a 202',
    async (_, write) => {
      const path = join(folder(), 'tasks.db');
      const store = storeOn(path);
      for (const id of ['t_1', 't_2', 't_3']) expect(await store.insert(taskRecord(id))).toBe(true);
      rmSync(`${path}-wal`);
      await pastCheck();
      await write(store);
      expect(afterCrash(path)).toEqual(['t_1', 't_2', 't_3']);
    },
  );

  it('is healed while the writes of the same turn are not committed yet: they and the next accept are kept', async () => {
    const path = join(folder(), 'tasks.db');
    const store = storeOn(path, { synchronous: 'full' });
    expect(await store.insert(taskRecord('t_1'))).toBe(true);
    await pastCheck();
    // One long turn: an accept (its group left open until the turn ends), the -wal deleted, and
    // past the next look at the files another accept, which heals it.
    const first = store.insert(taskRecord('t_2'));
    rmSync(`${path}-wal`);
    const end = performance.now() + 60;
    while (performance.now() < end) {
      // the turn goes on
    }
    const second = store.insert(taskRecord('t_3'));
    expect(await Promise.all([first, second])).toEqual([true, true]);
    expect(afterCrash(path)).toEqual(['t_1', 't_2', 't_3']);
  });

  it('is healed on the prune timer when nothing is written at all', async () => {
    const path = join(folder(), 'tasks.db');
    const store = storeOn(path, { pruneIntervalMs: 20 });
    for (const id of ['t_1', 't_2']) expect(await store.insert(taskRecord(id))).toBe(true);
    rmSync(`${path}-wal`);
    // A heal starts a new -wal at the path; none appears without one.
    await until('the -wal made again', () => existsSync(`${path}-wal`), 5_000);
    expect(afterCrash(path)).toEqual(['t_1', 't_2']);
  });
});
