import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { BrowserContext, Page } from 'playwright-core';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { type Emulator, startEmulator } from '../src/index.js';
import { launchChromium } from './helpers.js';

// The dashboard with task ids used again (two functions, a restart with the in-memory store),
// functions renamed by a restart, an event that has a `method` field, rows leaving under the
// keyboard's focus, a filter typed during a load of many pages, the open task's clock and the error
// banner, in headless Chromium.

let emulator: Emulator;
let context: BrowserContext;
let page: Page;
const dir = mkdtempSync(join(tmpdir(), 'fc-async-dash-runs-'));
const poll = <T>(probe: () => Promise<T> | T) => expect.poll(probe, { timeout: 20_000, interval: 50 });
const row = (id: string) => page.locator(`tr[data-task-id="${id}"]`);
const cell = (id: string, n: number) => row(id).locator('td').nth(n).textContent();
/** The focused element: its id, else its row's task id, else its tag. */
const focused = () =>
  page.evaluate<string>(
    "(() => { const a = document.activeElement; return a?.id || a?.getAttribute('data-task-id') || a?.tagName || ''; })()",
  );

const yaml = (functions: string[]) =>
  `edition: 3.0.0\nname: runs\nresources:\n${functions
    .map(
      (name) => `  ${name}:
    component: fc3
    props:
      functionName: ${name}
      runtime: nodejs20
      code: ./
      timeout: 120
${
  name === 'notify'
    ? '      handler: fn.notify\n'
    : '      handler: fn.handler\n      triggers:\n        - triggerName: http\n          triggerType: http\n'
}`,
    )
    .join('')}`;

writeFileSync(
  join(dir, 'fn.mjs'),
  `export const handler = async (event) => {
  const q = JSON.parse(event.toString('utf8')).queryParameters ?? {};
  await new Promise((resolve) => setTimeout(resolve, Number(q.ms ?? 0)));
  return { statusCode: 200, headers: { 'content-type': 'text/plain' }, body: q.out ?? 'done' };
};
export const notify = async (event) => JSON.stringify({ got: JSON.parse(event.toString('utf8')) });
`,
);
writeFileSync(join(dir, 'three.yaml'), yaml(['alpha', 'beta', 'notify']));
writeFileSync(join(dir, 'renamed.yaml'), yaml(['alpha', 'gamma', 'notify']));

const start = (config: string, ports = { port: 0, controlPort: 0 }) =>
  startEmulator({ output: () => {}, ...ports, config: join(dir, config) });

async function send(fn: string, taskId: string, query = ''): Promise<void> {
  const res = await fetch(`${emulator.triggerUrl}/${fn}/?${query}`, {
    headers: { 'x-fc-invocation-type': 'Async', 'x-fc-async-task-id': taskId },
  });
  expect(res.status).toBe(202);
}

const api = (fn: string, path: string, init?: RequestInit) =>
  fetch(`${emulator.controlUrl}/2023-03-30/functions/${fn}/async-tasks${path}`, init);
type Task = { status: string; requestId: string; startedTime: number };
const getTask = async (fn: string, id: string) => (await (await api(fn, `/${id}`)).json()) as Task;
const stopTask = async (fn: string, id: string) =>
  expect((await api(fn, `/${id}/stop`, { method: 'PUT' })).status).toBe(200);

async function openDashboard(): Promise<void> {
  page = await context.newPage();
  page.setDefaultTimeout(20_000);
  page.on('dialog', (dialog) => void dialog.accept());
  await page.goto(`${emulator.controlUrl}/`);
  await poll(() => page.locator('#live').textContent()).toBe('live');
}

/** Closes the emulator and starts `config` on its ports (the in-memory store starts empty). */
async function restart(config: string): Promise<void> {
  const ports = {
    port: Number(new URL(emulator.triggerUrl).port),
    controlPort: Number(new URL(emulator.controlUrl).port),
  };
  await emulator.close({ timeoutMs: 100 });
  await poll(() => page.locator('#live').textContent()).toBe('reconnecting…');
  emulator = await start(config, ports);
}

