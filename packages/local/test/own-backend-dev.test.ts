import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { afterEach, describe, expect, it } from 'vitest';
import { startEmulator } from '../src/index.js';
import { redisServer, waitFor } from './helpers.js';

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

const url = (pkg: string) => JSON.stringify(import.meta.resolve(pkg));
/** The path a CommonJS entry in a temporary folder requires `pkg` by. */
const path = (pkg: string) => JSON.stringify(fileURLToPath(import.meta.resolve(pkg)));

/** The BullMQ workers taking the jobs of `prefix` on the Redis at `redis`. */
async function workersOf(redis: string, prefix: string): Promise<number> {
  const queue = new Queue('tasks', { connection: { url: redis }, prefix });
  try {
    return (await queue.getWorkers()).length;
  } finally {
    await queue.close();
  }
}

/** The connections to the Redis at `redis` other than the one asking. */
async function clientsOf(redis: string): Promise<number> {
  const client = new Redis(redis);
  try {
    const list = (await client.client('LIST')) as string;
    return list.trim().split('\n').length - 1;
  } finally {
    client.disconnect();
  }
}

/** Sends 20 async calls to the emulator's `orders` and waits until each task Succeeded. */
async function runTasks(emulator: { triggerUrl: string; controlUrl: string }): Promise<void> {
  const ids: string[] = [];
  for (let i = 0; i < 20; i++) {
    const res = await fetch(`${emulator.triggerUrl}/job`, {
      method: 'POST',
      headers: { 'x-fc-invocation-type': 'Async' },
      body: '{}',
    });
    expect(res.status).toBe(202);
    ids.push(res.headers.get('x-fc-async-task-id') as string);
  }
  for (const id of ids) {
    await waitFor(async () => {
      const res = await fetch(`${emulator.controlUrl}/2023-03-30/functions/orders/async-tasks/${id}`);
      const task = (await res.json()) as { status?: string };
      return task.status === 'Succeeded' ? true : undefined;
    });
  }
}

const ENTRIES = {
  'an app with fcAsync() and a bullmq() of its own': (redis: string) => `import express from ${url('express')};
import { fcAsync } from ${url('@fc-async/express')};
import { bullmq } from ${url('@fc-async/bullmq')};
const app = express();
app.use(fcAsync({ async: { backend: bullmq({ connection: ${JSON.stringify(redis)}, prefix: 'fc-async:orders' }) } }));
app.post('/job', (req, res) => res.json({ ok: true }));
export default app;
`,
  'a Fastify app with fcAsync() and a bullmq() of its own': (redis: string) => `import Fastify from ${url('fastify')};
import { fcAsync } from ${url('@fc-async/fastify')};
import { bullmq } from ${url('@fc-async/bullmq')};
const app = Fastify();
await app.register(fcAsync, { async: { backend: bullmq({ connection: ${JSON.stringify(redis)}, prefix: 'fc-async:orders' }) } });
app.post('/job', async () => ({ ok: true }));
export default app;
`,
  'a plain handler calling createHandler(app) with a bullmq() of its own': (
    redis: string,
  ) => `import express from ${url('express')};
import { createHandler } from ${url('@fc-async/express')};
import { bullmq } from ${url('@fc-async/bullmq')};
const app = express();
app.post('/job', (req, res) => res.json({ ok: true }));
const inner = createHandler(app, { async: { backend: bullmq({ connection: ${JSON.stringify(redis)}, prefix: 'fc-async:orders' }) } });
export const handler = (event, context) => inner(event, context);
`,
  'createHandler(app) with a bullmq() of its own, whose app has fcAsync() with one too': (
    redis: string,
  ) => `import express from ${url('express')};
import { createHandler, fcAsync } from ${url('@fc-async/express')};
import { bullmq } from ${url('@fc-async/bullmq')};
const own = () => bullmq({ connection: ${JSON.stringify(redis)}, prefix: 'fc-async:orders' });
const app = express();
app.use(fcAsync({ async: { backend: own() } }));
app.post('/job', (req, res) => res.json({ ok: true }));
export const handler = createHandler(app, { async: { backend: own() } });
`,
  'a plain handler calling createHandler(app) with a bullmq() of its own made after a top-level await': (
    redis: string,
  ) => `import express from ${url('express')};
const { createHandler } = await import(${url('@fc-async/express')});
const { bullmq } = await import(${url('@fc-async/bullmq')});
await new Promise((resolve) => setTimeout(resolve, 20));
const app = express();
app.post('/job', (req, res) => res.json({ ok: true }));
const inner = createHandler(app, { async: { backend: bullmq({ connection: ${JSON.stringify(redis)}, prefix: 'fc-async:orders' }) } });
export const handler = (event, context) => inner(event, context);
`,
};

/**
 * CommonJS entries that make their fc-async engine once they have loaded: in a timer, which no load
 * waits for. `ready` is set when it is made, so that the test waits for it.
 */
