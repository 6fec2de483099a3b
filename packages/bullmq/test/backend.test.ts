import type { IncomingMessage, ServerResponse } from 'node:http';
import {
  createFcHandler,
  type DestinationRecord,
  type FcHandler,
  getInvocation,
  type Logger,
  silentLogger,
} from '@fc-async/core';
import { asyncEvent } from '@fc-async/test-kit/fc-server';
import { Queue } from 'bullmq';
import { afterEach, describe, expect, inject, it, vi } from 'vitest';
import { bullmq } from '../src/index.js';
import { jobIdOf } from '../src/queue.js';
import { bullQueue, uniquePrefix, until } from './helpers.js';

type App = (req: IncomingMessage, res: ServerResponse) => unknown;

const closers: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const close of closers.splice(0).reverse()) await close();
});

function instance(
  prefix: string,
  app: App,
  options: { worker?: boolean; maxQueuedTasks?: number; backoffMs?: number; logger?: Logger } = {},
) {
  const successes: DestinationRecord[] = [];
  const failures: DestinationRecord[] = [];
  const handler = createFcHandler(app, {
    logger: options.logger ?? silentLogger,
    env: {},
    async: {
      mode: 'local',
      maxAsyncRetryAttempts: 2,
      maxQueuedTasks: options.maxQueuedTasks,
      backoff: { baseMs: options.backoffMs ?? 300, maxMs: options.backoffMs ?? 300, jitter: 'none' },
      backend: bullmq({ connection: inject('redisUrl'), prefix, worker: options.worker }),
    },
    destinations: { onSuccess: (r) => void successes.push(r), onFailure: (r) => void failures.push(r) },
  });
  closers.push(() => handler.close({ timeoutMs: 1000 }));
  return { handler, successes, failures };
}

const ok: App = (_req, res) => res.end('ok');

async function status(handler: FcHandler, taskId: string) {
  return (await handler.tasks.get(taskId))?.status;
}

