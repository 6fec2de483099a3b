import { afterEach, describe, expect, it, vi } from 'vitest';
import { PQueueDriver } from '../src/index.js';

/** A driver whose jobs only record the order they ran in. */
function recordingQueue() {
  const ran: string[] = [];
  const queue = new PQueueDriver(1);
  queue.start(async ({ taskId }) => {
    ran.push(taskId);
    return undefined;
  });
  return { queue, ran };
}

describe('PQueueDriver delays', () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  it('runs delayed jobs when due, earliest first and in arrival order for equal delays', async () => {
    vi.useFakeTimers({ now: 1_700_000_000_000 });
    const { queue, ran } = recordingQueue();
    queue.enqueue({ taskId: 'late' }, 3000);
    queue.enqueue({ taskId: 'first' }, 1000);
    queue.enqueue({ taskId: 'second' }, 1000);
    queue.enqueue({ taskId: 'middle' }, 2000);
    expect(queue.pending()).toBe(4);
    await vi.advanceTimersByTimeAsync(999);
    expect(ran).toEqual([]);
    await vi.advanceTimersByTimeAsync(1);
    expect(ran).toEqual(['first', 'second']);
    await vi.advanceTimersByTimeAsync(2000);
    expect(ran).toEqual(['first', 'second', 'middle', 'late']);
    expect(queue.pending()).toBe(0);
  });

  it('arms for a job due before the ones already waiting', async () => {
    vi.useFakeTimers({ now: 1_700_000_000_000 });
    const { queue, ran } = recordingQueue();
    queue.enqueue({ taskId: 'hour' }, 3_600_000);
    queue.enqueue({ taskId: 'soon' }, 50);
    await vi.advanceTimersByTimeAsync(50);
    expect(ran).toEqual(['soon']);
    expect(queue.pending()).toBe(1);
  });

  it('cancels a waiting job only, and never runs it', async () => {
    vi.useFakeTimers({ now: 1_700_000_000_000 });
    const { queue, ran } = recordingQueue();
    for (let i = 0; i < 20; i++) queue.enqueue({ taskId: `t${i}` }, 1000 + (i % 5) * 100);
    expect(queue.cancel('t7')).toBe(true);
    expect(queue.cancel('t0')).toBe(true);
    expect(queue.cancel('t7')).toBe(false);
    expect(queue.cancel('unknown')).toBe(false);
    expect(queue.pending()).toBe(18);
    await vi.advanceTimersByTimeAsync(2000);
    expect(ran).toHaveLength(18);
    expect(ran).not.toContain('t7');
    expect(ran).not.toContain('t0');
    // Due time first, then arrival.
    const due = (id: string) => 1000 + (Number(id.slice(1)) % 5) * 100;
    const sorted = [...ran].sort((a, b) => due(a) - due(b) || Number(a.slice(1)) - Number(b.slice(1)));
    expect(ran).toEqual(sorted);
  });

  it('lets the process exit once every waiting job is cancelled, and runs none after close', async () => {
    vi.useFakeTimers({ now: 1_700_000_000_000 });
    const { queue, ran } = recordingQueue();
    queue.enqueue({ taskId: 'a' }, 1000);
    queue.cancel('a');
    expect(vi.getTimerCount()).toBe(0);
    queue.enqueue({ taskId: 'b' }, 1000);
    queue.close();
    expect(vi.getTimerCount()).toBe(0);
    await vi.advanceTimersByTimeAsync(2000);
    expect(ran).toEqual([]);
  });
});
