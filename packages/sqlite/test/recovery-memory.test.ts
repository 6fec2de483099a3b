import { join } from 'node:path';
import {
  type AsyncBackend,
  AsyncEngine,
  createRedactor,
  type DestinationRecord,
  type Destinations,
  PQueueDriver,
  resolveAsyncOptions,
  silentLogger,
  type TaskRecord,
} from '@fc-async/core';
import { taskRecord as record } from '@fc-async/test-kit/task-store';
import Database from 'better-sqlite3';
import { afterEach, describe, expect, it } from 'vitest';
import { openDatabase } from '../src/database.js';
import { resolveSqliteOptions } from '../src/options.js';
import { SqliteTaskStore } from '../src/store.js';
import { tempDir, until } from './helpers.js';

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0)) await c();
});

const MiB = 1024 * 1024;

function tempFile(): string {
  const { dir, cleanup } = tempDir();
  cleanups.push(cleanup);
  return join(dir, 'tasks.db');
}

/** A request body of `bytes`, different for every task. */
function bodyOf(taskId: string, bytes = MiB): Buffer {
  const body = Buffer.alloc(bytes, taskId.length + taskId.charCodeAt(taskId.length - 1));
  body.write(taskId);
  return body;
}

/** A task with its own body (binary: its requestPayload carries it as base64). */
function large(taskId: string, overrides: Partial<TaskRecord> = {}): TaskRecord {
  const r = record(taskId, overrides);
  r.payload.body = bodyOf(taskId);
  return r;
}

/** Writes records as a process that died would have left them. */
async function leave(path: string, records: TaskRecord[]): Promise<void> {
  const options = resolveSqliteOptions(path, {});
  const store = new SqliteTaskStore(openDatabase(path, options), options, silentLogger);
  await Promise.all(records.map((r) => store.insert(r)));
  store.close();
}

/** The store of sqlite(path), counting the request-body bytes its `unfinished()` hands over. */
class CountingStore extends SqliteTaskStore {
  unfinishedBodyBytes = 0;
  unfinishedTasks = 0;

  override unfinished(): Omit<TaskRecord, 'payload'>[] {
    const tasks = super.unfinished();
    this.unfinishedTasks += tasks.length;
    for (const task of tasks) this.unfinishedBodyBytes += (task as Partial<TaskRecord>).payload?.body.length ?? 0;
    return tasks;
  }
}

/** sqlite(path) with a {@link CountingStore}. */
function counted(path: string): { backend: AsyncBackend; store: () => CountingStore } {
  let store: CountingStore | undefined;
  const backend: AsyncBackend = {
    name: 'sqlite',
    persistent: true,
    create({ concurrency, logger }) {
      const options = resolveSqliteOptions(path, {});
      store = new CountingStore(openDatabase(path, options), options, logger);
      return { store, queue: new PQueueDriver(concurrency) };
    },
  };
  return { backend, store: () => store as CountingStore };
}

function engine(
  backend: AsyncBackend,
  run: (body: Buffer, taskId: string) => Promise<number> | number,
  destinations: Destinations,
  options: { maxAsyncRetryAttempts?: number; concurrency?: number } = {},
): AsyncEngine {
  const e = new AsyncEngine(resolveAsyncOptions({ mode: 'local', backend, ...options }), {
    logger: silentLogger,
    redact: createRedactor(),
    destinations,
    run: async (request) => {
      const statusCode = await run(request.body, String(request.headers['x-fc-async-task-id']));
      return { statusCode, headers: {}, body: 'ok' };
    },
  });
  cleanups.unshift(() => e.close({ timeoutMs: 100 }));
  return e;
}

/** Whether a destination record's requestPayload is the task's request, body byte for byte. */
function carries(destination: DestinationRecord, task: TaskRecord): boolean {
  const request = JSON.parse(destination.requestPayload) as { url: string; body: string; isBase64Encoded: boolean };
  return (
    request.url === task.payload.url &&
    request.isBase64Encoded &&
    Buffer.from(request.body, 'base64').equals(task.payload.body)
  );
}