describe('bullmq(): several instances in one process', () => {
  it('one instance accepts, another runs; both see the task; a task id is refused on every instance once taken', async () => {
    const prefix = uniquePrefix();
    const ran: number[] = [];
    const acceptor = instance(prefix, ok, { worker: false });
    const worker = instance(prefix, (req, res) => {
      ran.push(getInvocation(req)?.attempt ?? -1);
      res.end('done');
    });
    const accepted = await acceptor.handler(asyncEvent('t_1'));
    expect(accepted.statusCode).toBe(202);
    await acceptor.handler.drain(); // nothing runs on an accept-only instance
    await until('the worker to finish the task', async () => (await status(worker.handler, 't_1')) === 'Succeeded');
    expect(await status(acceptor.handler, 't_1')).toBe('Succeeded');
    expect(ran).toEqual([0]);
    await until('the destination', () => worker.successes.length === 1);
    expect(worker.successes[0]?.responsePayload).toBe('done');
    expect(acceptor.successes).toHaveLength(0);
    expect((await worker.handler(asyncEvent('t_1'))).statusCode).toBe(409);
    expect((await acceptor.handler(asyncEvent('t_1'))).statusCode).toBe(409);
  });

  it('a retry is a BullMQ retry of the job named by the task id, delayed by the engine’s backoff', async () => {
    const prefix = uniquePrefix();
    let calls = 0;
    // A wide backoff, so that the task is still waiting when the test looks, even on a loaded machine.
    const worker = instance(
      prefix,
      (_req, res) => {
        calls++;
        res.statusCode = calls <= 2 ? 500 : 200;
        res.end();
      },
      { backoffMs: 1500 },
    );
    const queue = bullQueue(prefix, closers);
    expect((await worker.handler(asyncEvent('retry_me'))).statusCode).toBe(202);
    await until('the job to wait for its first retry', async () => {
      return (await (await queue.getJob(jobIdOf('retry_me')))?.getState()) === 'delayed';
    });
    expect(await status(worker.handler, 'retry_me')).toBe('Retrying');
    expect((await queue.getJob(jobIdOf('retry_me')))?.attemptsMade).toBe(1);
    await until('the task to succeed', async () => (await status(worker.handler, 'retry_me')) === 'Succeeded');
    const task = await worker.handler.tasks.get('retry_me');
    expect(task?.alreadyRetriedTimes).toBe(2);
    expect(task?.events.map((e) => e.status)).toEqual([
      'Enqueued',
      'Dequeued',
      'Running',
      'Retrying',
      'Dequeued',
      'Running',
      'Retrying',
      'Dequeued',
      'Running',
      'Succeeded',
    ]);
    // The task record turns Succeeded inside the job's processor; BullMQ completes (and so removes) the job just after.
    await until('the completed job to be removed', async () => (await queue.getJob(jobIdOf('retry_me'))) === undefined);
  });

  it('logs no error for a retry: the job waiting for its backoff is no failed job', async () => {
    const errors: string[] = [];
    const logger = { ...silentLogger, error: (message: string) => void errors.push(message) };
    let calls = 0;
    const worker = instance(
      uniquePrefix(),
      (_req, res) => {
        res.statusCode = ++calls === 1 ? 500 : 200;
        res.end();
      },
      { backoffMs: 10, logger },
    );
    expect((await worker.handler(asyncEvent('retried_once'))).statusCode).toBe(202);
    await until('the retry to succeed', async () => (await status(worker.handler, 'retried_once')) === 'Succeeded');
    await until('the destination', () => worker.successes.length === 1);
    expect([calls, errors]).toEqual([2, []]);
  });

  it('fails after maxAsyncRetryAttempts retries and calls onFailure once', async () => {
    const prefix = uniquePrefix();
    const worker = instance(prefix, (_req, res) => {
      res.statusCode = 503;
      res.end();
    });
    await worker.handler(asyncEvent('always_fails'));
    await until('the task to fail', async () => (await status(worker.handler, 'always_fails')) === 'Failed');
    await until('onFailure', () => worker.failures.length === 1);
    expect((await worker.handler.tasks.get('always_fails'))?.alreadyRetriedTimes).toBe(2);
    expect(worker.failures[0]?.requestContext).toMatchObject({
      condition: 'UnhandledInvocationError',
      approximateInvokeCount: 3,
    });
  });

  it('x-fc-async-delay becomes the job delay; a stop from another instance removes the waiting job', async () => {
    const prefix = uniquePrefix();
    const ran: string[] = [];
    const worker = instance(prefix, (req, res) => {
      ran.push(String(req.headers['x-fc-async-task-id']));
      res.end();
    });
    const acceptor = instance(prefix, ok, { worker: false });
    const queue = bullQueue(prefix, closers);
    const acceptedAt = Date.now();
    await acceptor.handler(asyncEvent('later', {}, { 'X-Fc-Async-Delay': '1' }));
    await acceptor.handler(asyncEvent('never', {}, { 'X-Fc-Async-Delay': '2' }));
    expect(await (await queue.getJob(jobIdOf('later')))?.getState()).toBe('delayed');
    const stopped = await acceptor.handler.tasks.stop('never');
    expect(stopped.status).toBe('Stopped');
    expect(await queue.getJob(jobIdOf('never'))).toBeUndefined();
    await until('the delayed task', async () => (await status(worker.handler, 'later')) === 'Succeeded');
    const task = await worker.handler.tasks.get('later');
    expect(task?.events.find((e) => e.status === 'Running')?.timestamp).toBeGreaterThanOrEqual(acceptedAt + 1000);
    await until('onFailure of the stopped task', () => acceptor.failures.length === 1);
    expect(acceptor.failures[0]?.requestContext.condition).toBe('Stopped');
    expect(ran).toEqual(['later']);
  });

  it('a burst of accepts in one turn: each task is stored and queued once, a repeated id gets 409', async () => {
    const prefix = uniquePrefix();
    const ran: string[] = [];
    const worker = instance(prefix, (req, res) => {
      ran.push(String(req.headers['x-fc-async-task-id']));
      res.end();
    });
    const ids = Array.from({ length: 40 }, (_, i) => `burst_${i}`);
    const delayed = asyncEvent('burst_later', {}, { 'X-Fc-Async-Delay': '1' });
    const answers = await Promise.all([
      ...ids.map((id) => worker.handler(asyncEvent(id))),
      worker.handler(asyncEvent('burst_3')),
      worker.handler(delayed),
    ]);
    expect(answers.map((a) => a.statusCode)).toEqual([...ids.map(() => 202), 409, 202]);
    const queue = bullQueue(prefix, closers);
    expect(await (await queue.getJob(jobIdOf('burst_later')))?.getState()).toBe('delayed');
    await until('every task of the burst to succeed', () => worker.successes.length === ids.length + 1);
    expect(ran.sort()).toEqual([...ids, 'burst_later'].sort());
    for (const id of ids) expect(await status(worker.handler, id)).toBe('Succeeded');
  });

  it('a task whose job the queue refused (503) is accepted when sent again under its id, and runs once', async () => {
    const prefix = uniquePrefix();
    const ran: string[] = [];
    const worker = instance(prefix, (req, res) => {
      ran.push(String(req.headers['x-fc-request-id']));
      res.end('done');
    });
    const add = vi.spyOn(Queue.prototype, 'add').mockRejectedValueOnce(new Error('OOM command not allowed'));
    try {
      const refused = await worker.handler(asyncEvent('export_7'));
      expect([refused.statusCode, JSON.parse(refused.body).message]).toEqual([
        503,
        'The task could not be queued: export_7 never ran, send it again later',
      ]);
    } finally {
      add.mockRestore();
    }
    expect(await status(worker.handler, 'export_7')).toBe('Invalid');
    const again = await worker.handler(asyncEvent('export_7'));
    expect(again.statusCode).toBe(202);
    await until('the task sent again to succeed', () => worker.successes.length === 1);
    const requestId = again.headers?.['x-fc-request-id'];
    expect(ran).toEqual([requestId]);
    const task = await worker.handler.tasks.get('export_7');
    expect([task?.status, task?.requestId, task?.events.map((e) => e.status)]).toEqual([
      'Succeeded',
      requestId,
      ['Enqueued', 'Dequeued', 'Running', 'Succeeded'],
    ]);
    expect((await worker.handler(asyncEvent('export_7'))).statusCode).toBe(409);
    await worker.handler.drain();
  });

  it('answers 429 once maxQueuedTasks jobs wait in the shared queue', async () => {
    const prefix = uniquePrefix();
    const acceptor = instance(prefix, ok, { worker: false, maxQueuedTasks: 3 });
    for (let i = 0; i < 3; i++) expect((await acceptor.handler(asyncEvent(`q_${i}`))).statusCode).toBe(202);
    const refused = await acceptor.handler(asyncEvent('q_3'));
    expect(refused.statusCode).toBe(429);
    expect(await acceptor.handler.tasks.get('q_3')).toBeUndefined();
  });

  it('counts the delayed jobs of every instance against maxQueuedTasks, as the docs say', async () => {
    const prefix = uniquePrefix();
    const first = instance(prefix, ok, { worker: false });
    for (const id of ['later_1', 'later_2']) {
      expect((await first.handler(asyncEvent(id, {}, { 'X-Fc-Async-Delay': '60' }))).statusCode).toBe(202);
    }
    // An instance that starts now counts what waits in the shared queue, delayed jobs included.
    const second = instance(prefix, ok, { worker: false, maxQueuedTasks: 2 });
    await second.handler.engine?.whenReady();
    expect((await second.handler(asyncEvent('one_too_many'))).statusCode).toBe(429);
  });

  it('accepts again once the tasks that filled maxQueuedTasks have run', async () => {
    const prefix = uniquePrefix();
    const acceptor = instance(prefix, ok, { worker: false, maxQueuedTasks: 2 });
    for (const id of ['full_1', 'full_2']) expect((await acceptor.handler(asyncEvent(id))).statusCode).toBe(202);
    expect((await acceptor.handler(asyncEvent('refused'))).statusCode).toBe(429);
    const worker = instance(prefix, ok);
    await until('both tasks to run', () => worker.successes.length === 2);
    // The room is counted again each second: a 429 meanwhile stores nothing, so the same id is sent until taken.
    await until(
      'the acceptor to take a task again',
      async () => {
        return (await acceptor.handler(asyncEvent('taken_later'))).statusCode === 202;
      },
      10_000,
    );
    await until('the new task to run', () => worker.successes.length === 3);
  });
});

