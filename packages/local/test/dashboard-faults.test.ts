import { createServer, request, type ServerResponse } from 'node:http';
import { connect } from 'node:net';
import type { BrowserContext, Page, Request, Route } from 'playwright-core';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { EventHub } from '../src/control/dashboard.js';
import { type Emulator, startEmulator } from '../src/index.js';
import type { FunctionRegistry } from '../src/registry.js';
import { fixture, launchChromium } from './helpers.js';

// The dashboard against hostile task data, load, races and restarts, in headless Chromium from
// Debian (`chromium`, listed in .ci/apt-packages) driven by playwright-core.

let emulator: Emulator;
let context: BrowserContext;
let page: Page;
const dialogs: string[] = [];

const start = (ports: { port: number; controlPort: number } = { port: 0, controlPort: 0 }) =>
  startEmulator({ output: () => {}, ...ports, entry: fixture('jobs-app.ts'), name: 'jobs', retryBaseMs: 20 });

async function send(taskId: string, body: object) {
  const res = await fetch(`${emulator.triggerUrl}/jobs`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-fc-invocation-type': 'Async', 'x-fc-async-task-id': taskId },
    body: JSON.stringify(body),
  });
  expect(res.status).toBe(202);
}

const api = (path: string, init?: RequestInit) =>
  fetch(`${emulator.controlUrl}/2023-03-30/functions/jobs/async-tasks${path}`, init);
const taskStatus = async (taskId: string) => ((await (await api(`/${taskId}`)).json()) as { status: string }).status;

const poll = <T>(probe: () => Promise<T> | T) => expect.poll(probe, { timeout: 20_000, interval: 50 });
const row = (taskId: string) => page.locator(`tr[data-task-id="${taskId}"]`);
const status = (taskId: string) => row(taskId).locator('.status');
const rowIds = () => page.locator('tbody tr').evaluateAll((rows) => rows.map((r) => r.getAttribute('data-task-id')));
const rowStatuses = () =>
  page.locator('tbody tr').evaluateAll((rows) => rows.map((r) => r.getAttribute('data-status')));

/**
 * Holds the page's requests that match until `release`, which answers them as the emulator does
 * then, marked `x-held` (see `heldRead`).
 */
async function hold(pattern: RegExp, only: (url: string) => boolean = () => true) {
  const held: Route[] = [];
  let holding = true;
  await page.route(pattern, (route) => {
    if (holding && only(route.request().url())) held.push(route);
    else void route.continue();
  });
  return {
    held,
    async release() {
      holding = false;
      for (const route of held) {
        const response = await route.fetch();
        await route.fulfill({ response, headers: { ...response.headers(), 'x-held': '1' } });
      }
      await page.unroute(pattern);
    },
  };
}

/** Waits until the page has read `count` held answers and run what it does with them. */
const heldRead = (count: number) =>
  page.waitForFunction((n) => (globalThis as unknown as { heldRead: number }).heldRead >= n, count);

/** A fresh page: no filter, no selection, no route left by a test that failed half-way. */
async function openDashboard() {
  await page.unrouteAll({ behavior: 'ignoreErrors' });
  await page.goto(`${emulator.controlUrl}/`);
  await poll(() => page.locator('#live').textContent()).toBe('live');
}

beforeAll(async () => {
  emulator = await start();
  context = await launchChromium();
  // Counts the held answers the page has read, in a task queued after what the page does with them.
  await context.addInitScript(() => {
    const w = globalThis as unknown as { heldRead: number };
    w.heldRead = 0;
    const proto = Response.prototype as { text: (this: Response) => Promise<string> };
    const text = proto.text;
    proto.text = async function countedText(this: Response) {
      try {
        return await text.call(this);
      } finally {
        if (this.headers.get('x-held'))
          setTimeout(() => {
            w.heldRead += 1;
          }, 0);
      }
    };
  });
  page = await context.newPage();
  page.setDefaultTimeout(20_000);
  page.on('dialog', (dialog) => {
    // Stop asks first: yes. Any other dialog is a script the page should not have run.
    if (dialog.type() === 'confirm' && dialog.message().startsWith('Stop task ')) return void dialog.accept();
    dialogs.push(dialog.message());
    void dialog.dismiss();
  });
});

afterAll(async () => {
  await context?.close();
  await emulator?.close({ timeoutMs: 1000 });
});