describe('sqlite(): recovery reads no request body until a task needs it', () => {
  it('70 delayed tasks of 1 MiB each (more than the 64 MiB cache): the start reads none of their bodies; each then runs with its exact body, its destination record carrying it', async () => {
    const path = tempFile();
    const dueAt = Date.now() + 300;
    const tasks = Array.from({ length: 70 }, (_, i) => large(`delayed_${i}`, { dueAt }));
    await leave(path, tasks);

    const ranWith = new Map<string, boolean>();
    const delivered = new Map<string, boolean>();
    const byId = new Map(tasks.map((t) => [t.taskId, t]));
    const { backend, store } = counted(path);
    const second = engine(
      backend,
      (body, taskId) => {
        ranWith.set(taskId, body.equals(byId.get(taskId)?.payload.body ?? Buffer.alloc(0)));
        return 200;
      },
      {
        onSuccess: (r) => {
          const task = tasks.find((t) => t.requestId === r.requestContext.requestId) as TaskRecord;
          delivered.set(task.taskId, carries(r, task));
        },
      },
    );
    await second.whenReady();
    expect(store().unfinishedTasks).toBe(70);
    // The bound: what recovery read of every unfinished task holds no request body.
    expect(store().unfinishedBodyBytes).toBe(0);
    await second.drain();

    for (const task of tasks) {
      expect((await second.tasks.get(task.taskId))?.status).toBe('Succeeded');
      expect(ranWith.get(task.taskId)).toBe(true);
      expect(delivered.get(task.taskId)).toBe(true);
    }
  });

  it('destinations a restart owes (interrupted on the last attempt, being stopped, ended with the call cut short) carry the original requestPayload', async () => {
    const path = tempFile();
    const now = Date.now();
    const interrupted = large('interrupted_last', { status: 'Running', attempts: 1 });
    const stopping = large('stopping', { status: 'Stopping', attempts: 1 });
    const cutShort = large('cut_short', {
      status: 'Failed',
      attempts: 1,
      condition: 'UnhandledInvocationError',
      taskErrorMessage: 'boom',
      endTime: now - 10,
      deliveryPending: true,
    });
    await leave(path, [interrupted, stopping, cutShort]);

    const failures: DestinationRecord[] = [];
    let runs = 0;
    const second = engine(
      counted(path).backend,
      () => {
        runs++;
        return 200;
      },
      { onFailure: (r) => void failures.push(r) },
      { maxAsyncRetryAttempts: 0 },
    );
    await second.whenReady();
    await second.drain();

    expect(runs).toBe(0);
    const of = (task: TaskRecord) => failures.filter((r) => r.requestContext.requestId === task.requestId);
    expect(of(interrupted)).toHaveLength(1);
    expect(of(interrupted)[0]?.requestContext.condition).toBe('InvocationError');
    expect(JSON.parse(of(interrupted)[0]?.responsePayload ?? '{}')).toMatchObject({ errorType: 'Interrupted' });
    expect(of(stopping)[0]?.requestContext.condition).toBe('Stopped');
    expect(of(cutShort)[0]?.requestContext.condition).toBe('UnhandledInvocationError');
    for (const task of [interrupted, stopping, cutShort]) {
      expect(of(task)).toHaveLength(1);
      expect(carries(of(task)[0] as DestinationRecord, task)).toBe(true);
    }
    expect((await second.tasks.get('interrupted_last'))?.status).toBe('Failed');
    expect((await second.tasks.get('cut_short'))?.destinationStatus).toBe('Succeeded');
  });

  it('destinations a restart owes are called `concurrency` at a time, each task read when its turn comes', async () => {
    const path = tempFile();
    const owed = Array.from({ length: 8 }, (_, i) =>
      large(`owed_${i}`, {
        status: 'Succeeded',
        attempts: 1,
        condition: '',
        endTime: Date.now(),
        deliveryPending: true,
      }),
    );
    await leave(path, owed);

    let calling = 0;
    let most = 0;
    let release: () => void = () => undefined;
    const gate = new Promise<void>((resolve) => {
      release = resolve;
    });
    cleanups.unshift(release);
    const delivered: DestinationRecord[] = [];
    const second = engine(
      counted(path).backend,
      () => 200,
      {
        onSuccess: async (r) => {
          calling++;
          most = Math.max(most, calling);
          await gate;
          calling--;
          delivered.push(r);
        },
      },
      { concurrency: 2 },
    );
    await second.whenReady();
    await until('destination calls to be under way', () => calling >= 2);
    release();
    await second.drain();
    expect(most).toBe(2);
    expect(delivered).toHaveLength(8);
    for (const task of owed) {
      const record = delivered.find((r) => r.requestContext.requestId === task.requestId) as DestinationRecord;
      expect(carries(record, task)).toBe(true);
    }
  });

  it('unfinished() gives every unfinished task without its payload, schema 1 rows too; get() still reads the body', async () => {
    const path = tempFile();
    // A schema 1 file as @fc-async/sqlite 0.1 left it: the whole record (request head included) as JSON, the body apart.
    const old = new Database(path);
    old.exec(`CREATE TABLE fc_async_tasks (task_id TEXT PRIMARY KEY NOT NULL, status TEXT NOT NULL,
        started_time INTEGER NOT NULL, end_time INTEGER, open INTEGER NOT NULL, record TEXT NOT NULL, body BLOB NOT NULL);
      PRAGMA user_version = 1;`);
    const legacy = record('legacy', { startedTime: 1_700_000_000_000 });
    const { body, ...head } = legacy.payload;
    old
      .prepare('INSERT INTO fc_async_tasks VALUES (?, ?, ?, NULL, 1, ?, ?)')
      .run('legacy', 'Enqueued', 1_700_000_000_000, JSON.stringify({ ...legacy, payload: head }), body);
    old.close();
    const waiting = record('waiting', { startedTime: 1_700_000_001_000, dueAt: 1_700_000_100_000 });
    await leave(path, [waiting, record('done', { status: 'Succeeded', endTime: 1 })]);

    const options = resolveSqliteOptions(path, {});
    const store = new SqliteTaskStore(openDatabase(path, options), options, silentLogger);
    cleanups.unshift(() => store.close());
    const heads = store.unfinished();
    const withoutPayload = ({ payload: _, ...rest }: TaskRecord) => rest;
    expect(heads).toEqual([withoutPayload(legacy), withoutPayload(waiting)]);
    expect(heads.filter((h) => 'payload' in h)).toEqual([]);
    for (const task of [legacy, waiting])
      expect(store.get(task.taskId)?.payload.body.equals(task.payload.body)).toBe(true);
  });
});
