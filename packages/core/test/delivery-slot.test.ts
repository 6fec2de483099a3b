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
});
