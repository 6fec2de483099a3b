import type { IncomingMessage, ServerResponse } from 'node:http';
import { createFcHandler, type DestinationRecord, type FcHandler, getInvocation, silentLogger } from '@fc-async/core';
import { asyncEvent } from '@fc-async/test-kit/fc-server';
import { taskRecord } from '@fc-async/test-kit/task-store';
import { Redis } from 'ioredis';
import { afterEach, describe, expect, inject, it } from 'vitest';
import { bullmq } from '../src/index.js';
import { keysOf } from '../src/keys.js';
import { resolveBullmqOptions } from '../src/options.js';
import { Pruner } from '../src/prune.js';
import { jobIdOf } from '../src/queue.js';
import type { RedisTaskStore } from '../src/store.js';
import { bullQueue, openStore, uniquePrefix, until } from './helpers.js';

type App = (req: IncomingMessage, res: ServerResponse) => unknown;

const closers: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const close of closers.splice(0).reverse()) await close();
});

function gate() {
  let open!: () => void;
  const opened = new Promise<void>((resolve) => {
    open = resolve;
  });
  return { opened, open };
}

/** An instance whose destinations record each call, and wait for `held` first when given. */
function instance(
  prefix: string,
  app: App,
  options: { worker?: boolean; concurrency?: number; held?: Promise<void>; maxAsyncRetryAttempts?: number },
) {
  const delivered: DestinationRecord[] = [];
  const destination = async (record: DestinationRecord) => {
    delivered.push(record);
    await options.held;
  };
  const handler = createFcHandler(app, {
    logger: silentLogger,
    env: {},
    async: {
      mode: 'local',
      concurrency: options.concurrency,
      maxAsyncRetryAttempts: options.maxAsyncRetryAttempts,
      backoff: { baseMs: 10, maxMs: 10 },
      backend: bullmq({ connection: inject('redisUrl'), prefix, worker: options.worker }),
    },
    destinations: { onSuccess: destination, onFailure: destination },
  });
  closers.push(() => handler.close({ timeoutMs: 1000 }));
  return { handler, delivered };
}

function storeOf(handler: FcHandler): RedisTaskStore {
  return (handler.engine as unknown as { store: RedisTaskStore }).store;
}

