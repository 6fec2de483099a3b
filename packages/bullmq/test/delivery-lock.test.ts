import type { IncomingMessage, ServerResponse } from 'node:http';
import { createFcHandler, type DestinationRecord, silentLogger } from '@fc-async/core';
import { asyncEvent } from '@fc-async/test-kit/fc-server';
import type { Queue } from 'bullmq';
import { afterEach, describe, expect, inject, it } from 'vitest';
import { bullmq } from '../src/index.js';
import { jobIdOf } from '../src/queue.js';
import { bullQueue, uniquePrefix, until } from './helpers.js';

// What a destination call under way does to the task's job (docs/async.md, "At least once"): the
// call is made inside the job's processing, whose lock BullMQ renews while it waits. A webhook
// slower than lockDurationMs keeps the job, so no other instance calls it again; a lock lost on
// the instance making the call (its event loop blocked) parks the job there, so the call is not
// made twice by that instance either.

/** The lock and the stalled-job check, short: a block of 5 × LOCK_MS loses the lock. */
const LOCK_MS = 200;
/** A longer lock where the test needs it kept: a loaded machine's event-loop lag stays far below it. */
const KEPT_LOCK_MS = 500;

const closers: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const close of closers.splice(0).reverse()) await close();
});

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Blocks the event loop, as a synchronous CPU-heavy step does: BullMQ cannot renew the lock meanwhile. */
function blockFor(ms: number): void {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    // busy
  }
}

/** An instance on `prefix` whose onSuccess destination is `destination`. */
function instance(prefix: string, destination: (record: DestinationRecord) => Promise<void>, lockMs = LOCK_MS) {
  const app = (_req: IncomingMessage, res: ServerResponse) => void res.end('done');
  const handler = createFcHandler(app, {
    logger: silentLogger,
    env: {},
    async: {
      mode: 'local',
      concurrency: 2,
      backend: bullmq({
        connection: inject('redisUrl'),
        prefix,
        lockDurationMs: lockMs,
        stalledIntervalMs: lockMs,
      }),
    },
    destinations: { onSuccess: destination },
  });
  closers.push(() => handler.close({ timeoutMs: 2000 }));
  return handler;
}

/** Waits until the task's delivery is recorded and BullMQ holds no job for it any more. */
async function delivered(handler: ReturnType<typeof instance>, queue: Queue, taskId: string): Promise<void> {
  await until(
    `task ${taskId} delivered with no job left`,
    async () =>
      (await handler.tasks.get(taskId))?.destinationStatus === 'Succeeded' &&
      (await queue.getJob(jobIdOf(taskId))) === undefined,
    15_000,
  );
}

describe('bullmq(): a destination call under way and the job lock', () => {
  it('a webhook slower than lockDurationMs keeps the job: one call, with another instance watching for stalled jobs', async () => {
    const prefix = uniquePrefix();
    const calls: string[] = [];
    const slow = (name: string) => async (record: DestinationRecord) => {
      calls.push(`${name}:${record.requestContext.requestId}`);
      await sleep(5 * KEPT_LOCK_MS); // five lock periods, the lock renewed by the worker meanwhile
    };
    const one = instance(prefix, slow('one'), KEPT_LOCK_MS);
    const two = instance(prefix, slow('two'), KEPT_LOCK_MS);
    expect((await one(asyncEvent('slow_hook'))).statusCode).toBe(202);
    const queue = bullQueue(prefix, closers);
    await delivered(one, queue, 'slow_hook');
    await sleep(3 * KEPT_LOCK_MS); // a job left behind, or taken over, would have been delivered again by now
    expect(calls).toHaveLength(1);
    expect((await two.tasks.get('slow_hook'))?.destinationStatus).toBe('Succeeded');
  });

  it('a lock lost while the call is under way on the only instance: the job is parked there, one call', async () => {
    const prefix = uniquePrefix();
    const calls: string[] = [];
    const handler = instance(prefix, async (record) => {
      calls.push(record.requestContext.requestId);
      blockFor(5 * LOCK_MS); // the lock expires, the stalled-job check hands the job back
      await sleep(6 * LOCK_MS); // while the call still waits for its answer
    });
    expect((await handler(asyncEvent('blocked_hook'))).statusCode).toBe(202);
    const queue = bullQueue(prefix, closers);
    await delivered(handler, queue, 'blocked_hook');
    await sleep(4 * LOCK_MS);
    expect(calls).toHaveLength(1);
  });
});
