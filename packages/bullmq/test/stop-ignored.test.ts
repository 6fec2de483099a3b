import type { IncomingMessage, ServerResponse } from 'node:http';
import {
  type AsyncTask,
  createFcHandler,
  type DestinationRecord,
  type FcHandler,
  getInvocation,
  silentLogger,
} from '@fc-async/core';
import { asyncEvent } from '@fc-async/test-kit/fc-server';
import { afterEach, expect, inject, it } from 'vitest';
import { bullmq } from '../src/index.js';
import { bullQueue, uniquePrefix, until } from './helpers.js';

// A stop of a task running on another instance whose app never looks at its signal: the task ends
// Stopped once `stopGraceMs` has run out, with one onFailure call, is never run again (on its
// instance or any other) while the ignored app goes on, and the app's late answer changes nothing.
// The in-process engine holds the same (core's async-local tests); here the stop crosses Redis.

const closers: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const close of closers.splice(0).reverse()) await close();
});

const GRACE_MS = 300;

/** What every instance of one test reports: attempts started, and destination calls. */
interface Seen {
  ran: string[];
  /** The instance that called onFailure, by call. */
  failedBy: string[];
  successes: DestinationRecord[];
  failures: DestinationRecord[];
  /** Tasks whose late answer found its response let go of (the engine had settled the attempt). */
  answeredLetGo: string[];
}

function seen(): Seen {
  return { ran: [], failedBy: [], successes: [], failures: [], answeredLetGo: [] };
}

type App = (req: IncomingMessage, res: ServerResponse) => unknown;

/**
 * An app that never looks at its signal: a task whose id starts with `stubborn` answers only when
 * the test calls its entry in `held` (its late answer, a 200, resolved once sent, or at once when
 * the engine, done with the attempt, let go of its response); any other answers at once.
 */
function stubbornApp(name: string, seen: Seen, held: Map<string, () => Promise<void>>): App {
  return (req, res) => {
    const invocation = getInvocation(req);
    const taskId = invocation?.taskId ?? '';
    seen.ran.push(`${name}:${taskId}:${invocation?.attempt}`);
    if (!taskId.startsWith('stubborn')) {
      res.end('quick');
      return;
    }
    held.set(
      taskId,
      () =>
        new Promise<void>((resolve) => {
          if (res.destroyed) {
            seen.answeredLetGo.push(taskId);
            res.end('late answer');
            setImmediate(resolve);
            return;
          }
          res.on('finish', () => setImmediate(resolve));
          res.end('late answer');
        }),
    );
  };
}

function instance(
  name: string,
  prefix: string,
  worker: boolean,
  s: Seen,
  held: Map<string, () => Promise<void>>,
  stopGraceMs = GRACE_MS,
): FcHandler {
  const handler = createFcHandler(stubbornApp(name, s, held), {
    logger: silentLogger,
    env: {},
    async: {
      mode: 'local',
      concurrency: 1,
      stopGraceMs,
      backoff: { baseMs: 10, maxMs: 10 },
      backend: bullmq({
        connection: inject('redisUrl'),
        prefix,
        worker,
        lockDurationMs: 1000,
        stalledIntervalMs: 500,
      }),
    },
    destinations: {
      onSuccess: (record) => void s.successes.push(record),
      onFailure: (record) => {
        s.failures.push(record);
        s.failedBy.push(name);
      },
    },
  });
  closers.push(() => handler.close({ timeoutMs: 500 }));
  return handler;
}

const statuses = (task: AsyncTask | undefined) => task?.events?.map((e) => e.status);

/** Waits until `taskId` reads Stopped with its onFailure call made, then expects what a stop leaves. */
async function expectStoppedOnce(api: FcHandler, taskId: string, s: Seen): Promise<AsyncTask | undefined> {
  await until('the task Stopped and delivered', async () => {
    const task = await api.tasks.get(taskId);
    return task?.status === 'Stopped' && task.destinationStatus !== undefined;
  });
  const task = await api.tasks.get(taskId);
  expect(s.failures.map((r) => [r.requestContext.requestId, r.requestContext.condition])).toEqual([
    [task?.requestId, 'Stopped'],
  ]);
  expect(s.successes).toEqual([]);
  return task;
}