describe('the dashboard with hostile task data', () => {
  beforeEach(openDashboard);

  it('shows HTML in a task path, header, body and response as text, and no secret header', async () => {
    const path = '/jobs/<img/src=x/onerror=window.pwned=1>?q="><svg/onload=window.pwned=2>';
    await new Promise<void>((resolve, reject) => {
      const req = request(emulator.triggerUrl, {
        path,
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          'x-fc-invocation-type': 'Async',
          'x-fc-async-task-id': 'evil_path',
          'x-evil': '<script>window.pwned=3</script>',
          authorization: 'Bearer SECRET-1',
          cookie: 'session=SECRET-2',
          'x-fc-access-key-id': 'SECRET-3',
          'x-fc-access-key-secret': 'SECRET-4',
          'x-fc-security-token': 'SECRET-5',
          'proxy-authorization': 'Basic SECRET-6',
        },
      });
      req.on('response', (res) => {
        res.resume();
        res.statusCode === 202 ? resolve() : reject(new Error(`status ${res.statusCode}`));
      });
      req.on('error', reject);
      req.end(JSON.stringify({ x: '</pre><img src=x onerror="window.pwned=4">' }));
    });
    await poll(() => status('evil_path').textContent()).toBe('Succeeded');
    await row('evil_path').click();
    await poll(() => page.locator('#detail-title').textContent()).toBe('evil_path');
    const request_ = (await page.locator('#detail-request').textContent()) ?? '';
    expect(request_).toContain('POST /jobs/<img/src=x/onerror=window.pwned=1>');
    expect(request_).toContain('x-evil: <script>window.pwned=3</script>');
    expect(request_).toContain('"x": "</pre><img src=x onerror=\\"window.pwned=4\\">"');
    expect(await page.locator('#detail-response').textContent()).toContain('Cannot POST /jobs/<img/src=x');
    expect(await page.locator('main img, main svg, main script').count()).toBe(0);
    expect(await page.evaluate(() => (globalThis as unknown as { pwned?: number }).pwned)).toBeUndefined();
    expect(dialogs).toEqual([]);
    expect(await page.locator('body').textContent()).not.toContain('SECRET');
    const task = await (await api('/evil_path')).text();
    const list = await (await api('?includePayload=true&limit=100')).text();
    expect(`${task}${list}`).not.toContain('SECRET');
    await page.locator('#detail-close').click();
  });

  it('keeps every column in view beside a 128-character task id', async () => {
    const long = `L${'o'.repeat(127)}`;
    await send(long, { ms: 1 });
    await poll(() => status(long).textContent()).toBe('Succeeded');
    expect(await page.locator('#detail').isHidden()).toBe(true);
    const list = page.locator('section.list');
    expect(await list.evaluate((l) => l.scrollWidth - l.clientWidth)).toBeLessThanOrEqual(0);
    expect(await row(long).locator('td.task').getAttribute('title')).toBe(long);
  });
});

