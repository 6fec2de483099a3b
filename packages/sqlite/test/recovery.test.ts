import { join } from 'node:path';
import {
  AsyncEngine,
  type AsyncTask,
  createFcHandler,
  createRedactor,
  type DestinationRecord,
  type FcRequest,
  type Invocation,
  resolveAsyncOptions,
  silentLogger,
  TERMINAL_STATUSES,
} from '@fc-async/core';
import { asyncEvent } from '@fc-async/test-kit/fc-server';
import { taskRecord as record } from '@fc-async/test-kit/task-store';
import { afterEach, describe, expect, it } from 'vitest';
import { openDatabase } from '../src/database.js';
import { sqlite } from '../src/index.js';
import { resolveSqliteOptions } from '../src/options.js';
import { SqliteTaskStore } from '../src/store.js';
import { tempDir, until } from './helpers.js';

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0)) await c();
});

function tempFile(): string {
  const { dir, cleanup } = tempDir();
  cleanups.push(cleanup);
  return join(dir, 'tasks.db');
}

/** Writes records as a process that died would have left them. */
async function leave(path: string, records: ReturnType<typeof record>[]): Promise<void> {
  const options = resolveSqliteOptions(path, {});
  const store = new SqliteTaskStore(openDatabase(path, options), options, silentLogger);
  for (const r of records) await store.insert(r);
  store.close();
}

