import { join } from 'node:path';
import { createFcHandler, type Destination, fcHttpEvent, silentLogger } from '@fc-async/core';
import { afterEach, describe, expect, it } from 'vitest';
import { sqlite } from '../src/index.js';
import { tempDir, until } from './helpers.js';

// A side with two destinations, one of them down at a graceful shutdown: the next start delivers
// the record to that one only. The whole side was called again, so every healthy destination got
// a second copy of every record whose delivery a shutdown cut short.

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0)) await c();
});

describe('sqlite(): a delivery a shutdown cut short', () => {
  it('is made on the next start to the destinations that had not taken the record', async () => {
    const { dir, cleanup } = tempDir();
    cleanups.push(cleanup);
    const path = join(dir, 'tasks.db');
    const got = { healthy: 0, down: 0 };
    const healthy: Destination = () => {
      got.healthy++;
    };
    let webhookUp = false;
    const webhook: Destination = Object.assign(
      (_record: unknown, ctx?: { signal: AbortSignal }) =>
        webhookUp
          ? void got.down++
          : new Promise<void>((_, reject) => ctx?.signal.addEventListener('abort', () => reject(ctx.signal.reason))),
      { maxRetries: 0 },
    );
    const make = () =>
      createFcHandler((_req, res) => res.end('ok'), {
        env: {},
        logger: silentLogger,
        // The shutdown's grace after its deadline for the cut delivery (stopGraceMs, 10 s by default,
        // plus 2 s) kept the first close 12 s of the 30 s timeout: a small one here, the record cut all the same.
        async: { mode: 'local', backend: sqlite(path), stopGraceMs: 100 },
        destinations: { onSuccess: [healthy, webhook] },
      });

    const first = make();
    const accepted = await first(fcHttpEvent({ method: 'POST', headers: { 'x-fc-invocation-type': 'Async' } }), {
      requestId: '1-6b0cf409-d2faa387355dad0342807599',
    });
    const taskId = accepted.headers['x-fc-async-task-id'] as string;
    await until('the healthy destination to take the record', () => got.healthy === 1);
    await first.close({ timeoutMs: 50 });

    webhookUp = true;
    const second = make();
    cleanups.unshift(() => second.close({ timeoutMs: 100 }));
    await second.engine?.whenReady();
    await until('the webhook to take the record', () => got.down === 1);
    await second.drain();
    expect(got).toEqual({ healthy: 1, down: 1 });
    expect((await second.tasks.get(taskId))?.destinationStatus).toBe('Succeeded');
  });
});