describe('the dashboard with many tasks and live updates', () => {
  beforeEach(openDashboard);

  it('keeps the rows of Load more through live refreshes, and lists each task once when clicked twice', async () => {
    for (let i = 0; i < 60; i += 10) {
      await Promise.all(
        Array.from({ length: 10 }, (_, j) => send(`page_${String(i + j).padStart(2, '0')}`, { ms: 1 })),
      );
    }
    const list = async (query: string) => ((await (await api(query)).json()) as { tasks: { taskId: string }[] }).tasks;
    await poll(async () => (await list('?prefix=page_&status=Succeeded&limit=100')).length).toBe(60);
    const all = await list('?limit=100');
    await poll(() => page.locator('tbody tr').count()).toBe(50);
    await page.locator('#more').dblclick();
    await poll(() => page.locator('tbody tr').count()).toBe(all.length);
    expect(new Set(await rowIds()).size).toBe(all.length);
    await send('page_new', { ms: 1 });
    await poll(() => status('page_new').textContent()).toBe('Succeeded');
    const ids = await rowIds();
    expect(ids.length).toBe(all.length + 1);
    expect(new Set(ids).size).toBe(ids.length);
  });

  it('Load more from the keyboard: the last page leaves the focus on the last row, not on the page', async () => {
    for (let i = 0; i < 60; i += 10) {
      await Promise.all(Array.from({ length: 10 }, (_, j) => send(`kb_${String(i + j).padStart(2, '0')}`, { ms: 1 })));
    }
    await page.fill('#prefix', 'kb_');
    await poll(() => page.locator('tbody tr').count()).toBe(50);
    await page.locator('#more').focus();
    await page.keyboard.press('Enter');
    await poll(() => page.locator('tbody tr').count()).toBe(60);
    expect(await page.locator('#more').isHidden()).toBe(true);
    const focusedRow = () => page.evaluate<string>("document.activeElement?.getAttribute('data-task-id') ?? ''");
    await poll(focusedRow).toMatch(/^kb_/);
  });

  it('does not download a finished open task again on every live refresh', async () => {
    await send('open_done', { ms: 1 });
    await poll(() => status('open_done').textContent()).toBe('Succeeded');
    const fetched: string[] = [];
    const seeDetail = (r: { url(): string }) => {
      if (r.url().includes('/async-tasks/open_done')) fetched.push(r.url());
    };
    page.on('request', seeDetail);
    try {
      await row('open_done').click();
      await poll(() => page.locator('#detail-title').textContent()).toBe('open_done');
      await poll(() => fetched.length).toBe(1);
      for (let i = 0; i < 3; i++) {
        await send(`tick_${i}`, { ms: 1 });
        await poll(() => status(`tick_${i}`).textContent()).toBe('Succeeded');
      }
      expect(fetched).toHaveLength(1);
    } finally {
      page.off('request', seeDetail);
    }
  });

  it('drops a list answer that arrives after the answer for newer filters', async () => {
    await send('late_fail', { fail: true });
    await poll(() => taskStatus('late_fail')).toBe('Failed');
    const unfiltered = await hold(/\/async-tasks\?/, (url) => !url.includes('status='));
    await send('late_trigger', { ms: 1 });
    await poll(() => unfiltered.held.length).toBeGreaterThan(0);
    await page.selectOption('#status', 'Failed');
    await poll(async () => [...new Set(await rowStatuses())]).toEqual(['Failed']);
    const held = unfiltered.held.length;
    await unfiltered.release();
    await heldRead(held);
    expect([...new Set(await rowStatuses())]).toEqual(['Failed']);
    await page.selectOption('#status', '');
  });

  it('shows the task selected last when an earlier selection answers later', async () => {
    await send('pick_a', { ms: 1 });
    await send('pick_b', { ms: 1 });
    await poll(() => status('pick_b').textContent()).toBe('Succeeded');
    const slow = await hold(/\/async-tasks\/pick_a$/);
    await row('pick_a').click();
    await poll(() => slow.held.length).toBe(1);
    await row('pick_b').click();
    await poll(() => page.locator('#detail-title').textContent()).toBe('pick_b');
    await slow.release();
    await heldRead(1);
    expect(await page.locator('#detail-title').textContent()).toBe('pick_b');
    expect(await page.locator('tr.selected').getAttribute('data-task-id')).toBe('pick_b');
    await page.locator('#detail-close').click();
  });

  it('keeps a text selection in the open task through live refreshes', async () => {
    // Running: its detail is loaded again on each refresh (a finished one is not).
    await send('select_me', { ms: 60_000 });
    await poll(() => status('select_me').textContent()).toBe('Running');
    await row('select_me').click();
    await poll(() => page.locator('#detail-title').textContent()).toBe('select_me');
    await page.locator('#detail-request').click({ clickCount: 3 });
    const selected = await page.evaluate('String(getSelection())');
    expect(selected).toMatch(/^\S+/);
    const detail = await hold(/\/async-tasks\/select_me$/);
    await send('select_other', { ms: 1 });
    await poll(() => detail.held.length).toBeGreaterThan(0);
    const held = detail.held.length;
    await detail.release();
    await heldRead(held);
    expect(await page.evaluate('String(getSelection())')).toBe(selected);
    expect((await api('/select_me/stop', { method: 'PUT' })).status).toBe(200);
  });

  it('says so when filters match nothing, with URL and regex characters in the prefix', async () => {
    // A task of its own, for the rows the cleared filter lists again (run alone, no earlier test made one).
    await send('no_match_1', { ms: 1 });
    await poll(() => status('no_match_1').textContent()).toBe('Succeeded');
    await page.fill('#prefix', 'a%2F.*+&#?=');
    await poll(() => page.locator('tbody tr').count()).toBe(0);
    await poll(() => page.locator('#no-match').isVisible()).toBe(true);
    expect(await page.locator('#empty').isHidden()).toBe(true);
    expect(await page.locator('#error').isHidden()).toBe(true);
    await page.fill('#prefix', '');
    await poll(() => page.locator('tbody tr').count()).toBeGreaterThan(0);
    expect(await page.locator('#no-match').isHidden()).toBe(true);
  });

  it('says no task matches a prefix longer than any task id (a 100 KB paste), with no error and no row left', async () => {
    await send('long_prefix_1', { ms: 1 });
    await poll(() => status('long_prefix_1').textContent()).toBe('Succeeded');
    const lists: string[] = [];
    const onRequest = (r: Request) => {
      if (r.url().includes('/async-tasks?')) lists.push(r.url());
    };
    page.on('request', onRequest);
    // The task's id and more: past 128 characters (FC's longest task id), no task can match.
    await page.fill('#prefix', `long_prefix_1${'x'.repeat(100 * 1024)}`);
    await poll(() => page.locator('tbody tr').count()).toBe(0);
    await poll(() => page.locator('#no-match').isVisible()).toBe(true);
    expect(await page.locator('#error').isHidden()).toBe(true);
    expect(lists.filter((url) => url.length > 8192)).toEqual([]);
    await page.fill('#prefix', 'long_prefix_');
    await poll(rowIds).toEqual(['long_prefix_1']);
    expect(await page.locator('#error').isHidden()).toBe(true);
    page.off('request', onRequest);
  });
});