const LATE_ENTRIES = {
  'a plain handler calling a createHandler(app) with a bullmq() of its own made in a timer': (
    redis: string,
  ) => `const express = require(${path('express')});
const { createHandler } = require(${path('@fc-async/express')});
const { bullmq } = require(${path('@fc-async/bullmq')});
const app = express();
app.post('/job', (req, res) => res.json({ ok: true }));
let inner;
setTimeout(() => {
  inner = createHandler(app, { async: { backend: bullmq({ connection: ${JSON.stringify(redis)}, prefix: 'fc-async:orders' }) } });
  globalThis.lateReady = true;
}, 50);
exports.handler = (event, context) => inner(event, context);
`,
  'an app whose router gets fcAsync() with a bullmq() of its own in a timer': (
    redis: string,
  ) => `const express = require(${path('express')});
const { fcAsync } = require(${path('@fc-async/express')});
const { bullmq } = require(${path('@fc-async/bullmq')});
const app = express();
const router = express.Router();
app.use(router);
setTimeout(() => {
  router.use(fcAsync({ async: { backend: bullmq({ connection: ${JSON.stringify(redis)}, prefix: 'fc-async:orders' }) } }));
  router.post('/job', (req, res) => res.json({ ok: true }));
  globalThis.lateReady = true;
}, 50);
exports.app = app;
`,
};

// An entry whose app has fcAsync() with a bullmq() of its own (or a plain handler calling a
// createHandler() with one), served by `fc-async dev --redis` on the same Redis and prefix: the
// emulator plays FC in front of the app, its engine takes the async calls. The entry's own engine
// used to start a second worker of the queue in the same process (Fastify's fcAsync() binds when
// the app is ready, an inner handler's engine at once): the tasks it ran never reached the
// emulator's destinations, and the dashboard's live stream never saw them.
describe('fc-async dev: an entry whose own fc-async engine names a bullmq() backend', () => {
  const entry = (dir: string, source: string) => {
    const file = join(dir, 'app.mjs');
    writeFileSync(file, source);
    return file;
  };
  const tempDir = () => {
    const dir = mkdtempSync(join(tmpdir(), 'fc-async-local-own-backend-'));
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    return dir;
  };

  for (const [name, source] of Object.entries(ENTRIES)) {
    it(`--redis on the same queue, ${name}: one worker takes its jobs, the emulator's`, async () => {
      const redis = (await redisServer((stop) => cleanups.push(stop))).url;
      const file = entry(tempDir(), source(redis));
      const emulator = await startEmulator({
        entry: file,
        name: 'orders',
        port: 0,
        controlPort: 0,
        redis,
        output: () => {},
      });
      cleanups.push(() => emulator.close({ timeoutMs: 2000 }));
      // Every task ended: a worker the entry's own engine would start has started by then.
      await runTasks(emulator);
      expect(await workersOf(redis, 'fc-async:orders')).toBe(1);
    });
  }

  // Made once the entry loaded, the engine no longer tells which function it belongs to; it is an
  // inner one all the same (the emulator read the entry's export when the load ended). It used to
  // start its backend: a second worker of the queue, silently.
  for (const [name, source] of Object.entries(LATE_ENTRIES)) {
    it(`--redis on the same queue, ${name}: one worker takes its jobs, the emulator's, and a notice says so`, async () => {
      const redis = (await redisServer((stop) => cleanups.push(stop))).url;
      const file = join(tempDir(), 'app.cjs');
      writeFileSync(file, source(redis));
      const lines: string[] = [];
      const late = globalThis as { lateReady?: boolean };
      late.lateReady = false;
      const emulator = await startEmulator({
        entry: file,
        name: 'orders',
        port: 0,
        controlPort: 0,
        redis,
        output: (line) => lines.push(line),
      });
      cleanups.push(() => emulator.close({ timeoutMs: 2000 }));
      await waitFor(() => late.lateReady || undefined);
      await runTasks(emulator);
      expect(await workersOf(redis, 'fc-async:orders')).toBe(1);
      const notices = lines.join('').match(/made after its entry loaded/g) ?? [];
      expect(notices).toHaveLength(1);
      expect(lines.join('')).toContain('names an async backend of its own (bullmq), which is not started');
    });
  }

  for (const [name, source] of Object.entries(ENTRIES).slice(0, 3)) {
    it(`without --redis, ${name}: that backend never connects, and a notice says so`, async () => {
      const redis = (await redisServer((stop) => cleanups.push(stop))).url;
      const file = entry(tempDir(), source(redis));
      const lines: string[] = [];
      const emulator = await startEmulator({
        entry: file,
        name: 'orders',
        port: 0,
        controlPort: 0,
        output: (line) => lines.push(line),
      });
      cleanups.push(() => emulator.close({ timeoutMs: 2000 }));
      await runTasks(emulator);
      expect(await clientsOf(redis)).toBe(0);
      expect(lines.join('')).toContain(
        "orders: its entry's fcAsync() or inner fc-async handler names an async backend of its own (bullmq), which is not started",
      );
    });
  }
});
