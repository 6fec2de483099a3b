import { afterEach, describe, expect, it, vi } from 'vitest';
import { type DestinationRecord, PQueueDriver } from '../src/index.js';
import { asyncEvent, context, deferred, ok, setup } from './helpers.js';

// close() waits until its deadline only while something can still happen before it: once all that
// is left is delayed past the deadline, it goes on at once as at the deadline. The clock is fake:
// "before the deadline" is told by how far it was moved, not by how long the test took.

afterEach(() => {
  vi.useRealTimers();
});

/** Starts `close`, and tells whether it has resolved yet. */
function closing(close: Promise<void>): { done: () => boolean; promise: Promise<void> } {
  let done = false;
  const promise = close.then(() => {
    done = true;
  });
  return { done: () => done, promise };
}

describe('close() with tasks delayed past its deadline', () => {
  it('ends without waiting for the deadline; the delayed task is Stopped and reaches onFailure', async () => {
    vi.useFakeTimers({ now: 1_700_000_000_000 });
    let runs = 0;
    const { handler, failures } = setup((req, res) => {
      runs++;
      ok(req, res);
    });
    const accepted = await handler(asyncEvent({ taskId: 'later', delay: '3599' }), context);
    expect(accepted.statusCode).toBe(202);
    const close = closing(handler.close({ timeoutMs: 5_000 }));
    await vi.advanceTimersByTimeAsync(100);
    expect(close.done()).toBe(true);
    expect(runs).toBe(0);
    const task = await handler.tasks.get('later');
    expect(task?.status).toBe('Stopped');
    expect(task?.destinationStatus).toBe('Succeeded');
    expect(failures.map((r) => [r.requestContext.requestId, r.requestContext.condition])).toEqual([
      [task?.requestId, 'Stopped'],
    ]);
  });

  it('still runs a retry due before the deadline, then ends without waiting for the rest of it', async () => {
    vi.useFakeTimers({ now: 1_700_000_000_000 });
    let calls = 0;
    const { handler, successes, failures } = setup(
      (req, res) => {
        if (req.headers['x-fc-async-task-id'] === 'flaky' && calls++ === 0) {
          res.statusCode = 500;
          res.end();
          return;
        }
        ok(req, res);
      },
      { maxAsyncRetryAttempts: 1, backoff: { baseMs: 200, maxMs: 200, jitter: 'none' } },
    );
    await handler(asyncEvent({ taskId: 'later', delay: '3599' }), context);
    await handler(asyncEvent({ taskId: 'flaky' }), context);
    await vi.advanceTimersByTimeAsync(10);
    expect((await handler.tasks.get('flaky'))?.status).toBe('Retrying');
    const close = closing(handler.close({ timeoutMs: 3_000 }));
    await vi.advanceTimersByTimeAsync(100);
    expect(close.done()).toBe(false);
    await vi.advanceTimersByTimeAsync(200);
    expect(close.done()).toBe(true);
    expect((await handler.tasks.get('flaky'))?.status).toBe('Succeeded');
    expect((await handler.tasks.get('later'))?.status).toBe('Stopped');
    expect(successes).toHaveLength(1);
    expect(failures.map((r) => r.requestContext.condition)).toEqual(['Stopped']);
  });

  it('waits for a running attempt and for its delivery, then ends without waiting for the deadline', async () => {
    vi.useFakeTimers({ now: 1_700_000_000_000 });
    const gate = deferred();
    const delivery = deferred();
    const delivered: DestinationRecord[] = [];
    const { handler } = setup(
      async (req, res) => {
        if (req.headers['x-fc-async-task-id'] === 'busy') await gate.promise;
        ok(req, res);
      },
      {},
      {
        destinations: {
          onSuccess: async (record) => {
            await delivery.promise;
            delivered.push(record);
          },
          onFailure: (record) => {
            delivered.push(record);
          },
        },
      },
    );
    await handler(asyncEvent({ taskId: 'later', delay: '3599' }), context);
    await handler(asyncEvent({ taskId: 'busy' }), context);
    await vi.advanceTimersByTimeAsync(10);
    expect((await handler.tasks.get('busy'))?.status).toBe('Running');
    const close = closing(handler.close({ timeoutMs: 5_000 }));
    await vi.advanceTimersByTimeAsync(1_000);
    expect(close.done()).toBe(false);
    gate.resolve();
    await vi.advanceTimersByTimeAsync(1_000);
    // The attempt ended; its onSuccess call has not.
    expect((await handler.tasks.get('busy'))?.status).toBe('Succeeded');
    expect(close.done()).toBe(false);
    delivery.resolve();
    await vi.advanceTimersByTimeAsync(100);
    expect(close.done()).toBe(true);
    expect(delivered.map((r) => r.requestContext.condition)).toEqual(['', 'Stopped']);
    expect((await handler.tasks.get('later'))?.status).toBe('Stopped');
  });

  it('waits for a delayed task due before the deadline', async () => {
    vi.useFakeTimers({ now: 1_700_000_000_000 });
    let runs = 0;
    const { handler, successes } = setup((req, res) => {
      runs++;
      ok(req, res);
    });
    await handler(asyncEvent({ taskId: 'later', delay: '3599' }), context);
    await handler(asyncEvent({ taskId: 'soon', delay: '2' }), context);
    const close = closing(handler.close({ timeoutMs: 5_000 }));
    await vi.advanceTimersByTimeAsync(1_900);
    expect(close.done()).toBe(false);
    await vi.advanceTimersByTimeAsync(200);
    expect(close.done()).toBe(true);
    expect(runs).toBe(1);
    expect(successes).toHaveLength(1);
    expect((await handler.tasks.get('soon'))?.status).toBe('Succeeded');
    expect((await handler.tasks.get('later'))?.status).toBe('Stopped');
  });
});

describe('PQueueDriver.nextDueAt()', () => {
  it('tells when the earliest waiting job may start: now while one waits for a slot, else the earliest delay', async () => {
    vi.useFakeTimers({ now: 1_700_000_000_000 });
    const gate = deferred();
    const queue = new PQueueDriver(1);
    queue.start(async () => {
      await gate.promise;
      return undefined;
    });
    expect(queue.nextDueAt()).toBeUndefined();
    queue.enqueue({ taskId: 'later' }, 60_000);
    queue.enqueue({ taskId: 'sooner' }, 5_000);
    expect(queue.nextDueAt()).toBe(1_700_000_005_000);
    queue.enqueue({ taskId: 'running' }, 0);
    queue.enqueue({ taskId: 'waiting' }, 0);
    await vi.advanceTimersByTimeAsync(1);
    expect(queue.running()).toBe(1);
    expect(queue.nextDueAt()).toBe(Date.now());
    expect(queue.cancel('waiting')).toBe(true);
    expect(queue.nextDueAt()).toBe(1_700_000_005_000);
    expect(queue.cancel('sooner')).toBe(true);
    expect(queue.nextDueAt()).toBe(1_700_000_060_000);
    gate.resolve();
    queue.close();
    expect(queue.nextDueAt()).toBeUndefined();
  });
});