/** A accepting (no worker); B running `stubborn`, whose app ignores its abort; C, a third worker, ready. */
async function stubbornOnB() {
  const prefix = uniquePrefix();
  const s = seen();
  const held = new Map<string, () => Promise<void>>();
  const api = instance('A', prefix, false, s, held);
  const b = instance('B', prefix, true, s, held);
  expect((await api(asyncEvent('stubborn'))).statusCode).toBe(202);
  await until('B running it', () => held.has('stubborn'));
  const c = instance('C', prefix, true, s, held);
  await c.engine?.whenReady();
  return { prefix, s, held, api, b };
}

/** C takes new work and never got the stopped task, whose held attempt's late answer changes nothing. */
async function onlyNextRunsOnC(
  api: FcHandler,
  task: AsyncTask | undefined,
  s: Seen,
  held: Map<string, () => Promise<void>>,
): Promise<void> {
  expect((await api(asyncEvent('next'))).statusCode).toBe(202);
  await until('next to succeed', async () => (await api.tasks.get('next'))?.status === 'Succeeded');
  await held.get('stubborn')?.();
  expect(s.answeredLetGo).toEqual(['stubborn']);
  expect(await api.tasks.get('stubborn')).toEqual(task);
  expect(s.ran).toEqual(['B:stubborn:0', 'C:next:0']);
  expect(s.failures).toHaveLength(1);
}

it('a stop sent to the accepting instance ends an ignored attempt on the worker: Stopped once, never run again', async () => {
  const prefix = uniquePrefix();
  const s = seen();
  const held = new Map<string, () => Promise<void>>();
  const api = instance('A', prefix, false, s, held);
  const b = instance('B', prefix, true, s, held);
  expect((await api(asyncEvent('stubborn'))).statusCode).toBe(202);
  await until('B running it', () => held.has('stubborn'));
  expect((await api.tasks.get('stubborn'))?.status).toBe('Running');

  expect((await api.tasks.stop('stubborn')).status).toBe('Stopping');
  expect((await api.tasks.get('stubborn'))?.status).toBe('Stopping');
  const task = await expectStoppedOnce(api, 'stubborn', s);
  expect(statuses(task)).toEqual(['Enqueued', 'Dequeued', 'Running', 'Stopping', 'Stopped']);
  expect(task?.taskErrorMessage).toBe('The task was stopped');
  // Its job is gone: no instance, this one or one started now, can run it again.
  expect(await bullQueue(prefix, closers).getJob('stubborn')).toBeUndefined();

  // B's one slot is free again while the ignored app still runs (as with the in-process queue).
  expect((await api(asyncEvent('next'))).statusCode).toBe(202);
  await until('next to succeed', async () => (await api.tasks.get('next'))?.status === 'Succeeded');
  const c = instance('C', prefix, true, s, held);
  await c.engine?.whenReady();

  // The app's late answer changes nothing: it goes to a response let go of when the stop settled.
  await held.get('stubborn')?.();
  expect(s.answeredLetGo).toEqual(['stubborn']);
  await b.drain();
  expect(await api.tasks.get('stubborn')).toEqual(task);
  expect(s.ran).toEqual(['B:stubborn:0', 'B:next:0']);
  expect(s.successes.map((r) => r.requestContext.requestId)).toEqual([(await api.tasks.get('next'))?.requestId]);
  expect(s.failures).toHaveLength(1);
});

it('the worker closed while its ignored attempt is being stopped: Stopped once, not handed to another instance', async () => {
  const { prefix, s, held, api, b } = await stubbornOnB();

  expect((await api.tasks.stop('stubborn')).status).toBe('Stopping');
  await b.close({ timeoutMs: 0 });
  // B recorded the stop and called onFailure before its close resolved: nothing was left owed for
  // another instance to find once B's lock on the job expired.
  expect(s.failedBy).toEqual(['B']);
  const task = await expectStoppedOnce(api, 'stubborn', s);
  expect(statuses(task)).toEqual(['Enqueued', 'Dequeued', 'Running', 'Stopping', 'Stopped']);
  expect(await bullQueue(prefix, closers).getJob('stubborn')).toBeUndefined();

  // C takes new work, and never got the stopped task.
  await onlyNextRunsOnC(api, task, s, held);
});

it('the worker closing past its deadline, then stopped from the other instance: Stopped once, never run again', async () => {
  const { prefix, s, held, api, b } = await stubbornOnB();

  // B's close aborts the attempt (ShuttingDown) at once; the app ignores it; the stop comes during the grace.
  const closing = b.close({ timeoutMs: 0 });
  expect((await api.tasks.stop('stubborn')).status).toBe('Stopping');
  await closing;
  const task = await expectStoppedOnce(api, 'stubborn', s);
  expect(statuses(task)).toEqual(['Enqueued', 'Dequeued', 'Running', 'Stopping', 'Stopped']);
  expect(await bullQueue(prefix, closers).getJob('stubborn')).toBeUndefined();

  await onlyNextRunsOnC(api, task, s, held);
});