beforeAll(async () => {
  emulator = await start('three.yaml');
  context = await launchChromium();
});

afterEach(async () => {
  await page?.close();
});

afterAll(async () => {
  await context?.close();
  await emulator?.close({ timeoutMs: 100 });
  rmSync(dir, { recursive: true, force: true });
});

describe('the dashboard with a task id used again', () => {
  it("shows the other function's task, not the first one's request id and start, when two share an id", async () => {
    await send('alpha', 'order_1');
    await poll(async () => (await getTask('alpha', 'order_1')).status).toBe('Succeeded');
    // Another start time, over a second later, so that the Started cells differ too.
    const { startedTime } = await getTask('alpha', 'order_1');
    await poll(() => Date.now() - startedTime > 1100).toBe(true);
    await send('beta', 'order_1');
    await poll(async () => (await getTask('beta', 'order_1')).status).toBe('Succeeded');
    const [alpha, beta] = [await getTask('alpha', 'order_1'), await getTask('beta', 'order_1')];
    await openDashboard();
    await poll(() => cell('order_1', 2)).toBe(alpha.requestId);
    const alphaStarted = await cell('order_1', 4);
    await page.selectOption('#function', 'beta');
    await poll(() => cell('order_1', 2)).toBe(beta.requestId);
    expect(await cell('order_1', 4)).not.toBe(alphaStarted);
    expect(await row('order_1').count()).toBe(1);
  });
});

describe('the dashboard of an event function', () => {
  it('shows an event with a `method` field as the event, not as an HTTP request', async () => {
    const event = { method: 'sms', to: '+8613800000000', text: 'your code is 123456' };
    const res = await fetch(`${emulator.controlUrl}/2023-03-30/functions/notify/invocations`, {
      method: 'POST',
      body: JSON.stringify(event),
      headers: { 'x-fc-invocation-type': 'Async', 'x-fc-async-task-id': 'ev_1' },
    });
    expect(res.status).toBe(202);
    await poll(async () => (await getTask('notify', 'ev_1')).status).toBe('Succeeded');
    await openDashboard();
    await page.selectOption('#function', 'notify');
    await row('ev_1').click();
    await poll(() => page.locator('#detail-title').textContent()).toBe('ev_1');
    await poll(() => page.locator('#detail-request').textContent()).toBe(JSON.stringify(event, null, 2));
  });
});

describe('the dashboard from the keyboard while rows leave', () => {
  it('keeps the focus on its row when a row above leaves, and moves it to the next row when its own leaves', async () => {
    for (const id of ['k_c', 'k_b', 'k_a']) {
      await send('alpha', id, 'ms=60000');
      await poll(async () => (await getTask('alpha', id)).status).toBe('Running');
    }
    await openDashboard();
    await page.selectOption('#status', 'Running');
    // Newest first: k_a, k_b, k_c.
    await poll(() => page.locator('tbody tr[data-task-id^="k_"]').count()).toBe(3);
    await row('k_b').focus();
    await stopTask('alpha', 'k_a');
    await poll(() => row('k_a').count()).toBe(0);
    expect(await focused()).toBe('k_b');
    await stopTask('alpha', 'k_b');
    await poll(() => row('k_b').count()).toBe(0);
    expect(await focused()).toBe('k_c');
    await stopTask('alpha', 'k_c');
    await poll(() => row('k_c').count()).toBe(0);
    expect(await focused()).toBe('list');
  });

  it("counts the open task's Duration while it runs, as its row does", async () => {
    await send('alpha', 'tick_1', 'ms=60000');
    await openDashboard();
    await poll(() => row('tick_1').locator('.status').textContent()).toBe('Running');
    await row('tick_1').click();
    await poll(() => page.locator('#detail-title').textContent()).toBe('tick_1');
    await poll(() => page.locator('#detail-duration').textContent()).toMatch(/^\d+ ms…$/);
    const first = await page.locator('#detail-duration').textContent();
    await poll(() => page.locator('#detail-duration').textContent()).not.toBe(first);
    await stopTask('alpha', 'tick_1');
  });
});

