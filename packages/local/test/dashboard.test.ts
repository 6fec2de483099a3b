import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Emulator } from '../src/index.js';
import { launchChromium, startJobs } from './helpers.js';

// Headless Chromium from Debian (`chromium`, listed in .ci/apt-packages) driven by playwright-core.
// FC_ASYNC_SCREENSHOT=docs/img/dashboard.png writes the screenshot the docs show.
const screenshot =
  process.env.FC_ASYNC_SCREENSHOT ?? join(mkdtempSync(join(tmpdir(), 'fc-async-shot-')), 'dashboard.png');

let emulator: Emulator;
let context: BrowserContext;
let page: Page;
/** Requests the page made anywhere but the control plane. */
const outside: string[] = [];
/** The questions the page asked (Stop's confirmation), and how the next ones are answered. */
const asked: string[] = [];
let answer: 'accept' | 'dismiss' = 'accept';

async function send(taskId: string, body: object, headers: Record<string, string> = {}) {
  const res = await fetch(`${emulator.triggerUrl}/jobs`, {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      'x-fc-invocation-type': 'Async',
      'x-fc-async-task-id': taskId,
      ...headers,
    },
    body: JSON.stringify(body),
  });
  expect(res.status).toBe(202);
}

const poll = <T>(probe: () => Promise<T> | T) => expect.poll(probe, { timeout: 20_000, interval: 50 });
const row = (taskId: string) => page.locator(`tr[data-task-id="${taskId}"]`);
const status = (taskId: string) => row(taskId).locator('.status');

beforeAll(async () => {
  emulator = await startJobs({ retryBaseMs: 20 });
  context = await launchChromium();
  page = await context.newPage();
  page.setDefaultTimeout(20_000);
  // Open and live before any test, so that each test stands on its own (`-t` runs one alone).
  page.on('request', (r) => {
    if (!r.url().startsWith(emulator.controlUrl)) outside.push(r.url());
  });
  page.on('dialog', (dialog) => {
    asked.push(`${dialog.type()}: ${dialog.message()}`);
    void (answer === 'accept' ? dialog.accept() : dialog.dismiss());
  });
  await page.goto(`${emulator.controlUrl}/`);
  // expect.poll belongs to a test: the page's own wait here.
  await page.locator('#live', { hasText: /^live$/ }).waitFor({ timeout: 20_000 });
});

afterAll(async () => {
  await context?.close();
  await emulator?.close({ timeoutMs: 1000 });
});

