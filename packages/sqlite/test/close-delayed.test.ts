import { join } from 'node:path';
import {
  AsyncEngine,
  type BridgeResponse,
  createRedactor,
  type FcRequest,
  type Invocation,
  resolveAsyncOptions,
  silentLogger,
} from '@fc-async/core';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { sqlite } from '../src/index.js';
import { tempDir } from './helpers.js';

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  vi.useRealTimers();
  for (const c of cleanups.splice(0)) await c();
});

const T0 = 1_700_000_000_000;

function engine(path: string, run: () => BridgeResponse): AsyncEngine {
  return new AsyncEngine(resolveAsyncOptions({ mode: 'local', backend: sqlite(path) }), {
    logger: silentLogger,
    redact: createRedactor(),
    run: async () => run(),
  });
}

/** A task file in a fresh folder, the fake clock at T0. */
function fakeClockFile(): string {
  vi.useFakeTimers({ now: T0 });
  const { dir, cleanup } = tempDir();
  cleanups.push(cleanup);
  return join(dir, 'tasks.db');
}

/** Accepts one POST of task `taskId` (its request id numbered `n`), the clock moved on until its 202. */
async function acceptOne(on: AsyncEngine, taskId: string, n: number, headers: FcRequest['headers'] = {}) {
  const request: FcRequest = { method: 'POST', url: `/${taskId}`, headers, body: Buffer.from('x') };
  const invocation = { requestId: `1-64f6d6e7-00000000000000000000000${n}`, taskId } as Invocation;
  const accepting = on.accept(request, invocation);
  await vi.advanceTimersByTimeAsync(10);
  expect((await accepting).statusCode).toBe(202);
}

// The clock is fake: "before the deadline" is told by how far it was moved, not by how long the
// test took. The store's commits wait for a turn of the event loop, which the fake clock runs.
describe('sqlite(): close() with a task delayed past its deadline', () => {
  it('ends without waiting for the deadline and keeps the task, which runs after a restart once due', async () => {
    const path = fakeClockFile();
    const first = engine(path, () => {
      throw new Error('must not run in the first process');
    });
    await acceptOne(first, 'later', 1, { 'x-fc-async-delay': '3599' });

    let closed = false;
    const closing = first.close({ timeoutMs: 5_000 }).then(() => {
      closed = true;
    });
    await vi.advanceTimersByTimeAsync(100);
    expect(closed).toBe(true);
    await closing;

    // The next start, once the task is due: it was kept as it was, and runs now.
    vi.setSystemTime(T0 + 3_600_000);
    let runs = 0;
    const second = engine(path, () => {
      runs++;
      return { statusCode: 200, headers: {}, body: 'ok' };
    });
    cleanups.unshift(() => second.close({ timeoutMs: 100 }));
    const ready = second.whenReady();
    await vi.advanceTimersByTimeAsync(10);
    await ready;
    await vi.advanceTimersByTimeAsync(100);
    await second.drain();
    const task = await second.tasks.get('later');
    expect(runs).toBe(1);
    expect(task?.status).toBe('Succeeded');
    expect(task?.events.map((e) => e.status)).toEqual(['Enqueued', 'Dequeued', 'Running', 'Succeeded']);
  });
});

describe('sqlite(): close() with a task backing off before a retry', () => {
  // A retry due before the deadline was run in the drain: a failure the shutdown itself caused (a
  // call to another function that was closing, answered 503) used up every retry within seconds.
  it('keeps it for the next start without waiting out the backoff; the retry runs there', async () => {
    const path = fakeClockFile();
    let firstRuns = 0;
    const first = engine(path, () => {
      firstRuns++;
      return { statusCode: 503, headers: {}, body: 'the next function is shutting down' };
    });
    await acceptOne(first, 'chain', 2);
    await vi.advanceTimersByTimeAsync(50);
    expect(firstRuns).toBe(1);
    expect((await first.tasks.get('chain'))?.status).toBe('Retrying');

    let closed = false;
    const closing = first.close({ timeoutMs: 10_000 }).then(() => {
      closed = true;
    });
    // Well before the retry's backoff (1 s and up) ends.
    await vi.advanceTimersByTimeAsync(200);
    expect(closed).toBe(true);
    await closing;
    expect(firstRuns).toBe(1);

    vi.setSystemTime(T0 + 60_000);
    const second = engine(path, () => ({ statusCode: 200, headers: {}, body: 'ok' }));
    cleanups.unshift(() => second.close({ timeoutMs: 100 }));
    const ready = second.whenReady();
    await vi.advanceTimersByTimeAsync(10);
    await ready;
    await vi.advanceTimersByTimeAsync(100);
    await second.drain();
    const task = await second.tasks.get('chain');
    expect(task).toMatchObject({ status: 'Succeeded', alreadyRetriedTimes: 1 });
  });
});

describe('sqlite(): close({ timeoutMs: Infinity }) with a task backing off', () => {
  it('waits for the retry, as Infinity says: the task ends before close() does', async () => {
    let runs = 0;
    const first = engine(fakeClockFile(), () => {
      runs++;
      return runs === 1 ? { statusCode: 500, headers: {}, body: 'once' } : { statusCode: 200, headers: {}, body: 'ok' };
    });
    await acceptOne(first, 'retry', 3);
    await vi.advanceTimersByTimeAsync(50);
    expect(runs).toBe(1);

    let closed = false;
    const closing = first.close({ timeoutMs: Number.POSITIVE_INFINITY }).then(() => {
      closed = true;
    });
    await vi.advanceTimersByTimeAsync(200);
    expect(closed).toBe(false);
    // Past the backoff (1 s with jitter, at most 2 s): the retry runs, and close() ends.
    await vi.advanceTimersByTimeAsync(3_000);
    await closing;
    expect(runs).toBe(2);
  });
});