describe('the dashboard loading many pages', () => {
  it('keeps the query a load of several pages started with when the prefix is typed meanwhile', async () => {
    for (let i = 0; i < 120; i += 20) {
      await Promise.all(Array.from({ length: 20 }, (_, j) => send('beta', `p_${String(i + j).padStart(3, '0')}`)));
    }
    await poll(
      async () => ((await (await api('beta', '?prefix=p_&limit=100')).json()) as { tasks: [] }).tasks.length,
    ).toBe(100);
    // beta: no live refresh from the tasks of other tests (alpha's) drops the load under test.
    await openDashboard();
    await page.selectOption('#function', 'beta');
    // Every error the banner shows, even one the next load hides at once.
    await page.evaluate(
      "(() => { const e = document.getElementById('error'); window.errors = []; new MutationObserver(() => { if (!e.hidden) window.errors.push(e.textContent); }).observe(e, { attributes: true, childList: true }); })()",
    );
    await page.fill('#prefix', 'p_');
    await poll(() => page.locator('tbody tr').count()).toBe(50);
    await page.locator('#more').click();
    await poll(() => page.locator('tbody tr').count()).toBe(100);
    // The next load asks 100 tasks, then the rest with a page token: the first answer is held
    // until the prefix has changed.
    let release = () => {};
    const released = new Promise<void>((resolve) => {
      release = resolve;
    });
    let held = 0;
    const asked: URLSearchParams[] = [];
    page.on('request', (request) => {
      if (request.url().includes('/async-tasks?')) asked.push(new URL(request.url()).searchParams);
    });
    await page.route(
      /async-tasks\?(?!.*nextToken)/,
      async (route) => {
        held++;
        await released;
        await route.continue();
      },
      { times: 1 },
    );
    await page.locator('#more').click();
    await poll(() => held).toBe(1);
    await page.fill('#prefix', 'p_11');
    release();
    await poll(async () => (await page.locator('tbody tr').allTextContents()).every((t) => t.includes('p_11'))).toBe(
      true,
    );
    await poll(() => page.locator('tbody tr').count()).toBe(10);
    const tokened = asked.filter((q) => q.has('nextToken'));
    expect(tokened.length).toBeGreaterThan(0);
    for (const q of tokened) expect(q.get('prefix')).toBe('p_');
    expect(await page.evaluate(() => (globalThis as unknown as { errors: string[] }).errors)).toEqual([]);
  });

  it('keeps the error banner off Load more', async () => {
    await openDashboard();
    await page.selectOption('#function', 'beta');
    await poll(() => page.locator('#more').isVisible()).toBe(true);
    await page.route(/\/stop$/, (route) =>
      route.fulfill({
        status: 400,
        contentType: 'application/json',
        body: JSON.stringify({ Code: 'InvalidArgument', Message: 'The async task already ended', RequestId: 'r' }),
      }),
    );
    await send('beta', 'banner_1', 'ms=60000');
    await row('banner_1').locator('button.stop').click();
    await poll(() => page.locator('#error').isVisible()).toBe(true);
    // Scrolled to the end of the list, wherever it scrolls (the page, or the part that holds it).
    await page
      .locator('#more')
      .evaluate((more) => (more as unknown as { scrollIntoView(o: object): void }).scrollIntoView({ block: 'end' }));
    const atCentre = () =>
      page.locator('#more').evaluate((more) => {
        const box = more.getBoundingClientRect();
        return more.ownerDocument.elementFromPoint(box.x + box.width / 2, box.y + box.height / 2)?.id;
      });
    await poll(atCentre).toBe('more');
    await stopTask('beta', 'banner_1');
  });

  it('keeps the error banner off the bottom row of a list scrolled part-way down', async () => {
    await Promise.all(Array.from({ length: 40 }, (_, i) => send('beta', `mid_${String(i).padStart(2, '0')}`)));
    await openDashboard();
    await page.selectOption('#function', 'beta');
    await poll(() => page.locator('tbody tr').count()).toBeGreaterThanOrEqual(40);
    await page.route(/\/stop$/, (route) =>
      route.fulfill({
        status: 400,
        contentType: 'application/json',
        body: JSON.stringify({ Code: 'InvalidArgument', Message: 'The async task already ended', RequestId: 'r' }),
      }),
    );
    await send('beta', 'banner_2', 'ms=60000');
    await row('banner_2').locator('button.stop').click();
    await poll(() => page.locator('#error').isVisible()).toBe(true);
    // A row half-way down the list scrolled to the bottom of what shows: the centre of each of its
    // cells is the row, not the banner; the row after it does not show.
    const bottomRow = () =>
      page
        .locator('tbody tr')
        .nth(20)
        .evaluate((tr) => {
          const row = tr as unknown as {
            scrollIntoView(options: object): void;
            cells: ArrayLike<{ getBoundingClientRect(): { x: number; y: number; width: number; height: number } }>;
            nextElementSibling: { getBoundingClientRect(): { x: number; y: number; height: number } } | null;
            ownerDocument: { elementFromPoint(x: number, y: number): { closest(s: string): unknown } | null };
          };
          row.scrollIntoView({ block: 'end' });
          const at = (x: number, y: number) => row.ownerDocument.elementFromPoint(x, y)?.closest('tr');
          const covered = Array.from(row.cells).filter((td) => {
            const box = td.getBoundingClientRect();
            return at(box.x + box.width / 2, box.y + box.height / 2) !== row;
          }).length;
          const next = row.nextElementSibling?.getBoundingClientRect();
          const nextShows = next !== undefined && at(next.x + 40, next.y + next.height / 2) === row.nextElementSibling;
          return { covered, nextShows };
        });
    await poll(bottomRow).toEqual({ covered: 0, nextShows: false });
    await stopTask('beta', 'banner_2');
  });
});

