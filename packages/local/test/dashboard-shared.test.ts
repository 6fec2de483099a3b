import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Emulator, startEmulator } from '../src/index.js';
import { type CliRun, launchChromium, redisServer, startCli } from './helpers.js';

// The dashboard of one process watching a BullMQ deployment whose tasks another process accepts and
// runs (two processes, one redis-server): the other's tasks show and change status live, without a
// reload, and a Stop clicked on the page reaches the process running the task. Its live stream used
// to carry only what its own process did: such tasks showed at the next reload only.

const url = (pkg: string) => JSON.stringify(import.meta.resolve(pkg));
const PREFIX = 'live-orders';

/** The watching entry: the deployment's prefix, `worker: false` (it runs no task). */
const watcherEntry = (redis: string) => `import express from ${url('express')};
import { createHandler } from ${url('@fc-async/express')};
import { bullmq } from ${url('@fc-async/bullmq')};
const app = express();
export const handler = createHandler(app, {
  async: { backend: bullmq({ connection: ${JSON.stringify(redis)}, prefix: '${PREFIX}', worker: false }) },
});
`;

/**
 * The working instance: \`POST /job\` answers at once, or with \`{ "hold": true }\` runs until its
 * signal aborts (a stop), and then writes "aborted" to \`marks\`.
 */
const workerEntry = (redis: string, marks: string) => `import { writeFileSync } from 'node:fs';
import express from ${url('express')};
import { createHandler, getInvocation } from ${url('@fc-async/express')};
import { bullmq } from ${url('@fc-async/bullmq')};
const app = express();
app.use(express.json());
app.post('/job', async (req, res) => {
  if (req.body?.hold) {
    const signal = getInvocation(req).signal;
    await new Promise((resolve) => signal.addEventListener('abort', resolve, { once: true }));
    writeFileSync(${JSON.stringify(marks)}, 'aborted');
  }
  res.json({ ok: true });
});
export const handler = createHandler(app, {
  async: { backend: bullmq({ connection: ${JSON.stringify(redis)}, prefix: '${PREFIX}' }) },
});
`;

const cleanups: (() => unknown)[] = [];
let watcher: Emulator;
let worker: CliRun;
let context: BrowserContext;
let page: Page;
let marks: string;
const poll = <T>(probe: () => Promise<T> | T) => expect.poll(probe, { timeout: 20_000, interval: 50 });
const row = (id: string) => page.locator(`tr[data-task-id="${id}"]`);
const status = (id: string) => row(id).locator('.status').textContent();
const detailStatus = () =>
  page.evaluate<string>(
    "(() => { for (const dt of document.querySelectorAll('#detail-fields dt')) if (dt.textContent === 'Status') return dt.nextElementSibling.textContent; return ''; })()",
  );

async function send(taskId: string, body: object): Promise<void> {
  const res = await fetch(`${worker.trigger}/job`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-fc-invocation-type': 'Async', 'x-fc-async-task-id': taskId },
    body: JSON.stringify(body),
  });
  expect(res.status).toBe(202);
}

beforeAll(async () => {
  const redis = (await redisServer((stop) => cleanups.push(stop))).url;
  const dir = mkdtempSync(join(tmpdir(), 'fc-async-dash-shared-'));
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  marks = join(dir, 'marks.txt');
  writeFileSync(join(dir, 'watcher.mjs'), watcherEntry(redis));
  writeFileSync(join(dir, 'worker.mjs'), workerEntry(redis, marks));
  worker = await startCli([join(dir, 'worker.mjs'), '--name', 'orders']);
  cleanups.push(() => worker.stop());
  watcher = await startEmulator({
    entry: join(dir, 'watcher.mjs'),
    name: 'orders',
    port: 0,
    controlPort: 0,
    output: () => {},
  });
  cleanups.push(() => watcher.close({ timeoutMs: 2000 }));
  context = await launchChromium();
  cleanups.push(() => context.close());
});

afterAll(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

describe('dashboard: a BullMQ deployment shared by two processes', () => {
  it("shows the other process's tasks live, and a Stop from the page reaches it", async () => {
    page = await context.newPage();
    page.setDefaultTimeout(20_000);
    page.on('dialog', (dialog) => void dialog.accept());
    let lists = 0;
    page.on('requestfinished', (request) => {
      if (request.url().includes('/async-tasks?')) lists++;
    });
    await page.goto(`${watcher.controlUrl}/`);
    await poll(() => page.locator('#live').textContent()).toBe('live');
    // The first load and the one the stream's opening asks for are done: any load from now on is
    // the live stream's doing (a task sent earlier would show through those loads).
    await poll(() => lists).toBeGreaterThanOrEqual(2);
    // Gone if the page reloads: what follows must show without one.
    await page.evaluate('window.notReloaded = true');

    // Accepted and run by the other process: it appears, then shows its claim.
    await send('held_1', { hold: true });
    await poll(() => status('held_1')).toBe('Running');
    await row('held_1').click();
    await poll(() => page.locator('#detail-title').textContent()).toBe('held_1');
    await poll(detailStatus).toBe('Running');

    // Stopped from this page: the other process's attempt aborts, and its end shows here, list and open task.
    await row('held_1').locator('button.stop').click();
    await poll(() => status('held_1')).toBe('Stopped');
    await poll(detailStatus).toBe('Stopped');
    expect(readFileSync(marks, 'utf8')).toBe('aborted');

    // A task the other process runs to its end.
    await send('quick_1', {});
    await poll(() => status('quick_1')).toBe('Succeeded');
    expect(await page.evaluate('window.notReloaded')).toBe(true);
  });
});