describe('bullmq(): races between instances', () => {
  it('a stop that wins over a worker which took the job but had not claimed the task yet: Stopped, never run, one destination call', async () => {
    const prefix = uniquePrefix();
    const delivering = gate();
    const ran: string[] = [];
    const acceptor = instance(prefix, (_req, res) => res.end(), { worker: false, held: delivering.opened });
    const worker = instance(
      prefix,
      (req, res) => {
        ran.push(String(getInvocation(req)?.taskId));
        res.end();
      },
      {},
    );
    await worker.handler.engine?.whenReady();
    // The worker has the job (BullMQ moved it to active) and reads the task only once the stop is done.
    const store = storeOf(worker.handler);
    const peek = store.peek.bind(store);
    const taken = gate();
    const stopDone = gate();
    store.peek = async (taskId) => {
      taken.open();
      await stopDone.opened;
      return peek(taskId);
    };
    expect((await acceptor.handler(asyncEvent('raced'))).statusCode).toBe(202);
    await taken.opened;
    expect((await acceptor.handler.tasks.stop('raced')).status).toBe('Stopped');
    stopDone.open();
    // The acceptor's destination call is still under way while the worker reads the task.
    const queue = bullQueue(prefix, closers);
    await until('the worker to be done with the job', async () => (await queue.getJob(jobIdOf('raced'))) === undefined);
    await worker.handler.drain();
    delivering.open();
    await acceptor.handler.drain();
    expect(ran).toEqual([]);
    expect((await acceptor.handler.tasks.get('raced'))?.status).toBe('Stopped');
    expect([acceptor.delivered.length, worker.delivered.length]).toEqual([1, 0]);
    expect(acceptor.delivered[0]?.requestContext.condition).toBe('Stopped');
  });

  it('a stop that lands as a successful attempt writes its end: the refused end keeps the job, so an instance dying before the Stopped write leaves the task to another, which ends it Stopped', async () => {
    // Why an attempt's end is not sent with BullMQ's completion unanswered: the end's
    // compare-and-set can lose to a stop, and the Stopped write comes after its reply. Had the
    // completion left with the end, the job would be gone here and the task Stopping for good.
    const prefix = uniquePrefix();
    const options = { lockDurationMs: 500, stalledIntervalMs: 250 };
    const app: App = (_req, res) => res.end();
    const dying = createFcHandler(app, {
      logger: silentLogger,
      env: {},
      async: { mode: 'local', backend: bullmq({ connection: inject('redisUrl'), prefix, ...options }) },
    });
    closers.push(() => dying.close({ timeoutMs: 100 }));
    await dying.engine?.whenReady();
    const { store: other, close } = await openStore(prefix);
    closers.push(close);
    const store = storeOf(dying);
    const transition = store.transition.bind(store);
    const died = gate();
    let buried!: (error: Error) => void;
    store.transition = async (taskId, status, transitionOptions) => {
      if (status === 'Succeeded') {
        // Another instance's stop lands first: this end, written on a stale version, is refused.
        expect(await other.transition(taskId, 'Stopping', { from: ['Running'] })).toBeDefined();
        expect(await transition(taskId, status, transitionOptions)).toBeUndefined();
        // The instance dies before it writes anything more: its connections drop, its job's lock is not renewed.
        const redis = (store as unknown as { redis: Redis & { disconnectCopies(): void } }).redis;
        redis.disconnectCopies();
        redis.disconnect(false);
        died.open();
        return new Promise<never>((_resolve, reject) => {
          buried = reject;
        });
      }
      return transition(taskId, status, transitionOptions);
    };
    expect((await dying(asyncEvent('lands'))).statusCode).toBe(202);
    await died.opened;
    const queue = bullQueue(prefix, closers);
    expect(await queue.getJob(jobIdOf('lands'))).toBeDefined();
    const taker = createFcHandler(app, {
      logger: silentLogger,
      env: {},
      async: { mode: 'local', backend: bullmq({ connection: inject('redisUrl'), prefix, ...options }) },
    });
    closers.push(() => taker.close({ timeoutMs: 1000 }));
    await until('the task to be stopped', async () => (await other.get('lands'))?.status === 'Stopped');
    await until('its job to be done', async () => (await queue.getJob(jobIdOf('lands'))) === undefined);
    // The dead instance's attempt is let go, so that it closes without waiting out its graces.
    buried(new Error('the instance is dead'));
  });

  it('a task stopped while delayed and then sent again under its id (409): one destination call, never run', async () => {
    const prefix = uniquePrefix();
    const delivering = gate();
    const ran: string[] = [];
    const acceptor = instance(prefix, (_req, res) => res.end(), { worker: false, held: delivering.opened });
    const worker = instance(
      prefix,
      (req, res) => {
        ran.push(String(getInvocation(req)?.taskId));
        res.end();
      },
      {},
    );
    await worker.handler.engine?.whenReady();
    expect((await acceptor.handler(asyncEvent('again', {}, { 'X-Fc-Async-Delay': '60' }))).statusCode).toBe(202);
    expect((await acceptor.handler.tasks.stop('again')).status).toBe('Stopped');
    // The 409 still adds a job under the id: the stop removed the task's own.
    expect((await acceptor.handler(asyncEvent('again'))).statusCode).toBe(409);
    await acceptor.handler.tasks.get('again'); // after the job's add, on the same connection
    const queue = bullQueue(prefix, closers);
    await until('the worker to be done with the job', async () => (await queue.getJob(jobIdOf('again'))) === undefined);
    await worker.handler.drain();
    delivering.open();
    await acceptor.handler.drain();
    expect(ran).toEqual([]);
    expect([acceptor.delivered.length, worker.delivered.length]).toEqual([1, 0]);
  });

  it('a closing instance takes no new task: what waits is left to the other instances', async () => {
    const prefix = uniquePrefix();
    const first = gate();
    const ran: string[] = [];
    const app =
      (name: string): App =>
      async (req, res) => {
        const taskId = String(getInvocation(req)?.taskId);
        ran.push(`${name}:${taskId}`);
        if (taskId === 'first') await first.opened;
        res.end();
      };
    const acceptor = instance(prefix, app('acceptor'), { worker: false });
    const closing = instance(prefix, app('closing'), { concurrency: 2 });
    await closing.handler.engine?.whenReady();
    await acceptor.handler(asyncEvent('first'));
    await until('the closing instance to run the first task', () => ran.length === 1);
    const closed = closing.handler.close({ timeoutMs: 30_000 });
    // A slot is free and a task comes: the closing instance must leave it.
    expect((await acceptor.handler(asyncEvent('second'))).statusCode).toBe(202);
    const other = instance(prefix, app('other'), {});
    await until('another instance to run the second task', async () => {
      return (await acceptor.handler.tasks.get('second'))?.status === 'Succeeded';
    });
    first.open();
    await closed;
    expect(ran).toEqual(['closing:first', 'other:second']);
    expect((await acceptor.handler.tasks.get('first'))?.status).toBe('Succeeded');
    expect(other.delivered.map((r) => r.requestContext.condition)).toEqual(['']);
  });

  it('an attempt that ignores its abort past the close: no other instance runs the task while it still runs here', async () => {
    const prefix = uniquePrefix();
    const ran: string[] = [];
    const stubborn = gate();
    const app =
      (name: string): App =>
      async (_req, res) => {
        ran.push(`${name}:start`);
        // The closing instance's attempt ignores its abort and goes on after close() has ended.
        if (name === 'closing') await stubborn.opened;
        ran.push(`${name}:end`);
        res.end();
      };
    const closing = createFcHandler(app('closing'), {
      logger: silentLogger,
      env: {},
      async: {
        mode: 'local',
        stopGraceMs: 100,
        backend: bullmq({ connection: inject('redisUrl'), prefix, lockDurationMs: 3000, stalledIntervalMs: 500 }),
      },
    });
    closers.push(() => closing.close({ timeoutMs: 100 }));
    expect((await closing(asyncEvent('stubborn'))).statusCode).toBe(202);
    await until('the closing instance to run the task', () => ran.includes('closing:start'));
    const other = instance(prefix, app('other'), {});
    await other.handler.engine?.whenReady();
    await closing.close({ timeoutMs: 200 });
    // The process goes on (a test runner, a server that outlives its handler): the attempt still runs.
    await new Promise((resolve) => setTimeout(resolve, 1000));
    ran.push('closing:still-running');
    stubborn.open();
    await until('another instance to finish the task', async () => {
      return (await other.handler.tasks.get('stubborn'))?.status === 'Succeeded';
    });
    expect(ran).toEqual(['closing:start', 'closing:still-running', 'closing:end', 'other:start', 'other:end']);
    expect(other.delivered.map((r) => r.requestContext.condition)).toEqual(['']);
  });

  it('the last attempt cut short by its instance closing is run again by another instance, uncounted, however many attempts BullMQ counted', async () => {
    const prefix = uniquePrefix();
    const ran: string[] = [];
    const app =
      (name: string): App =>
      (req, res) => {
        const invocation = getInvocation(req);
        ran.push(`${name}:${invocation?.attempt}`);
        res.statusCode = 500;
        if (name === 'closing' && invocation?.attempt === 8) {
          invocation.signal?.addEventListener('abort', () => res.end('cut'));
          return;
        }
        if (name === 'other') res.statusCode = 200;
        res.end();
      };
    const closing = instance(prefix, app('closing'), { maxAsyncRetryAttempts: 8 });
    expect((await closing.handler(asyncEvent('ninth'))).statusCode).toBe(202);
    await until('the ninth attempt, the last one allowed', () => ran.includes('closing:8'));
    await closing.handler.close({ timeoutMs: 100 });
    const other = instance(prefix, app('other'), { maxAsyncRetryAttempts: 8 });
    await until('another instance to finish the task', async () => {
      return (await other.handler.tasks.get('ninth'))?.status === 'Succeeded';
    });
    // Under the same number: the cut attempt was not the function's failure.
    expect(ran.slice(8)).toEqual(['closing:8', 'other:8']);
    expect((await other.handler.tasks.get('ninth'))?.alreadyRetriedTimes).toBe(8);
  });

  it('a task id deleted by retention and accepted again runs, although the worker still caches the first task, its event past the age', async () => {
    const prefix = uniquePrefix();
    const ran: string[] = [];
    const acceptor = instance(prefix, (_req, res) => res.end(), { worker: false });
    const worker = instance(
      prefix,
      (req, res) => {
        ran.push(String(getInvocation(req)?.requestId));
        res.end();
      },
      {},
    );
    await worker.handler.engine?.whenReady();
    // The worker accepted a first task under the id two days ago (and keeps it in its cache); the
    // task ended elsewhere, and retention deleted it.
    const twoDaysAgo = Date.now() - 2 * 86_400_000;
    await storeOf(worker.handler).insert(taskRecord('reused', { requestId: 'first', acceptedAt: twoDaysAgo }));
    const { store, close } = await openStore(prefix);
    closers.push(close);
    await store.transition('reused', 'Succeeded', { from: ['Enqueued'], patch: { endTime: twoDaysAgo } });
    const redis = new Redis(inject('redisUrl'));
    closers.push(async () => void (await redis.quit()));
    const options = resolveBullmqOptions({ connection: inject('redisUrl'), maxTasks: 0 });
    expect(await new Pruner(redis, keysOf(prefix), options, silentLogger, () => undefined).run()).toBe(1);
    const accepted = await acceptor.handler(asyncEvent('reused'));
    expect(accepted.statusCode).toBe(202);
    await until('the second task to end', async () => {
      const task = await acceptor.handler.tasks.get('reused');
      return task?.status !== 'Enqueued' && task?.status !== 'Running';
    });
    const task = await acceptor.handler.tasks.get('reused');
    expect([task?.status, task?.requestId]).toEqual(['Succeeded', accepted.headers['x-fc-request-id']]);
    expect(ran).toEqual([accepted.headers['x-fc-request-id']]);
  });
});