describe('bullmq(): the task API after close()', () => {
  it('answers 503 ServiceUnavailable, as the other stores do, not a bare connection error', async () => {
    const { handler } = instance(uniquePrefix(), ok);
    expect((await handler(asyncEvent('t_closed'))).statusCode).toBe(202);
    await until('the task to end', async () => (await status(handler, 't_closed')) === 'Succeeded');
    await handler.close({ timeoutMs: 1000 });
    const closed = { name: 'FcAsyncError', code: 'ServiceUnavailable', statusCode: 503 };
    await expect(handler.tasks.get('t_closed')).rejects.toMatchObject(closed);
    await expect(handler.tasks.list({})).rejects.toMatchObject(closed);
    await expect(handler.tasks.stop('t_closed')).rejects.toMatchObject(closed);
  });
});

describe('bullmq(): task ids that are names of the queue own keys', () => {
  it('runs tasks named meta, wait, active, delayed, events, id and stalled-check, and the tasks after them', async () => {
    const { handler, successes } = instance(uniquePrefix(), ok);
    const ids = ['meta', 'wait', 'active', 'delayed', 'events', 'id', 'stalled-check', 'after'];
    for (const id of ids) expect((await handler(asyncEvent(id))).statusCode).toBe(202);
    await until('every task to succeed', async () => {
      const statuses = await Promise.all(ids.map((id) => status(handler, id)));
      return statuses.every((s) => s === 'Succeeded');
    });
    await until('one destination call each', () => successes.length === ids.length);
    expect(new Set(successes.map((r) => r.requestContext.requestId)).size).toBe(ids.length);
  });

  it('stops a task named wait whose job is gone, while jobs wait (its bare id names the wait list)', async () => {
    const prefix = uniquePrefix();
    const { handler } = instance(prefix, ok, { worker: false });
    expect((await handler(asyncEvent('other'))).statusCode).toBe(202); // waits: the wait list exists
    expect((await handler(asyncEvent('wait', {}, { 'X-Fc-Async-Delay': '60' }))).statusCode).toBe(202);
    const queue = bullQueue(prefix, closers);
    await (await queue.getJob(jobIdOf('wait')))?.remove(); // lost, or not added yet
    await expect(handler.tasks.stop('wait')).resolves.toMatchObject({ status: 'Stopped' });
    expect(await queue.getJobCounts('wait')).toEqual({ wait: 1 });
  });

  it("keeps every other task id as its job id, as earlier versions did: a rolling upgrade runs each other's jobs", async () => {
    const prefix = uniquePrefix();
    const { handler } = instance(prefix, ok, { worker: false });
    for (const id of ['order_1', 'meta']) {
      expect((await handler(asyncEvent(id, {}, { 'X-Fc-Async-Delay': '60' }))).statusCode).toBe(202);
    }
    const queue = bullQueue(prefix, closers);
    // An instance of the previous release (job id = task id) finds order_1's job, and its worker's
    // job id names the task; only a queue key name goes behind t. (that release lost such tasks).
    expect((await queue.getJob('order_1'))?.name).toBe('task');
    expect((await queue.getJob('t.meta'))?.name).toBe('task');
    expect(await queue.getJobCounts('delayed')).toEqual({ delayed: 2 });
  });
});