describe('the dashboard in headless Chromium', () => {
  it('loads without any request leaving the machine and goes live', async () => {
    expect(await page.locator('#live').textContent()).toBe('live');
    expect(await page.locator('#function').inputValue()).toBe('jobs');
    expect(page.url()).toBe(`${emulator.controlUrl}/`);
    expect(outside).toEqual([]);
  });

  it('shows async requests as they arrive and as their status changes, without a reload', async () => {
    await send('dash_quick', { ms: 4000 }); // long enough for the page to show it Running on a loaded machine
    await send('dash_fail', { fail: true });
    await poll(() => status('dash_quick').textContent()).toBe('Running');
    await poll(() => status('dash_quick').textContent()).toBe('Succeeded');
    await poll(() => status('dash_fail').textContent()).toBe('Failed');
    expect(await row('dash_fail').locator('td').nth(3).textContent()).toBe('4');
    expect(await row('dash_quick').locator('td').nth(2).textContent()).toMatch(/^1-[0-9a-f]{8}-/);
  });

  it('asks before it stops, and a stop answered no leaves the task running and asks FC nothing', async () => {
    await send('dash_keep', { ms: 60_000 });
    await poll(() => status('dash_keep').textContent()).toBe('Running');
    const stops: string[] = [];
    const seeStops = (r: { url(): string; method(): string }) => {
      if (r.url().endsWith('/stop')) stops.push(r.method());
    };
    page.on('request', seeStops);
    answer = 'dismiss';
    asked.length = 0;
    try {
      await row('dash_keep').locator('button.stop').click();
      await poll(() => asked).toEqual([expect.stringMatching(/^confirm: Stop task dash_keep\?/)]);
    } finally {
      answer = 'accept';
    }
    // A live refresh comes and goes: the task is still running, its button back in use.
    await send('dash_keep_tick', { ms: 1 });
    await poll(() => status('dash_keep_tick').textContent()).toBe('Succeeded');
    expect(await status('dash_keep').textContent()).toBe('Running');
    expect(await row('dash_keep').locator('button.stop').isEnabled()).toBe(true);
    page.off('request', seeStops);
    expect(stops).toEqual([]);
    const stopped = await fetch(`${emulator.controlUrl}/2023-03-30/functions/jobs/async-tasks/dash_keep/stop`, {
      method: 'PUT',
    });
    expect(stopped.status).toBe(200);
    await poll(() => status('dash_keep').textContent()).toBe('Stopped');
  });

  it('stops a running task from the page', async () => {
    await send('dash_long', { ms: 60_000 });
    await poll(() => status('dash_long').textContent()).toBe('Running');
    asked.length = 0;
    await row('dash_long').locator('button.stop').click();
    expect(asked).toEqual([expect.stringMatching(/^confirm: Stop task dash_long\?/)]);
    await poll(() => status('dash_long').textContent()).toBe('Stopped');
    const task = (await (
      await fetch(`${emulator.controlUrl}/2023-03-30/functions/jobs/async-tasks/dash_long`)
    ).json()) as {
      status: string;
    };
    expect(task.status).toBe('Stopped');
    expect(await row('dash_long').locator('button.stop').count()).toBe(0);
  });

  it('filters by status and by task id prefix', async () => {
    await send('filt_ok', { ms: 1 });
    await send('filt_long', { ms: 60_000 });
    await poll(() => status('filt_ok').textContent()).toBe('Succeeded');
    await poll(() => status('filt_long').textContent()).toBe('Running');
    const ids = () =>
      page.locator('tbody tr').evaluateAll((rows) => rows.map((r) => r.getAttribute('data-task-id')).sort());
    await page.fill('#prefix', 'filt_');
    await poll(ids).toEqual(['filt_long', 'filt_ok']);
    await page.selectOption('#status', 'Succeeded');
    await poll(ids).toEqual(['filt_ok']);
    await page.selectOption('#status', '');
    await page.fill('#prefix', 'filt_l');
    await poll(ids).toEqual(['filt_long']);
    await page.fill('#prefix', '');
    await fetch(`${emulator.controlUrl}/2023-03-30/functions/jobs/async-tasks/filt_long/stop`, { method: 'PUT' });
    await poll(() => status('filt_long').textContent()).toBe('Stopped');
  });

  it('shows a delayed task Running once it starts, not only once it ends', async () => {
    await send('dash_delayed', { ms: 4000 }, { 'x-fc-async-delay': '1' });
    await poll(() => status('dash_delayed').textContent()).toBe('Enqueued');
    // No request of the page's own: the stream's `started` event refreshes it.
    await poll(() => status('dash_delayed').textContent()).toBe('Running');
    expect(await row('dash_delayed').locator('td').nth(3).textContent()).toBe('1');
    await poll(() => status('dash_delayed').textContent()).toBe('Succeeded');
  });

  it('shows the events timeline, the redacted request, the response and the trace id of a task', async () => {
    await send('dash_detail', { ms: 1 });
    await poll(() => status('dash_detail').textContent()).toBe('Succeeded');
    await row('dash_detail').click();
    await poll(() => page.locator('#detail-title').textContent()).toBe('dash_detail');
    expect(
      await page.locator('#detail-events li').evaluateAll((items) => items.map((i) => i.getAttribute('data-status'))),
    ).toEqual(['Enqueued', 'Dequeued', 'Running', 'Succeeded']);
    const request = (await page.locator('#detail-request').textContent()) ?? '';
    expect(request).toContain('POST /jobs');
    expect(request).toContain('"ms": 1');
    expect(request).not.toContain('x-fc-invocation-type');
    expect(await page.locator('#detail-response').textContent()).toContain('"done": true');
    expect(await page.locator('#detail-fields').textContent()).toContain('Trace id');
    await page.screenshot({ path: screenshot, fullPage: false });
    expect(readFileSync(screenshot).subarray(0, 8)).toEqual(
      Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    );
  });
});
