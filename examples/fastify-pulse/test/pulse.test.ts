import { describe, expect, it } from 'vitest';
import { buildApp } from '../src/app.js';
import { runPulse } from '../src/measure.js';

describe('fastify-pulse: a pulse of async requests on the emulator', () => {
  it('holds the concurrency limit, refuses what does not fit with 429 + Retry-After, completes the rest', async () => {
    // 100 requests of 200 ms work each, 4 at a time, 20 waiting at most: accepting all of them
    // would need the pulse to take almost 4 s to send, so some are refused, on any machine.
    const r = await runPulse({ count: 100, overMs: 100, concurrency: 4, maxQueuedTasks: 20, workMs: 200 });

    expect(r.otherStatuses).toEqual({});
    expect(r.accepted + r.rejected).toBe(r.sent);
    expect(r.sent).toBe(100);
    expect(r.accepted).toBeGreaterThanOrEqual(20); // the queue's worth always gets in
    expect(r.rejected).toBeGreaterThan(0);
    expect(r.rejectedWithRetryAfter).toBe(r.rejected);

    // Every accepted task reached a terminal status, and it is Succeeded.
    expect(r.completed).toBe(r.accepted);
    expect(r.failed).toBe(0);

    expect(r.maxConcurrency).toBe(4); // reached, never exceeded
    expect(r.throughput).toBeGreaterThan(0);
  }, 90_000);

  it('the app: counts the work it runs, and answers 400 for a bad work time', async () => {
    const app = buildApp();
    const done = await app.inject({ method: 'POST', url: '/work', payload: { ms: 5 } });
    expect(done.json()).toMatchObject({ ms: 5 });
    const bad = await app.inject({ method: 'POST', url: '/work', payload: { ms: 'soon' } });
    expect(bad.statusCode).toBe(400);
    expect(bad.json()).toMatchObject({ code: 'FST_ERR_VALIDATION', message: 'body/ms must be integer' });
    expect((await app.inject({ method: 'GET', url: '/stats' })).json()).toEqual({ running: 0, maxRunning: 1, done: 1 });
    await app.close();
  });
});
