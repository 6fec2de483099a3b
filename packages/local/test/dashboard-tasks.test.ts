import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Emulator } from '../src/index.js';
import { launchChromium, startJobs } from './helpers.js';

// What the dashboard shows of a task and lets a user do with it, in headless Chromium: Stop on a
// task not started yet and in the open task, a Stop that failed tried again, a failed task's
// errors, its trace id and destination, Space on a row, a pasted prefix, the first page again after
// a filter change, and durations by the server's clock. Each held by no test before (mutation audit).

let emulator: Emulator;
let context: BrowserContext;
let page: Page;
const outDir = mkdtempSync(join(tmpdir(), 'fc-async-dash-tasks-'));
const poll = <T>(probe: () => Promise<T> | T) => expect.poll(probe, { timeout: 20_000, interval: 50 });
const row = (id: string) => page.locator(`tr[data-task-id="${id}"]`);
const status = (id: string) => row(id).locator('.status');
const cell = (id: string, n: number) => row(id).locator('td').nth(n).textContent();
/** The focused element: its id, else its row's task id, else its tag. */
const focused = () =>
  page.evaluate<string>(
    "(() => { const a = document.activeElement; return a?.id || a?.getAttribute('data-task-id') || a?.tagName || ''; })()",
  );
/** The open task's fields, as `{ Status: ..., Error: ... }`. */
const fields = () =>
  page.evaluate<Record<string, string>>(
    "Object.fromEntries([...document.querySelectorAll('#detail-fields dt')].map((dt) => [dt.textContent, dt.nextElementSibling.textContent]))",
  );
/** The open task's timeline, a line per event: its status, then its detail when it has one. */
const timeline = () =>
  page.evaluate<string[]>(
    "[...document.querySelectorAll('#detail-events li')].map((li) => li.querySelector('.badge').textContent + li.lastChild.textContent)",
  );

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

const api = (path: string, init?: RequestInit) =>
  fetch(`${emulator.controlUrl}/2023-03-30/functions/jobs${path}`, init);
type Task = {
  status: string;
  taskErrorMessage?: string;
  destinationStatus?: string;
  events: { status: string; eventDetail?: string }[];
};
const getTask = async (id: string) => (await (await api(`/async-tasks/${id}`)).json()) as Task;

/** A fresh page of the dashboard, live. */
async function open(init?: () => void): Promise<void> {
  await page?.close();
  page = await context.newPage();
  page.setDefaultTimeout(20_000);
  page.on('dialog', (dialog) => void dialog.accept());
  if (init) await page.addInitScript(init);
  await page.goto(`${emulator.controlUrl}/`);
  await poll(() => page.locator('#live').textContent()).toBe('live');
}

beforeAll(async () => {
  emulator = await startJobs({ retryBaseMs: 20, outDir });
  context = await launchChromium();
});

afterAll(async () => {
  await context?.close();
  await emulator?.close({ timeoutMs: 1000 });
  rmSync(outDir, { recursive: true, force: true });
});

