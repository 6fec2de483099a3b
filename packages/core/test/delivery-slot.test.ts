import { describe, expect, it } from 'vitest';
import { createFcHandler } from '../src/index.js';
import { asyncEvent, context, deferred, memoryLogger } from './helpers.js';

// FC's destination calls take none of the function's concurrency: a slow or dead destination (a
// webhook retried for a minute) must not hold back the tasks queued behind the one it delivers.

describe('a destination call and the queue', () => {
  it("frees the attempt's slot once the outcome is recorded: the next task runs while the delivery waits", async () => {
    const gate = deferred();
    const ran: string[] = [];
    const delivered: string[] = [];
    const handler = createFcHandler(
      (req, res) => {
        ran.push(req.url ?? '');
        res.end('done');
      },
      {
        env: {},
        logger: memoryLogger(),
        async: { mode: 'local', concurrency: 1 },
        destinations: {
          onSuccess: async (record) => {
            await gate.promise;
            delivered.push(record.requestContext.requestId);
          },
        },
      },
    );
    const first = await handler(asyncEvent({ path: '/first' }), context);
    await handler(asyncEvent({ path: '/second' }), context);
    const firstId = first.headers['x-fc-async-task-id'] as string;

    await expect.poll(() => ran, { timeout: 5000 }).toEqual(['/first', '/second']);
    expect(delivered).toEqual([]);
    // The first task is recorded done; its delivery is what is still under way.
    const task = await handler.tasks.get(firstId);
    expect(task?.status).toBe('Succeeded');
    expect(task?.destinationStatus).toBeUndefined();

    // drain() and close() still wait for the deliveries.
    let drained = false;
    const draining = handler.drain().then(() => {
      drained = true;
    });
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(drained).toBe(false);
    gate.resolve();
    await draining;
    expect(delivered).toHaveLength(2);
    expect((await handler.tasks.get(firstId))?.destinationStatus).toBe('Succeeded');
    await handler.close();
  });

  it('counts the tasks whose destination is being called against maxQueuedTasks: a dead destination cannot pile them up', async () => {
    const gate = deferred();
    const handler = createFcHandler((_req, res) => res.end('done'), {
      env: {},
      logger: memoryLogger(),
      async: { mode: 'local', concurrency: 1, maxQueuedTasks: 2 },
      destinations: { onSuccess: () => gate.promise },
    });
    const statuses: number[] = [];
    for (let i = 0; i < 20; i++) {
      statuses.push((await handler(asyncEvent({ path: `/${i}` }), context)).statusCode);
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
    // Two held (running, then delivering), every later one refused until a delivery ends.
    expect(statuses.filter((s) => s === 202)).toHaveLength(2);
    expect(statuses.filter((s) => s === 429)).toHaveLength(18);
    gate.resolve();
    await handler.drain();
    expect((await handler(asyncEvent({ path: '/after' }), context)).statusCode).toBe(202);
    await handler.close();
  });

  it('says in the 429 and its log line how many of the waiting are tasks to run and how many deliveries', async () => {
    // A webhook that is down: every task is Succeeded, yet new ones are refused; the words say why.
    const gate = deferred();
    const logger = memoryLogger();
    const handler = createFcHandler((_req, res) => res.end('done'), {
      env: {},
      logger,
      async: { mode: 'local', concurrency: 1, maxQueuedTasks: 2 },
      destinations: { onSuccess: () => gate.promise },
    });
    for (const taskId of ['t1', 't2']) expect((await handler(asyncEvent({ taskId }), context)).statusCode).toBe(202);
    await expect
      .poll(async () => (await handler.tasks.list()).tasks.map((t) => t.status), { timeout: 5000 })
      .toEqual(['Succeeded', 'Succeeded']);
    const refused = await handler(asyncEvent({ taskId: 't3' }), context);
    const words =
      '2 async tasks are already waiting (maxQueuedTasks 2): 0 to run and 2 destination deliveries under way (a destination that is down holds its tasks until its retries end); retry later';
    expect(JSON.parse(String(refused.body))).toEqual({ code: 'ResourceThrottled', message: words });
    expect(logger.entries.find((e) => e.level === 'warn')).toMatchObject({
      message: 'async requests refused with 429 ResourceThrottled',
      fields: { code: 'ResourceThrottled', reason: words },
    });
    gate.resolve();
    await handler.close();
  });

  it('refuses new tasks 429 while the destination calls under way hold maxDeliveryBytes: large answers cannot pile up either', async () => {
    // A dead webhook and 1 MiB answers: counting tasks alone let 300 pending records take 1.6 GB.
    const gate = deferred();
    const big = 'x'.repeat(1024 * 1024);
    const handler = createFcHandler((_req, res) => res.end(big), {
      env: {},
      logger: memoryLogger(),
      async: { mode: 'local', concurrency: 1, maxDeliveryBytes: 8 * 1024 * 1024 },
      destinations: { onSuccess: () => gate.promise },
    });
    const statuses: number[] = [];
    for (let i = 0; i < 12; i++) {
      statuses.push((await handler(asyncEvent({ path: `/${i}` }), context)).statusCode);
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
    // Three deliveries of about 3 MiB each go over 8 MiB: the rest are refused until they end.
    expect(statuses.filter((s) => s === 202).length).toBeLessThanOrEqual(5);
    const refused = await handler(asyncEvent({ path: '/refused' }), context);
    expect([refused.statusCode, refused.headers['retry-after'], JSON.parse(String(refused.body)).code]).toEqual([
      429,
      '1',
      'ResourceThrottled',
    ]);
    gate.resolve();
    await handler.drain();
    expect((await handler(asyncEvent({ path: '/after' }), context)).statusCode).toBe(202);
    await handler.close();
  });
});
