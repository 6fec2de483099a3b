import { describe, expect, it } from 'vitest';
import { PQueueDriver } from '../src/index.js';

const tick = () => new Promise<void>((resolve) => setImmediate(resolve));

/** A driver whose jobs each wait for their own release. */
function gatedQueue(concurrency: number) {
  const started: string[] = [];
  const release = new Map<string, () => void>();
  const queue = new PQueueDriver(concurrency);
  queue.start(async ({ taskId }) => {
    started.push(taskId);
    await new Promise<void>((resolve) => release.set(taskId, resolve));
    return undefined;
  });
  return { queue, started, release: (taskId: string) => release.get(taskId)?.() };
}

describe('PQueueDriver slots', () => {
  it('runs at most `concurrency` jobs, counts them in running(), and starts the next as one ends', async () => {
    const { queue, started, release } = gatedQueue(2);
    for (const id of ['a', 'b', 'c', 'd', 'e']) queue.enqueue({ taskId: id }, 0);
    expect([queue.running(), queue.pending()]).toEqual([0, 5]);
    await tick();
    expect(started).toEqual(['a', 'b']);
    expect([queue.running(), queue.pending()]).toEqual([2, 3]);
    release('b');
    await tick();
    expect(started).toEqual(['a', 'b', 'c']);
    expect([queue.running(), queue.pending()]).toEqual([2, 2]);
    for (const id of ['a', 'c', 'd', 'e']) {
      release(id);
      await tick();
    }
    expect(started).toEqual(['a', 'b', 'c', 'd', 'e']);
    expect([queue.running(), queue.pending()]).toEqual([0, 0]);
  });

  it('queues a retry the job asks for before its slot goes to the next job', async () => {
    const ran: string[] = [];
    const queue = new PQueueDriver(1);
    queue.start(async ({ taskId }) => {
      ran.push(taskId);
      return taskId === 'retry' && ran.length === 1 ? { retryInMs: 0 } : undefined;
    });
    queue.enqueue({ taskId: 'retry' }, 0);
    queue.enqueue({ taskId: 'next' }, 0);
    for (let i = 0; i < 5; i++) await tick();
    expect(ran).toEqual(['retry', 'next', 'retry']);
    expect([queue.running(), queue.pending()]).toEqual([0, 0]);
  });
});