describe('the dashboard, task by task', () => {
  it('says a function has no tasks yet, not that no task matches, before any task and without a filter', async () => {
    // The first test: the emulator has no task yet.
    await open();
    await poll(() => page.locator('#empty').isVisible()).toBe(true);
    expect(await page.locator('#no-match').isHidden()).toBe(true);
  });

  it('offers Stop on a task that waits for its delay, in its row and in the open task, and hides it once stopped', async () => {
    await send('wait_a', { ms: 1 }, { 'x-fc-async-delay': '600' });
    await send('wait_b', { ms: 1 }, { 'x-fc-async-delay': '600' });
    await open();
    await poll(() => status('wait_a').textContent()).toBe('Enqueued');
    expect(await row('wait_a').locator('button.stop').isEnabled()).toBe(true);
    await row('wait_a').click();
    await poll(() => page.locator('#detail-title').textContent()).toBe('wait_a');
    const stop = page.locator('#detail-stop');
    expect(await stop.isVisible()).toBe(true);
    // From the keyboard: the button goes with the task's end, and the focus stays in the open task.
    await stop.focus();
    await page.keyboard.press('Enter');
    await poll(() => status('wait_a').textContent()).toBe('Stopped');
    await poll(() => stop.isHidden()).toBe(true);
    await poll(focused).toBe('detail-title');
    expect((await getTask('wait_a')).status).toBe('Stopped');
    // The next task opened can be stopped too.
    await row('wait_b').click();
    await poll(() => page.locator('#detail-title').textContent()).toBe('wait_b');
    expect(await stop.isVisible()).toBe(true);
    expect(await stop.isEnabled()).toBe(true);
    await stop.click();
    await poll(() => status('wait_b').textContent()).toBe('Stopped');
  });

  it('shows no Stop in the open task once it ended', async () => {
    await send('ended_1', { ms: 1 });
    await open();
    await poll(() => status('ended_1').textContent()).toBe('Succeeded');
    await row('ended_1').click();
    await poll(() => page.locator('#detail-title').textContent()).toBe('ended_1');
    expect(await page.locator('#detail-stop').isHidden()).toBe(true);
  });

  it('leaves Stop usable after a stop that failed, and a second press stops the task', async () => {
    await send('retry_stop', { ms: 60_000 });
    await open();
    await poll(() => status('retry_stop').textContent()).toBe('Running');
    await page.route(
      /\/retry_stop\/stop$/,
      (route) =>
        route.fulfill({
          status: 503,
          contentType: 'application/json',
          body: JSON.stringify({ Code: 'RedisUnavailable', Message: 'Redis did not answer', RequestId: 'r' }),
        }),
      { times: 1 },
    );
    const button = row('retry_stop').locator('button.stop');
    await button.click();
    await poll(() => page.locator('#error').textContent()).toMatch(/^RedisUnavailable/);
    await poll(() => button.isEnabled()).toBe(true);
    await button.click();
    await poll(() => status('retry_stop').textContent()).toBe('Stopped');
  });

  it("shows a failed task's error, each failed attempt's reason in its timeline, and its trace id", async () => {
    await send('fails_1', { fail: true });
    await poll(async () => (await getTask('fails_1')).status).toBe('Failed');
    const task = await getTask('fails_1');
    expect(task.taskErrorMessage).toBeTruthy();
    const details = task.events.filter((e) => e.eventDetail).map((e) => `${e.status} ${e.eventDetail}`);
    expect(details.length).toBeGreaterThan(0);
    await open();
    // The emulator records a trace id when tracing is on: the page shows the one of the record.
    const traceId = '4bf92f3577b34da6a3ce929d0e0e4736';
    await page.route(/\/async-tasks\/fails_1$/, async (route) => {
      const response = await route.fetch();
      await route.fulfill({ response, json: { ...(await response.json()), traceId } });
    });
    await row('fails_1').click();
    await poll(() => page.locator('#detail-title').textContent()).toBe('fails_1');
    const shown = await fields();
    expect(shown.Error).toBe(task.taskErrorMessage);
    expect(shown['Trace id']).toBe(traceId);
    const lines = await timeline();
    for (const line of details) expect(lines).toContain(line);
  });

  it("shows HTML in a task's error, its attempts' reasons and its other fields as text, running none of it", async () => {
    await send('html_1', { fail: true });
    await poll(async () => (await getTask('html_1')).status).toBe('Failed');
    await open();
    const pwned = (n: number) => `<img src=x onerror="window.pwned=${n}">`;
    // The texts an app controls: its error messages (a thrown Error's), and any field of the record.
    await page.route(/\/async-tasks\/html_1$/, async (route) => {
      const response = await route.fetch();
      const task = (await response.json()) as Task & Record<string, unknown>;
      const events = task.events.map((e) => ({ ...e, eventDetail: pwned(1) }));
      await route.fulfill({
        response,
        json: { ...task, events, taskErrorMessage: pwned(2), traceId: pwned(3), destinationStatus: pwned(4) },
      });
    });
    await row('html_1').click();
    await poll(() => page.locator('#detail-title').textContent()).toBe('html_1');
    const shown = await fields();
    expect([shown.Error, shown['Trace id'], shown.Destination]).toEqual([pwned(2), pwned(3), pwned(4)]);
    expect(await page.locator('#detail-events li').first().textContent()).toContain(pwned(1));
    expect(await page.locator('#detail img, #detail svg, #detail script').count()).toBe(0);
    expect(await page.evaluate(() => (globalThis as unknown as { pwned?: number }).pwned)).toBeUndefined();
  });

  it('shows the destination status in the row, and in the open task when it comes after the task ended', async () => {
    const put = await api('/async-invoke-config', {
      method: 'PUT',
      body: JSON.stringify({
        destinationConfig: { onSuccess: { destination: 'acs:mns:cn-hangzhou:123:/queues/done/messages' } },
      }),
    });
    expect(put.status).toBe(200);
    try {
      await send('dest_1', { ms: 1 });
      await poll(async () => (await getTask('dest_1')).destinationStatus).toBe('Succeeded');
      await open();
      await poll(() => cell('dest_1', 6)).toBe('Succeeded');
      // The open task as read before its record was delivered: no destination status yet.
      let reads = 0;
      await page.route(/\/async-tasks\/dest_1$/, async (route) => {
        reads += 1;
        if (reads > 1) return route.continue();
        const response = await route.fetch();
        const { destinationStatus: _, ...before } = (await response.json()) as Task;
        await route.fulfill({ response, json: before });
      });
      await row('dest_1').click();
      await poll(() => page.locator('#detail-title').textContent()).toBe('dest_1');
      // The next live refresh lists it delivered: the open task reads it again.
      await send('dest_2', { ms: 1 });
      await poll(async () => (await fields()).Destination).toBe('Succeeded');
      expect(reads).toBeGreaterThan(1);
    } finally {
      await api('/async-invoke-config', { method: 'DELETE' });
    }
  });

  it('opens a task with Space on its row, as with Enter', async () => {
    await send('space_1', { ms: 1 });
    await open();
    await poll(() => status('space_1').textContent()).toBe('Succeeded');
    await row('space_1').focus();
    await page.keyboard.press(' ');
    await poll(() => page.locator('#detail-title').textContent()).toBe('space_1');
  });

  it('finds tasks by a task id prefix pasted with spaces around it', async () => {
    await send('pasted_1', { ms: 1 });
    await send('other_1', { ms: 1 });
    await open();
    await poll(() => status('pasted_1').textContent()).toBe('Succeeded');
    await page.fill('#prefix', '  pasted_ ');
    await poll(() => page.locator('tbody tr').evaluateAll((rows) => rows.map((r) => r.dataset.taskId))).toEqual([
      'pasted_1',
    ]);
  });

  it('goes back to the first page when the prefix or the status filter changes after Load more', async () => {
    for (let i = 0; i < 60; i += 20) {
      await Promise.all(Array.from({ length: 20 }, (_, j) => send(`pg_${String(i + j).padStart(2, '0')}`, { ms: 1 })));
    }
    await poll(
      async () =>
        ((await (await api('/async-tasks?prefix=pg_&status=Succeeded&limit=100')).json()) as { tasks: [] }).tasks
          .length,
    ).toBe(60);
    await open();
    const rows = () => page.locator('tbody tr').count();
    await poll(rows).toBe(50);
    const all = ((await (await api('/async-tasks?limit=100')).json()) as { tasks: [] }).tasks.length;
    await page.locator('#more').click();
    await poll(rows).toBe(all);
    await page.fill('#prefix', 'pg_');
    await poll(rows).toBe(50);
    expect(await page.locator('#more').isVisible()).toBe(true);
    await page.locator('#more').click();
    await poll(rows).toBe(60);
    await page.selectOption('#status', 'Succeeded');
    await poll(rows).toBe(50);
    expect(await page.locator('#more').isVisible()).toBe(true);
  });

  it("counts a running task's duration by the server's clock in a browser whose clock is 10 minutes ahead", async () => {
    await send('skewed_1', { ms: 60_000 });
    await open(() => {
      const now = Date.now.bind(Date);
      Date.now = () => now() + 600_000;
    });
    await poll(() => status('skewed_1').textContent()).toBe('Running');
    await poll(() => cell('skewed_1', 5)).toMatch(/^\d+ ms…$/);
    expect(Number.parseInt((await cell('skewed_1', 5)) ?? '', 10)).toBeLessThan(60_000);
    expect((await api('/async-tasks/skewed_1/stop', { method: 'PUT' })).status).toBe(200);
  });

  it('reads the list without the tasks’ answers (an answer may be megabytes, read again on every event)', async () => {
    await send('big_answer', { ms: 1 });
    await poll(async () => (await getTask('big_answer')).status).toBe('Succeeded');
    const lists: Promise<{ tasks: { returnPayload?: string }[] }>[] = [];
    await open();
    page.on('response', (response) => {
      if (/\/async-tasks\?/.test(response.url())) lists.push(response.json());
    });
    await send('big_answer_2', { ms: 1 });
    await poll(() => status('big_answer_2').textContent()).toBe('Succeeded');
    expect(lists.length).toBeGreaterThan(0);
    for (const list of await Promise.all(lists)) {
      expect(list.tasks.length).toBeGreaterThan(0);
      for (const task of list.tasks) expect(task).not.toHaveProperty('returnPayload');
    }
  });
});
