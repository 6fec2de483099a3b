import { join } from 'node:path';
import { createFcHandler, type FcHandler, silentLogger } from '@fc-async/core';
import { asyncEvent } from '@fc-async/test-kit/fc-server';
import { afterEach, describe, expect, it } from 'vitest';
import { sqlite } from '../src/index.js';
import { tempDir, until } from './helpers.js';

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0)) await c();
});

describe('sqlite(): maxQueuedTasks under concurrent accepts', () => {
  it('a burst of concurrent async requests queues no more than maxQueuedTasks; the rest get 429', async () => {
    const { dir, cleanup } = tempDir();
    cleanups.push(cleanup);
    let release: () => void = () => undefined;
    const gate = new Promise<void>((resolve) => {
      release = resolve;
    });
    let started = 0;
    const handler: FcHandler = createFcHandler(
      async (_req, res) => {
        started++;
        await gate;
        res.end('ok');
      },
      {
        logger: silentLogger,
        env: {},
        async: { mode: 'local', backend: sqlite(join(dir, 'tasks.db')), concurrency: 1, maxQueuedTasks: 3 },
      },
    );
    cleanups.unshift(() => handler.close({ timeoutMs: 100 }));
    await handler.engine?.whenReady();
    expect((await handler(asyncEvent('first'), {})).statusCode).toBe(202);
    await until('the first task runs', () => started === 1);
    // Twelve requests at once, as over twelve connections: the store writes each task before
    // it is queued, and none of them may pass the bound while another is being written.
    const ids = Array.from({ length: 12 }, (_, i) => `burst_${i}`);
    const results = await Promise.all(ids.map((id) => handler(asyncEvent(id), {})));
    const statuses = results.map((r) => r.statusCode);
    expect(statuses.filter((s) => s === 202)).toHaveLength(3);
    expect(statuses.filter((s) => s === 429)).toHaveLength(9);
    expect((await handler.tasks.list({ limit: 100 })).tasks).toHaveLength(4);
    release();
    await handler.drain();
  });
});
