import type { IncomingMessage, ServerResponse } from 'node:http';
import { createFcHandler, type DestinationRecord, getInvocation, type Logger, silentLogger } from '@fc-async/core';
import { asyncEvent } from '@fc-async/test-kit/fc-server';
import type { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { afterEach, describe, expect, inject, it, vi } from 'vitest';
import { bullmq } from '../src/index.js';
import { jobIdOf } from '../src/queue.js';
import { bullQueue, uniquePrefix, until } from './helpers.js';

type App = (req: IncomingMessage, res: ServerResponse) => unknown;

/** A logger that keeps its lines. */
function recordingLogger(): Logger & {
  entries: { level: string; message: string; fields?: Record<string, unknown> }[];
} {
  const entries: { level: string; message: string; fields?: Record<string, unknown> }[] = [];
  const at = (level: string) => (message: string, fields?: Record<string, unknown>) =>
    void entries.push({ level, message, fields });
  return { entries, debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') };
}

/** The lock and the stalled-job check, short: a handler blocking the event loop for 1 s loses its lock. */
const LOCK_MS = 200;

const closers: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const close of closers.splice(0).reverse()) await close();
  vi.restoreAllMocks();
});

/** Blocks the event loop, as a synchronous CPU-heavy step does: BullMQ cannot renew the lock meanwhile. */
function blockFor(ms: number): void {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    // busy
  }
}