it('an ignored attempt that answers within its grace: Stopped as it answers, its answer not kept nor delivered', async () => {
  const prefix = uniquePrefix();
  const s = seen();
  const held = new Map<string, () => Promise<void>>();
  const api = instance('A', prefix, false, s, held);
  instance('B', prefix, true, s, held, 60_000);
  expect((await api(asyncEvent('stubborn'))).statusCode).toBe(202);
  await until('B running it', () => held.has('stubborn'));
  expect((await api.tasks.stop('stubborn')).status).toBe('Stopping');
  await held.get('stubborn')?.();
  expect(s.answeredLetGo).toEqual([]);
  const task = await expectStoppedOnce(api, 'stubborn', s);
  expect(statuses(task)).toEqual(['Enqueued', 'Dequeued', 'Running', 'Stopping', 'Stopped']);
  expect(task?.returnPayload).toBeUndefined();
  expect(await bullQueue(prefix, closers).getJob('stubborn')).toBeUndefined();
  expect(s.ran).toEqual(['B:stubborn:0']);
});

it('the worker closed, its ignored attempt given up, then stopped: Stopped at once, the held-back job never run', async () => {
  const { prefix, s, held, api, b } = await stubbornOnB();
  // Given up past the grace: the task waits, Retrying, for a lock's length before another instance may run it.
  await b.close({ timeoutMs: 0 });
  expect((await api.tasks.get('stubborn'))?.status).toBe('Retrying');
  expect((await api.tasks.stop('stubborn')).status).toBe('Stopped');
  const task = await expectStoppedOnce(api, 'stubborn', s);
  expect(statuses(task)).toEqual(['Enqueued', 'Dequeued', 'Running', 'Retrying', 'Stopped']);
  expect(await bullQueue(prefix, closers).getJob('stubborn')).toBeUndefined();

  await onlyNextRunsOnC(api, task, s, held);
});

it('a task stopped while Enqueued is never run by a worker that starts after', async () => {
  const prefix = uniquePrefix();
  const s = seen();
  const held = new Map<string, () => Promise<void>>();
  const api = instance('A', prefix, false, s, held);
  expect((await api(asyncEvent('stubborn'))).statusCode).toBe(202);
  expect((await api.tasks.get('stubborn'))?.status).toBe('Enqueued');
  expect((await api.tasks.stop('stubborn')).status).toBe('Stopped');
  const task = await expectStoppedOnce(api, 'stubborn', s);
  expect(statuses(task)).toEqual(['Enqueued', 'Stopped']);

  const b = instance('B', prefix, true, s, held);
  expect((await api(asyncEvent('next'))).statusCode).toBe(202);
  await until('next to succeed', async () => (await api.tasks.get('next'))?.status === 'Succeeded');
  await b.drain();
  expect(s.ran).toEqual(['B:next:0']);
  expect(await api.tasks.get('stubborn')).toEqual(task);
  expect(s.failures).toHaveLength(1);
});

it('a task stopped while queued behind a busy worker is not run once the worker is free', async () => {
  const prefix = uniquePrefix();
  const s = seen();
  const held = new Map<string, () => Promise<void>>();
  const api = instance('A', prefix, false, s, held);
  const b = instance('B', prefix, true, s, held);
  expect((await api(asyncEvent('stubborn-first'))).statusCode).toBe(202);
  await until('B busy', () => held.has('stubborn-first'));
  expect((await api(asyncEvent('stubborn-second'))).statusCode).toBe(202);
  expect((await api.tasks.stop('stubborn-second')).status).toBe('Stopped');
  await expectStoppedOnce(api, 'stubborn-second', s);
  // B's slot frees: the stopped one is not what it runs next.
  await held.get('stubborn-first')?.();
  await until('first to succeed', async () => (await api.tasks.get('stubborn-first'))?.status === 'Succeeded');
  expect((await api(asyncEvent('next'))).statusCode).toBe(202);
  await until('next to succeed', async () => (await api.tasks.get('next'))?.status === 'Succeeded');
  await b.drain();
  expect(s.ran).toEqual(['B:stubborn-first:0', 'B:next:0']);
  expect(s.failures).toHaveLength(1);
});
