import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AsyncTask } from '@fc-async/core';
import { afterEach, describe, expect, it } from 'vitest';
import { startEmulator } from '../src/index.js';
import { waitFor } from './helpers.js';

// An app entry whose app has the custom-runtime middleware in it (`app.use(fcAsync())`, the same
// app file as the deployed custom runtime), served in-process by `fc-async dev`: the emulator's
// engine takes the async calls and runs each attempt through the app, and the middleware passes
// them on. It used to queue each attempt again in its own engine (or refuse FC's task id with a
// 400), and the emulator recorded every task Succeeded, however the route ended.

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

const url = (pkg: string) => JSON.stringify(import.meta.resolve(pkg));

const APPS = {
  express: (log: string) => `import express from ${url('express')};
import { fcAsync } from ${url('@fc-async/express')};
import { appendFileSync } from 'node:fs';
const app = express();
app.use(fcAsync());
app.post('/job', (req, res) => {
  appendFileSync(${JSON.stringify(log)}, req.fc.type + ' ' + req.fc.attempt + '\\n');
  if (req.query.fail) throw new Error('boom');
  res.json({ ok: true });
});
export default app;
`,
  koa: (log: string) => `import Koa from ${url('koa')};
import { fcAsync } from ${url('@fc-async/koa')};
import { appendFileSync } from 'node:fs';
const app = new Koa();
app.use(fcAsync());
app.use((ctx) => {
  appendFileSync(${JSON.stringify(log)}, ctx.fc.type + ' ' + ctx.fc.attempt + '\\n');
  if (ctx.query.fail) throw new Error('boom');
  ctx.body = { ok: true };
});
export default app;
`,
  fastify: (log: string) => `import Fastify from ${url('fastify')};
import { fcAsync } from ${url('@fc-async/fastify')};
import { appendFileSync } from 'node:fs';
const app = Fastify();
await app.register(fcAsync);
app.post('/job', async (request) => {
  appendFileSync(${JSON.stringify(log)}, request.fc.type + ' ' + request.fc.attempt + '\\n');
  if (request.query.fail) throw new Error('boom');
  return { ok: true };
});
export default app;
`,
};

describe.each(Object.keys(APPS) as (keyof typeof APPS)[])('fc-async dev on a %s app with fcAsync() in it', (name) => {
  it('records what the app did: a failing route retried then Failed, a good one Succeeded, each run once per attempt', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'fc-async-local-mw-entry-'));
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    const log = join(dir, 'runs.log');
    writeFileSync(log, '');
    writeFileSync(join(dir, 'app.mjs'), APPS[name](log));
    const lines: string[] = [];
    const emulator = await startEmulator({
      entry: join(dir, 'app.mjs'),
      name: 'web',
      port: 0,
      controlPort: 0,
      retryBaseMs: 10,
      output: (line) => lines.push(line),
    });
    cleanups.push(() => emulator.close({ timeoutMs: 1000 }));
    const call = async (path: string, headers: Record<string, string> = {}) => {
      const res = await fetch(`${emulator.triggerUrl}${path}`, {
        method: 'POST',
        headers: { 'x-fc-invocation-type': 'Async', ...headers },
        body: '{}',
      });
      expect(res.status).toBe(202);
      return res.headers.get('x-fc-async-task-id') as string;
    };
    const final = (id: string) =>
      waitFor(async () => {
        const t = (await (
          await fetch(`${emulator.controlUrl}/2023-03-30/functions/web/async-tasks/${id}`)
        ).json()) as AsyncTask;
        return ['Succeeded', 'Failed'].includes(t.status) ? t : undefined;
      });

    const failed = await final(await call('/job?fail=1', { 'x-fc-async-task-id': 'job_1' }));
    expect(failed).toMatchObject({ status: 'Failed', alreadyRetriedTimes: 3 });
    const ok = await final(await call('/job'));
    expect(ok.status).toBe('Succeeded');
    expect(JSON.parse(ok.returnPayload as string)).toEqual({ ok: true });
    expect(readFileSync(log, 'utf8').trim().split('\n')).toEqual([
      'Async 0',
      'Async 1',
      'Async 2',
      'Async 3',
      'Async 0',
    ]);
    // The route's errors go to the emulator's log, in its text format, not as JSON lines of the middleware's own.
    expect(lines.some((line) => line.includes('boom'))).toBe(true);
    expect(lines.filter((line) => line.startsWith('{'))).toEqual([]);
  });
});
