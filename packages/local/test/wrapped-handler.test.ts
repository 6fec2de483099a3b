import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AsyncTask } from '@fc-async/core';
import { afterEach, describe, expect, it } from 'vitest';
import { type Emulator, startEmulator } from '../src/index.js';
import { waitFor } from './helpers.js';

// A plain FC handler that calls an fc-async handler it made (`export const handler = (e, c) =>
// inner(e, c)`, a wrapper that logs or warms up): on FC the inner handler runs in platform mode and
// runs FC's attempts. Under `fc-async dev` the inner handler is in local mode; the emulator's
// attempts reach it with their retry count on the context, so it runs them rather than queuing
// each a second time in an engine nobody sees (whose 202 the emulator recorded as Succeeded).

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  logged.length = 0;
});

const coreUrl = JSON.stringify(import.meta.resolve('@fc-async/core'));

/** A folder with `wrapped.mjs`: the wrapper, over an app that appends each run to `runs.log` and fails `/fail`. */
function project(): { dir: string; runs: () => string[] } {
  const dir = mkdtempSync(join(tmpdir(), 'fc-async-local-wrapped-'));
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  const log = join(dir, 'runs.log');
  writeFileSync(log, '');
  writeFileSync(
    join(dir, 'wrapped.mjs'),
    `import { appendFileSync } from 'node:fs';
import { createFcHandler, getInvocation } from ${coreUrl};
const inner = createFcHandler((req, res) => {
  const { type, attempt } = getInvocation(req);
  appendFileSync(${JSON.stringify(log)}, req.url + ' ' + type + ' ' + attempt + '\\n');
  res.statusCode = req.url === '/fail' ? 500 : 200;
  res.setHeader('content-type', 'application/json');
  res.end(JSON.stringify({ path: req.url, type, attempt }));
});
export async function handler(event, context) {
  return inner(event, context);
}
`,
  );
  const runs = () => readFileSync(log, 'utf8').split('\n').filter(Boolean);
  return { dir, runs };
}

/** What the emulators of a test wrote to their log. */
const logged: string[] = [];

async function start(dir: string, extra: { store?: string } = {}): Promise<{ emulator: Emulator; base: string }> {
  const emulator = await startEmulator({
    entry: join(dir, 'wrapped.mjs'),
    name: 'wrapped',
    port: 0,
    controlPort: 0,
    retryBaseMs: 10,
    output: (line: string) => logged.push(line),
    ...extra,
  });
  cleanups.push(() => emulator.close({ timeoutMs: 1000 }));
  return { emulator, base: emulator.triggerUrl };
}

const post = (base: string, path: string, headers: Record<string, string> = {}) =>
  fetch(`${base}${path}`, { method: 'POST', headers: { 'x-fc-invocation-type': 'Async', ...headers }, body: '{}' });

/** The task once `done` holds for it, read through the FC API. */
const task = (emulator: Emulator, taskId: string, done: (t: AsyncTask) => boolean) =>
  waitFor(async () => {
    const res = await fetch(`${emulator.controlUrl}/2023-03-30/functions/wrapped/async-tasks/${taskId}`);
    const t = (await res.json()) as AsyncTask;
    return done(t) ? t : undefined;
  });

describe('fc-async dev serving a plain handler that calls an fc-async handler', () => {
  it('records what the app answered, each attempt of a failing task, and runs nothing twice', async () => {
    const { dir, runs } = project();
    const { emulator, base } = await start(dir);

    const ok = await post(base, '/ok');
    expect(ok.status).toBe(202);
    const okId = ok.headers.get('x-fc-async-task-id') as string;
    const succeeded = await task(emulator, okId, (t) => t.status === 'Succeeded');
    expect(JSON.parse(succeeded.returnPayload as string)).toEqual({ path: '/ok', type: 'Async', attempt: 0 });

    const fail = await post(base, '/fail');
    const failId = fail.headers.get('x-fc-async-task-id') as string;
    const failed = await task(emulator, failId, (t) => t.status === 'Failed');
    expect(failed.alreadyRetriedTimes).toBe(3);
    expect(runs()).toEqual(['/ok Async 0', '/fail Async 0', '/fail Async 1', '/fail Async 2', '/fail Async 3']);
  });

  it('with --store, only the emulator engine opens the task file: a kept task runs once after a restart', async () => {
    const { dir, runs } = project();
    const store = `sqlite:${join(dir, 'tasks.db')}`;
    const first = await start(dir, { store });
    const accepted = await post(first.base, '/later', { 'x-fc-async-delay': '2' });
    expect(accepted.status).toBe(202);
    const taskId = accepted.headers.get('x-fc-async-task-id') as string;
    // Due after the close's deadline: the file keeps it for the next start.
    await first.emulator.close({ timeoutMs: 100 });

    const second = await start(dir, { store });
    const done = await task(second.emulator, taskId, (t) => t.status === 'Succeeded');
    expect(done.alreadyRetriedTimes).toBe(0);
    await new Promise((resolve) => setTimeout(resolve, 500));
    expect(runs()).toEqual(['/later Async 0']);
    // The inner handler's engine took the file too, and one of the two failed to open it (the
    // emulator's, at times: every async call then answered 503).
    expect(logged.filter((line) => /ERROR|in use/.test(line))).toEqual([]);
  });
});