describe('the Stop button', () => {
  beforeEach(openDashboard);

  it('is not lost when a live refresh lands between mouse down and mouse up', async () => {
    await send('click_other', { ms: 60_000 });
    await send('click_target', { ms: 60_000 });
    await poll(() => status('click_other').textContent()).toBe('Running');
    await poll(() => status('click_target').textContent()).toBe('Running');
    const box = await row('click_target').locator('button.stop').boundingBox();
    if (!box) throw new Error('no Stop button');
    await page.mouse.move(box.x + box.width / 2, box.y + box.height / 2);
    await page.mouse.down();
    expect((await api('/click_other/stop', { method: 'PUT' })).status).toBe(200);
    await poll(() => status('click_other').textContent()).toBe('Stopped');
    await page.mouse.up();
    await poll(() => status('click_target').textContent()).toBe('Stopped');
  });

  it("shows FC's error for a task stopped from the SDK meanwhile, and keeps it through refreshes", async () => {
    await send('stop_race', { ms: 60_000 });
    await poll(() => status('stop_race').textContent()).toBe('Running');
    const lists = await hold(/\/async-tasks\?/);
    expect((await api('/stop_race/stop', { method: 'PUT' })).status).toBe(200);
    await poll(() => taskStatus('stop_race')).toBe('Stopped');
    await row('stop_race').locator('button.stop').click();
    await poll(() => page.locator('#error').textContent()).toMatch(/^InvalidArgument: .*stop_race already ended/);
    await lists.release();
    await poll(() => status('stop_race').textContent()).toBe('Stopped');
    expect(await page.locator('#error').isVisible()).toBe(true);
    expect(await page.locator('#error').textContent()).toContain('already ended');
    await page.locator('#error').click();
    expect(await page.locator('#error').isHidden()).toBe(true);
  });
});