describe('the dashboard across a restart', () => {
  it('shows the new run of an id used again after a restart, in its row and the open task', async () => {
    await send('alpha', 'job_1', 'out=first-run');
    await openDashboard();
    await poll(() => row('job_1').locator('.status').textContent()).toBe('Succeeded');
    const first = await getTask('alpha', 'job_1');
    await row('job_1').click();
    await poll(() => page.locator('#detail-response').textContent()).toBe('first-run');
    // The page reads no list until the id ran again (else it would find the open task gone, and close it).
    await page.route(/\/async-tasks/, (route) => route.abort());
    await restart('three.yaml');
    await send('alpha', 'job_1', 'out=second-run');
    await poll(async () => (await getTask('alpha', 'job_1')).status).toBe('Succeeded');
    await page.unrouteAll();
    const second = await getTask('alpha', 'job_1');
    expect(second.requestId).not.toBe(first.requestId);
    await poll(() => cell('job_1', 2)).toBe(second.requestId);
    await poll(() => page.locator('#detail-response').textContent()).toBe('second-run');
    const fields = await page.locator('#detail-fields dd').allTextContents();
    expect(fields[1]).toBe(second.requestId);
  });

  it('reads the functions again after a restart, and leaves a function that is gone with a note', async () => {
    await openDashboard();
    await page.selectOption('#function', 'beta');
    await restart('renamed.yaml');
    await send('gamma', 'g_1');
    const options = () => page.locator('#function option').evaluateAll((os) => os.map((o) => o.getAttribute('value')));
    await poll(options).toEqual(['alpha', 'gamma', 'notify']);
    await poll(() => page.locator('#function').inputValue()).toBe('alpha');
    expect(await page.locator('#note').textContent()).toContain('beta');
    await page.selectOption('#function', 'gamma');
    await poll(() => row('g_1').locator('.status').textContent()).toBe('Succeeded');
    expect(await page.locator('#note').isHidden()).toBe(true);
    await poll(() => page.locator('#error').isHidden()).toBe(true);
  });
});