function gate() {
  let open!: () => void;
  const opened = new Promise<void>((resolve) => {
    open = resolve;
  });
  return { opened, open };
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** An instance with a short lock, whose destinations record each call. */
function instance(
  prefix: string,
  app: App,
  options: { concurrency?: number; maxAsyncRetryAttempts?: number; lockMs?: number; logger?: Logger } = {},
) {
  const delivered: DestinationRecord[] = [];
  const destination = (record: DestinationRecord) => void delivered.push(record);
  const handler = createFcHandler(app, {
    logger: options.logger ?? silentLogger,
    env: {},
    async: {
      mode: 'local',
      concurrency: options.concurrency ?? 1,
      maxAsyncRetryAttempts: options.maxAsyncRetryAttempts ?? 2,
      backoff: { baseMs: 10, maxMs: 10 },
      backend: bullmq({
        connection: inject('redisUrl'),
        prefix,
        lockDurationMs: options.lockMs ?? LOCK_MS,
        stalledIntervalMs: options.lockMs ?? LOCK_MS,
      }),
    },
    destinations: { onSuccess: destination, onFailure: destination },
  });
  closers.push(() => handler.close({ timeoutMs: 1000 }));
  return { handler, delivered };
}

/** Waits until the task ended and BullMQ holds no job for it any more. */
async function settled(handler: ReturnType<typeof instance>['handler'], queue: Queue, taskId: string): Promise<void> {
  let last = '';
  await until(
    `task ${taskId} to end with no job left`,
    async () => {
      const status = (await handler.tasks.get(taskId))?.status;
      const job = await queue.getJob(jobIdOf(taskId));
      last = `${status}, ${job ? await job.getState() : 'no job'}`;
      return (status === 'Succeeded' || status === 'Failed') && job === undefined;
    },
    12_000,
  ).catch((error: Error) => {
    throw new Error(`${error.message}; last seen: ${last}`);
  });
}

describe('bullmq(): a lock lost while the attempt still runs on the same instance', () => {
  it('the attempt fails after its job was taken back by this instance: the task still gets its retry', async () => {
    const prefix = uniquePrefix();
    const ran: string[] = [];
    const { handler, delivered } = instance(
      prefix,
      async (req, res) => {
        const attempt = getInvocation(req)?.attempt ?? -1;
        ran.push(String(attempt));
        if (attempt === 0) {
          blockFor(5 * LOCK_MS);
          // Then more asynchronous work (an upload, say), while stalled-job recovery hands the job back.
          await sleep(6 * LOCK_MS);
          res.statusCode = 500;
        }
        res.end();
      },
      { concurrency: 2 },
    );
    expect((await handler(asyncEvent('retried'))).statusCode).toBe(202);
    await settled(handler, bullQueue(prefix, closers), 'retried');
    expect((await handler.tasks.get('retried'))?.status).toBe('Succeeded');
    expect(ran).toEqual(['0', '1']);
    expect(delivered.map((r) => r.requestContext.condition)).toEqual(['']);
  });

  it('the attempt succeeds after its job was taken back by this instance: Succeeded, one destination call, run once', async () => {
    const prefix = uniquePrefix();
    const ran: string[] = [];
    const { handler, delivered } = instance(
      prefix,
      async (req, res) => {
        ran.push(String(getInvocation(req)?.attempt));
        blockFor(5 * LOCK_MS);
        await sleep(6 * LOCK_MS);
        res.end('done');
      },
      { concurrency: 2 },
    );
    expect((await handler(asyncEvent('kept'))).statusCode).toBe(202);
    const queue = bullQueue(prefix, closers);
    await settled(handler, queue, 'kept');
    await sleep(4 * LOCK_MS); // a job left behind would run again by now
    expect((await handler.tasks.get('kept'))?.status).toBe('Succeeded');
    expect(ran).toEqual(['0']);
    expect(delivered.map((r) => r.responsePayload)).toEqual(['done']);
  });

  it('says a lost lock once, at warn, without BullMQ stacks', async () => {
    // A frozen instance that woke logged three error lines with BullMQ's stacks per task (the lock's
    // renewal, then its end and its retry refused), none saying what happened.
    const prefix = uniquePrefix();
    const logger = recordingLogger();
    const { handler } = instance(
      prefix,
      async (_req, res) => {
        blockFor(5 * LOCK_MS);
        await sleep(6 * LOCK_MS);
        res.end('done');
      },
      { concurrency: 2, logger },
    );
    expect((await handler(asyncEvent('told'))).statusCode).toBe(202);
    await settled(handler, bullQueue(prefix, closers), 'told');
    await sleep(4 * LOCK_MS);
    const lost = logger.entries.filter((e) => e.message.startsWith("bullmq: this instance lost a task's lock"));
    expect(lost.map((e) => [e.level, e.fields?.taskId])).toEqual([['warn', 'told']]);
    expect(logger.entries.filter((e) => e.level === 'error')).toEqual([]);
  });

  it('the attempt succeeds right after the block: the Succeeded record stands, one destination call, the worker goes on', async () => {
    const prefix = uniquePrefix();
    const ran: string[] = [];
    const errors = vi.spyOn(console, 'error');
    const { handler, delivered } = instance(prefix, (req, res) => {
      ran.push(String(getInvocation(req)?.attempt));
      if (getInvocation(req)?.taskId === 'blocked') blockFor(5 * LOCK_MS);
      res.end();
    });
    expect((await handler(asyncEvent('blocked'))).statusCode).toBe(202);
    const queue = bullQueue(prefix, closers);
    await settled(handler, queue, 'blocked');
    expect((await handler(asyncEvent('next'))).statusCode).toBe(202);
    await settled(handler, queue, 'next');
    expect((await handler.tasks.get('blocked'))?.status).toBe('Succeeded');
    expect(ran).toEqual(['0', '0']);
    expect(delivered.map((r) => r.requestContext.requestId).sort()).toHaveLength(2);
    expect(errors).not.toHaveBeenCalled();
  });

  it('the attempt fails right after the block with retries left: retried once, one destination call', async () => {
    const prefix = uniquePrefix();
    const ran: string[] = [];
    const { handler, delivered } = instance(prefix, (req, res) => {
      const attempt = getInvocation(req)?.attempt ?? -1;
      ran.push(String(attempt));
      if (attempt === 0) {
        blockFor(5 * LOCK_MS);
        res.statusCode = 500;
      }
      res.end();
    });
    expect((await handler(asyncEvent('again'))).statusCode).toBe(202);
    await settled(handler, bullQueue(prefix, closers), 'again');
    expect((await handler.tasks.get('again'))?.status).toBe('Succeeded');
    expect(ran).toEqual(['0', '1']);
    expect(delivered.map((r) => r.requestContext.condition)).toEqual(['']);
  });

  it('an attempt that loses its lock more often than FC has attempts still gets its retry, and holds one slot', async () => {
    const prefix = uniquePrefix();
    const ran: string[] = [];
    const lockMs = 100;
    let steps = 0;
    const { handler, delivered } = instance(
      prefix,
      async (req, res) => {
        const invocation = getInvocation(req);
        ran.push(`${invocation?.taskId}:${invocation?.attempt}`);
        if (invocation?.taskId === 'marathon' && invocation.attempt === 0) {
          // Twelve synchronous steps, each longer than the lock, the job taken back between them.
          for (; steps < 12; steps++) {
            blockFor(3 * lockMs);
            await sleep(3 * lockMs);
          }
          ran.push('marathon:0 ends');
          res.statusCode = 500;
        }
        res.end();
      },
      { concurrency: 2, lockMs },
    );
    expect((await handler(asyncEvent('marathon'))).statusCode).toBe(202);
    await until('the attempt to lose its lock a few times', () => steps >= 4);
    // The other slot stays free for other tasks.
    expect((await handler(asyncEvent('bystander'))).statusCode).toBe(202);
    const queue = bullQueue(prefix, closers);
    await settled(handler, queue, 'marathon');
    await settled(handler, queue, 'bystander');
    expect((await handler.tasks.get('marathon'))?.status).toBe('Succeeded');
    expect(ran).toEqual(['marathon:0', 'bystander:0', 'marathon:0 ends', 'marathon:1']);
    expect(delivered.map((r) => [r.requestContext.requestId, r.requestContext.condition])).toHaveLength(2);
  });

  it('a task whose every attempt loses its lock still ends: its job is never failed for stalling again', async () => {
    const prefix = uniquePrefix();
    const ran: string[] = [];
    const { handler, delivered } = instance(
      prefix,
      async (req, res) => {
        const attempt = getInvocation(req)?.attempt ?? -1;
        ran.push(String(attempt));
        // Each attempt blocks past the lock (the job found stalled once more), then the first two fail.
        blockFor(5 * LOCK_MS);
        await sleep(6 * LOCK_MS);
        res.statusCode = attempt < 2 ? 500 : 200;
        res.end();
      },
      { concurrency: 2 },
    );
    expect((await handler(asyncEvent('stalls'))).statusCode).toBe(202);
    await settled(handler, bullQueue(prefix, closers), 'stalls');
    expect((await handler.tasks.get('stalls'))?.status).toBe('Succeeded');
    expect(ran).toEqual(['0', '1', '2']);
    expect(delivered.map((r) => r.requestContext.condition)).toEqual(['']);
  });

  it('the attempt fails with no retries left: Failed, onFailure once', async () => {
    const prefix = uniquePrefix();
    const ran: string[] = [];
    const { handler, delivered } = instance(
      prefix,
      async (req, res) => {
        ran.push(String(getInvocation(req)?.attempt));
        blockFor(5 * LOCK_MS);
        await sleep(6 * LOCK_MS);
        res.statusCode = 500;
        res.end();
      },
      { concurrency: 2, maxAsyncRetryAttempts: 0 },
    );
    expect((await handler(asyncEvent('last'))).statusCode).toBe(202);
    const queue = bullQueue(prefix, closers);
    await settled(handler, queue, 'last');
    await sleep(4 * LOCK_MS);
    expect((await handler.tasks.get('last'))?.status).toBe('Failed');
    expect(ran).toEqual(['0']);
    expect(delivered.map((r) => r.requestContext.condition)).toEqual(['UnhandledInvocationError']);
  });
});

describe('bullmq(): a lock lost while the attempt still runs, another instance taking the job', () => {
  /**
   * The first instance runs the task until `first` opens; its lock is lost meanwhile (deleted, as
   * its expiry while the instance's event loop was blocked would); the other instance takes the
   * stalled job and runs the task again until `second` opens.
   */
  async function overlapping(firstStatus: number) {
    const prefix = uniquePrefix();
    const ran: string[] = [];
    const first = gate();
    const second = gate();
    const one = instance(prefix, async (req, res) => {
      const attempt = getInvocation(req)?.attempt;
      ran.push(`one:${attempt}`);
      await first.opened;
      if (attempt === 0) res.statusCode = firstStatus;
      res.end('one');
    });
    const told: string[] = [];
    one.handler.engine?.subscribe((e) => {
      if (e.type === 'attempt') told.push(`${e.attempt}:${e.status}`);
    });
    expect((await one.handler(asyncEvent('shared'))).statusCode).toBe(202);
    await until('the first instance to run the task', () => ran.length === 1);
    const redis = new Redis(inject('redisUrl'));
    closers.push(() => redis.quit());
    expect(await redis.del(`${prefix}:tasks:shared:lock`)).toBe(1);
    const two = instance(prefix, async (req, res) => {
      ran.push(`two:${getInvocation(req)?.attempt}`);
      await second.opened;
      res.end('two');
    });
    await until('the other instance to run the task again', () => ran.length === 2, 12_000);
    first.open();
    await one.handler.drain(); // the first attempt recorded its end
    // Its end was refused: it reports the task as the newer attempt has it, not as Stopped.
    expect(told).toEqual(['0:Running']);
    second.open();
    const queue = bullQueue(prefix, closers);
    await settled(two.handler, queue, 'shared');
    await sleep(4 * LOCK_MS); // a job left behind would run again by now
    const delivered = [...one.delivered, ...two.delivered];
    return { task: await two.handler.tasks.get('shared'), ran, delivered };
  }

  // The newer attempt owns the task: the first one's end names attempt 1 and is refused.
  it('the first attempt fails while the other instance runs the task again: the newer attempt ends it', async () => {
    const { task, ran, delivered } = await overlapping(500);
    expect(task?.status).toBe('Succeeded');
    expect(task?.returnPayload).toBe('two');
    expect(ran).toEqual(['one:0', 'two:1']);
    expect(delivered.map((r) => [r.requestContext.condition, r.responsePayload])).toEqual([['', 'two']]);
  });

  it('the first attempt succeeds while the other instance runs the task again: the newer attempt ends it', async () => {
    const { task, ran, delivered } = await overlapping(200);
    expect(task?.status).toBe('Succeeded');
    expect(task?.returnPayload).toBe('two');
    expect(ran).toEqual(['one:0', 'two:1']);
    expect(delivered.map((r) => [r.requestContext.condition, r.responsePayload])).toEqual([['', 'two']]);
  });
});

describe("BullMQ's refusals of a job's end", () => {
  it('a job found already ended (its end sent again after a connection reset) is an info line, a lost lock a warn', async () => {
    const logger = recordingLogger();
    const made = await bullmq({ connection: inject('redisUrl'), prefix: uniquePrefix() }).create({
      concurrency: 1,
      logger,
    });
    closers.push(async () => {
      await made.queue.close?.();
      await made.store.close?.();
    });
    await made.queue.start(async () => undefined);
    const worker = (made.queue as unknown as { worker: { emit(event: string, error: Error): void } }).worker;
    worker.emit('error', new Error('Missing key for job c_4. moveToFinished'));
    worker.emit('error', new Error('could not renew lock for job c_5'));
    expect(logger.entries.filter((e) => e.fields?.taskId).map((e) => [e.level, e.fields?.taskId])).toEqual([
      ['info', 'c_4'],
      ['warn', 'c_5'],
    ]);
  });
});