describe('the dashboard HTTP endpoints', () => {
  const raw = (method: string, path: string) =>
    new Promise<{ status: number; headers: Record<string, unknown>; body: string }>((resolve, reject) => {
      const req = request(`${emulator.controlUrl}/`, { method, path }, (res) => {
        let body = '';
        res.on('data', (c: Buffer) => {
          body += c.toString('utf8');
        });
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
      });
      req.on('error', reject);
      req.end();
    });

  it('answers a method other than GET and HEAD with 405 and the methods allowed', async () => {
    for (const path of ['/', '/assets/dashboard.js', '/api/functions', '/api/events']) {
      const res = await raw('POST', path);
      expect(res.status).toBe(405);
      expect(res.headers.allow).toBe('GET, HEAD');
      expect(JSON.parse(res.body).Code).toBe('MethodNotAllowed');
    }
  });

  it('serves only its own files, whatever the dots and encodings in the path', async () => {
    for (const path of [
      '/assets/../package.json',
      '/assets/%2e%2e/package.json',
      '/assets/..%2fpackage.json',
      '/%2e%2e/%2e%2e/package.json',
      '/assets/',
      '/assets/dashboard.ts',
    ]) {
      const res = await raw('GET', path);
      expect(res.status, path).toBe(404);
      expect(res.body).not.toContain('"name"');
    }
    const head = await raw('HEAD', '/');
    expect(head.status).toBe(200);
    expect(head.body).toBe('');
    expect(head.headers['x-content-type-options']).toBe('nosniff');
    expect(head.headers['content-security-policy']).toContain("script-src 'self'");
  });

  it('cuts an event stream client that stops reading, and keeps one that reads', async () => {
    const listeners: ((event: unknown) => void)[] = [];
    const subscribe = (listener: (event: unknown) => void) => {
      listeners.push(listener);
      return () => {};
    };
    const registry = {
      all: [{ spec: { name: 'f' }, engine: { subscribe, watchStore: () => () => {} } }],
    } as unknown as FunctionRegistry;
    const hub = new EventHub(registry);
    const responses: ServerResponse[] = [];
    const server = createServer((req, res) => {
      hub.attach(req, res);
      responses.push(res);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as { port: number };
    const open = () => {
      const socket = connect(port, '127.0.0.1');
      socket.write(`GET /api/events HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\n\r\n`);
      return socket;
    };
    const stalled = open();
    stalled.pause();
    await poll(() => responses.length).toBe(1);
    const reader = open();
    let read = 0;
    reader.on('data', (chunk: Buffer) => {
      read += chunk.length;
    });
    await poll(() => responses.length).toBe(2);
    const [stalledRes, readerRes] = responses as [ServerResponse, ServerResponse];
    let sent = 0;
    try {
      const event = { type: 'accepted', taskId: `t_${'x'.repeat(200)}`, requestId: '1-0-0', delayMs: 0 };
      for (let batch = 0; batch < 400 && !stalledRes.destroyed; batch++) {
        for (let i = 0; i < 200; i++) listeners[0]?.(event);
        sent += 200;
        await new Promise((resolve) => setImmediate(resolve));
      }
      expect(stalledRes.destroyed).toBe(true);
      expect(readerRes.destroyed).toBe(false);
      await poll(() => read).toBeGreaterThan(sent * 200);
    } finally {
      hub.close();
      stalled.destroy();
      reader.destroy();
      await new Promise((resolve) => server.close(resolve));
    }
  });
});

describe('the dashboard in many tabs', () => {
  // Chromium opens at most six HTTP/1.1 connections to a host: a live stream per tab would hold
  // them all, and from the sixth tab on no page would load.
  it('loads and updates live in eight tabs at once', async () => {
    const tabs = await Promise.all(Array.from({ length: 8 }, () => context.newPage()));
    try {
      for (const tab of tabs) {
        await tab.goto(`${emulator.controlUrl}/`, { timeout: 10_000 });
        await poll(() => tab.locator('#live').textContent()).toBe('live');
      }
      await send('seen_by_all', { ms: 1 });
      for (const tab of tabs) {
        await poll(() => tab.locator('tr[data-task-id="seen_by_all"] .status').textContent()).toBe('Succeeded');
      }
    } finally {
      await Promise.all(tabs.map((tab) => tab.close()));
    }
  });

  it('follows the stream on its own in a browser without SharedWorker', async () => {
    const tab = await context.newPage();
    try {
      await tab.addInitScript(() => {
        delete (globalThis as { SharedWorker?: unknown }).SharedWorker;
      });
      await tab.goto(`${emulator.controlUrl}/`);
      await poll(() => tab.locator('#live').textContent()).toBe('live');
      await send('seen_alone', { ms: 1 });
      await poll(() => tab.locator('tr[data-task-id="seen_alone"] .status').textContent()).toBe('Succeeded');
    } finally {
      await tab.close();
    }
  });
});

describe('the dashboard across an emulator restart', () => {
  it('clears a list error once the store answers again, with no task event to refresh on (Redis back)', async () => {
    await openDashboard();
    const list = /\/async-tasks\?/;
    await page.route(list, (route) =>
      route.fulfill({
        status: 503,
        contentType: 'application/json',
        body: JSON.stringify({
          Code: 'RedisUnavailable',
          Message: 'Redis did not answer within 5000 ms',
          RequestId: 'r',
        }),
      }),
    );
    await send('store_down', { ms: 1 });
    await poll(() => page.locator('#error').textContent()).toMatch(/^RedisUnavailable/);
    await page.unroute(list);
    // Nothing happens meanwhile: no task, no filter change.
    await poll(() => page.locator('#error').isHidden()).toBe(true);
    expect(await rowIds()).toContain('store_down');
  });

  it('goes live again and closes the detail of a task that is gone', async () => {
    await openDashboard();
    await send('gone_soon', { ms: 1 });
    await poll(() => status('gone_soon').textContent()).toBe('Succeeded');
    await row('gone_soon').click();
    await poll(() => page.locator('#detail-title').textContent()).toBe('gone_soon');
    const ports = {
      port: Number(new URL(emulator.triggerUrl).port),
      controlPort: Number(new URL(emulator.controlUrl).port),
    };
    await emulator.close({ timeoutMs: 1000 });
    await poll(() => page.locator('#live').textContent()).toBe('reconnecting…');
    emulator = await start(ports);
    await send('after_restart', { ms: 1 });
    await poll(() => status('after_restart').textContent()).toBe('Succeeded');
    await poll(() => page.locator('#detail').isHidden()).toBe(true);
    expect(await page.locator('#error').isHidden()).toBe(true);
    expect(await rowIds()).toEqual(['after_restart']);
    expect(await page.locator('#live').textContent()).toBe('live');
  });
});