describe('sqlite(): recovery on start', () => {
  it('runs queued tasks, counts interrupted attempts, keeps due times, ends stopping ones, delivers cut-short destinations', async () => {
    const path = tempFile();
    const now = Date.now();
    const dueAt = now + 400;
    await leave(path, [
      record('queued', { acceptedAt: now - 50 }),
      record('running', { status: 'Running', attempts: 1 }),
      record('running_last', { status: 'Running', attempts: 3 }),
      record('delayed', { dueAt }),
      record('stopping', { status: 'Stopping', attempts: 1 }),
      record('ended_undelivered', {
        status: 'Succeeded',
        attempts: 1,
        condition: '',
        endTime: now - 10,
        returnPayload: 'all done',
        deliveryPending: true,
      }),
      record('ended_delivered', { status: 'Succeeded', attempts: 1, condition: '', endTime: now - 10 }),
    ]);
    const ranAt = new Map<string, number>();
    const successes: DestinationRecord[] = [];
    const failures: DestinationRecord[] = [];
    const handler = createFcHandler(
      (req, res) => {
        ranAt.set(String(req.headers['x-fc-async-task-id']), Date.now());
        res.end('ok');
      },
      {
        logger: silentLogger,
        env: {},
        async: { mode: 'local', maxAsyncRetryAttempts: 2, backoff: { baseMs: 1, maxMs: 2 }, backend: sqlite(path) },
        destinations: { onSuccess: (r) => void successes.push(r), onFailure: (r) => void failures.push(r) },
      },
    );
    cleanups.unshift(() => handler.close({ timeoutMs: 100 }));
    await handler.engine?.whenReady();
    await handler.drain();

    const task = async (id: string) => (await handler.tasks.get(id)) as AsyncTask;
    expect((await task('queued')).status).toBe('Succeeded');

    const running = await task('running');
    expect(running.status).toBe('Succeeded');
    expect(running.alreadyRetriedTimes).toBe(1);
    expect(running.events.map((e) => e.status)).toEqual(['Enqueued', 'Retrying', 'Dequeued', 'Running', 'Succeeded']);
    expect(running.events[1]?.eventDetail).toBe(
      'The attempt was interrupted: its process ended (or was held up past its lock) before the attempt did',
    );

    const last = await task('running_last');
    expect(last.status).toBe('Failed');
    expect(ranAt.has('running_last')).toBe(false);
    const lastRecord = failures.find((r) => r.requestContext.requestId === last.requestId);
    expect(lastRecord?.requestContext).toMatchObject({ condition: 'InvocationError', approximateInvokeCount: 3 });
    expect(JSON.parse(lastRecord?.responsePayload ?? '{}')).toMatchObject({ errorType: 'Interrupted' });
    // Cut short by the crash: it neither answered nor timed out (504 is a timeout's).
    expect(lastRecord?.responseContext).toEqual({ statusCode: 0, functionError: 'InvocationError' });

    expect((await task('delayed')).status).toBe('Succeeded');
    expect(ranAt.get('delayed')).toBeGreaterThanOrEqual(dueAt);

    expect((await task('stopping')).status).toBe('Stopped');
    expect(failures.map((r) => r.requestContext.condition).sort()).toEqual(['InvocationError', 'Stopped']);

    const undelivered = successes.filter((r) => r.requestContext.requestId === record('ended_undelivered').requestId);
    expect(undelivered).toHaveLength(1);
    expect(undelivered[0]?.responsePayload).toBe('all done');
    expect((await task('ended_undelivered')).destinationStatus).toBe('Succeeded');
    expect(ranAt.has('ended_undelivered')).toBe(false);
    expect(ranAt.has('ended_delivered')).toBe(false);
    expect(successes).toHaveLength(4); // queued, running, delayed, ended_undelivered
    const all = (await handler.tasks.list({ limit: 100 })).tasks;
    expect(all.every((t) => TERMINAL_STATUSES.has(t.status))).toBe(true);
  });

  it('a destination call for a task failed by the crash does not hold up the start or new accepts', async () => {
    const path = tempFile();
    await leave(path, [record('interrupted_last', { status: 'Running', attempts: 1 })]);
    let release: () => void = () => undefined;
    const gate = new Promise<void>((resolve) => {
      release = resolve;
    });
    const failures: DestinationRecord[] = [];
    const handler = createFcHandler((_req, res) => res.end('ok'), {
      logger: silentLogger,
      env: {},
      async: { mode: 'local', maxAsyncRetryAttempts: 0, backend: sqlite(path) },
      destinations: {
        onFailure: async (r) => {
          await gate;
          failures.push(r);
        },
      },
    });
    cleanups.unshift(() => handler.close({ timeoutMs: 100 }));
    cleanups.unshift(release);
    let ready = false;
    void handler.engine?.whenReady().then(() => {
      ready = true;
    });
    await until('the start to finish while a destination is being called', () => ready, 3000);
    expect((await handler(asyncEvent('fresh', { n: 1 }))).statusCode).toBe(202);
    release();
    await handler.drain();
    expect((await handler.tasks.get('interrupted_last'))?.status).toBe('Failed');
    expect((await handler.tasks.get('fresh'))?.status).toBe('Succeeded');
    expect(failures.map((r) => r.requestContext.condition)).toEqual(['InvocationError']);
  });

  it('a task accepted before a shutdown keeps its trace context and payload into the next process', async () => {
    const path = tempFile();
    const traceparent = '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01';
    const seen: { traceContext?: Record<string, string>; body?: string }[] = [];
    const engine = (onRun: (request: FcRequest) => void) =>
      new AsyncEngine(resolveAsyncOptions({ mode: 'local', backend: sqlite(path) }), {
        logger: silentLogger,
        redact: createRedactor(),
        run: async (request) => {
          onRun(request);
          return { statusCode: 200, headers: {}, body: 'ok' };
        },
        hooks: {
          accepted: () => ({ traceContext: { traceparent } }),
          attempt: (task, _attempt, run) => {
            seen.push({ traceContext: task.traceContext });
            return run();
          },
        },
      });
    const first = engine(() => {
      throw new Error('must not run in the first process');
    });
    const request: FcRequest = {
      method: 'POST',
      url: '/jobs',
      headers: { 'x-fc-async-delay': '1', authorization: 'Bearer secret', 'content-type': 'application/json' },
      body: Buffer.from('{"n":1}'),
    };
    const invocation = { requestId: '1-64f6d6e7-000000000000000000000001', taskId: 'later' } as Invocation;
    expect((await first.accept(request, invocation)).statusCode).toBe(202);
    await first.close({ timeoutMs: 10 });

    const bodies: string[] = [];
    const second = engine((r) => bodies.push(r.body.toString()));
    cleanups.unshift(() => second.close({ timeoutMs: 100 }));
    await second.whenReady();
    await second.drain();
    expect(seen).toEqual([{ traceContext: { traceparent } }]);
    expect(bodies).toEqual(['{"n":1}']);
    const task = await second.tasks.get('later');
    expect(task?.status).toBe('Succeeded');
    expect(task?.taskPayload).not.toContain('secret');
  });

  it('an attempt aborted by a shutdown is left for the next start, which runs it even on its last attempt', async () => {
    const path = tempFile();
    const engine = (run: (signal: AbortSignal) => Promise<{ statusCode: number; headers: {}; body: string }>) =>
      new AsyncEngine(resolveAsyncOptions({ mode: 'local', maxAsyncRetryAttempts: 0, backend: sqlite(path) }), {
        logger: silentLogger,
        redact: createRedactor(),
        run: (_request, invocation) => run(invocation.signal),
      });
    let started = false;
    const first = engine(
      (signal) =>
        new Promise((_resolve, reject) => {
          started = true;
          signal.addEventListener('abort', () => reject(new Error('aborted')));
        }),
    );
    const request: FcRequest = { method: 'POST', url: '/jobs', headers: {}, body: Buffer.from('x') };
    const invocation = { requestId: '1-64f6d6e7-000000000000000000000002', taskId: 'cut' } as Invocation;
    expect((await first.accept(request, invocation)).statusCode).toBe(202);
    await until('the attempt to start', () => started);
    await first.close({ timeoutMs: 10 });

    let runs = 0;
    const second = engine(async () => {
      runs++;
      return { statusCode: 200, headers: {}, body: 'ok' };
    });
    cleanups.unshift(() => second.close({ timeoutMs: 100 }));
    await second.whenReady();
    await second.drain();
    const task = await second.tasks.get('cut');
    expect(task?.status).toBe('Succeeded');
    expect(runs).toBe(1);
    // The cut attempt was not counted: the one that ran is the first.
    expect(task?.alreadyRetriedTimes).toBe(0);
    expect(task?.events.map((e) => e.status)).toEqual([
      'Enqueued',
      'Dequeued',
      'Running',
      'Retrying',
      'Dequeued',
      'Running',
      'Succeeded',
    ]);
  });

  it('a cut attempt that answers its abort (a partial result) is not a success, nor counted: its retry still helps after the restart', async () => {
    const path = tempFile();
    const attempts: number[] = [];
    const engine = (
      run: (signal: AbortSignal, attempt: number) => Promise<{ statusCode: number; headers: {}; body: string }>,
    ) =>
      new AsyncEngine(resolveAsyncOptions({ mode: 'local', maxAsyncRetryAttempts: 1, backend: sqlite(path) }), {
        logger: silentLogger,
        redact: createRedactor(),
        run: (_request, invocation) => {
          attempts.push(invocation.attempt);
          return run(invocation.signal, invocation.attempt);
        },
      });
    let started = false;
    // The docs' pattern: on abort, stop the work and answer what was done so far.
    const first = engine(
      (signal) =>
        new Promise((resolve) => {
          started = true;
          signal.addEventListener('abort', () => resolve({ statusCode: 200, headers: {}, body: 'partial' }));
        }),
    );
    const request: FcRequest = { method: 'POST', url: '/deploy', headers: {}, body: Buffer.from('x') };
    const invocation = { requestId: '1-64f6d6e7-000000000000000000000003', taskId: 'deploy' } as Invocation;
    expect((await first.accept(request, invocation)).statusCode).toBe(202);
    await until('the attempt to start', () => started);
    await first.close({ timeoutMs: 10 });

    // After the restart: a transient failure, then a success, as one retry allows.
    const second = engine(async (_signal, attempt) =>
      attempt === 0 ? { statusCode: 500, headers: {}, body: 'flaky' } : { statusCode: 200, headers: {}, body: 'done' },
    );
    cleanups.unshift(() => second.close({ timeoutMs: 100 }));
    await second.whenReady();
    await until('the task to end', async () =>
      TERMINAL_STATUSES.has((await second.tasks.get('deploy'))?.status ?? 'Enqueued'),
    );
    const task = await second.tasks.get('deploy');
    expect([task?.status, task?.returnPayload, task?.alreadyRetriedTimes]).toEqual(['Succeeded', 'done', 1]);
    expect(attempts).toEqual([0, 0, 1]);
  });

  it('an attempt that fails while a close drains fails as usual, once, rather than run again at once', async () => {
    const path = tempFile();
    const failures: DestinationRecord[] = [];
    let runs = 0;
    const engine = new AsyncEngine(
      resolveAsyncOptions({ mode: 'local', maxAsyncRetryAttempts: 0, backend: sqlite(path) }),
      {
        logger: silentLogger,
        redact: createRedactor(),
        destinations: { onFailure: (r) => void failures.push(r) },
        run: async () => {
          runs++;
          await new Promise((resolve) => setTimeout(resolve, 50));
          return { statusCode: 500, headers: {}, body: 'no' };
        },
      },
    );
    const request: FcRequest = { method: 'POST', url: '/jobs', headers: {}, body: Buffer.from('x') };
    const invocation = { requestId: '1-64f6d6e7-000000000000000000000004', taskId: 'drained' } as Invocation;
    expect((await engine.accept(request, invocation)).statusCode).toBe(202);
    await until('the attempt to start', () => runs === 1);
    await engine.close({ timeoutMs: 1000 });
    expect(runs).toBe(1);
    expect(failures.map((f) => f.requestContext.condition)).toEqual(['UnhandledInvocationError']);
  });

  it('every 202 of a burst is on disk for the next process', async () => {
    const path = tempFile();
    const handler = createFcHandler((_req, res) => res.end('ok'), {
      logger: silentLogger,
      env: {},
      async: { mode: 'local', backend: sqlite(path) },
    });
    const results = await Promise.all(
      Array.from({ length: 300 }, (_, i) =>
        handler(asyncEvent(`t_${i}`, { task: `t_${i}` }, { 'X-Fc-Async-Delay': '3599' })),
      ),
    );
    expect(results.every((r) => r.statusCode === 202)).toBe(true);
    await handler.close({ timeoutMs: 10 });
    const options = resolveSqliteOptions(path, {});
    const store = new SqliteTaskStore(openDatabase(path, options), options, silentLogger);
    cleanups.unshift(() => store.close());
    expect(
      store
        .unfinished()
        .map((r) => r.taskId)
        .sort(),
    ).toEqual(Array.from({ length: 300 }, (_, i) => `t_${i}`).sort());
  });
});
