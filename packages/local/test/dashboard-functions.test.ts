import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, request, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Emulator, startEmulator } from '../src/index.js';
import { launchChromium } from './helpers.js';

// Two functions of one s.yaml, the dashboard showing one: the live stream carries every function's
// events, and the page reads the shown function's list again on its own function's events only
// (ListAsyncTasks reads counted where the control plane receives them, through a proxy).

let emulator: Emulator;
let context: BrowserContext;
let page: Page;
let proxy: Server;
let proxyUrl: string;
const dir = mkdtempSync(join(tmpdir(), 'fc-async-dash-fns-'));
/** ListAsyncTasks reads the control plane received, by function. */
const listReads = new Map<string, number>();
const poll = <T>(probe: () => Promise<T> | T) => expect.poll(probe, { timeout: 20_000, interval: 50 });

writeFileSync(
  join(dir, 'fn.mjs'),
  `export const handler = async (event) => {
  const q = JSON.parse(event.toString('utf8')).queryParameters ?? {};
  await new Promise((resolve) => setTimeout(resolve, Number(q.ms ?? 0)));
  return { statusCode: 200, headers: { 'content-type': 'text/plain' }, body: 'done' };
};
`,
);
writeFileSync(
  join(dir, 's.yaml'),
  `edition: 3.0.0
name: two
resources:
${['alpha', 'beta']
  .map(
    (name) => `  ${name}:
    component: fc3
    props:
      functionName: ${name}
      runtime: nodejs20
      code: ./
      handler: fn.handler
      triggers: [{ triggerName: http, triggerType: http }]
`,
  )
  .join('')}`,
);

beforeAll(async () => {
  emulator = await startEmulator({ output: () => {}, port: 0, controlPort: 0, config: join(dir, 's.yaml') });
  const control = new URL(emulator.controlUrl);
  // Counts what reaches the control plane: the page talks to it through this.
  proxy = createServer((req, res) => {
    const list = /^\/2023-03-30\/functions\/([^/]+)\/async-tasks\?/.exec(req.url ?? '');
    if (list && req.method === 'GET') listReads.set(list[1]!, (listReads.get(list[1]!) ?? 0) + 1);
    const upstream = request(
      { host: control.hostname, port: control.port, path: req.url, method: req.method, headers: req.headers },
      (answer) => {
        res.writeHead(answer.statusCode ?? 502, answer.headers);
        answer.pipe(res);
      },
    );
    upstream.on('error', () => res.destroy());
    req.pipe(upstream);
    res.on('close', () => upstream.destroy());
  });
  await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve));
  proxyUrl = `http://127.0.0.1:${(proxy.address() as AddressInfo).port}`;
  context = await launchChromium();
});

afterAll(async () => {
  await context?.close();
  proxy?.closeAllConnections();
  proxy?.close();
  await emulator?.close({ timeoutMs: 100 });
  rmSync(dir, { recursive: true, force: true });
});

async function send(fn: string, taskId: string, query = ''): Promise<void> {
  const res = await fetch(`${emulator.triggerUrl}/${fn}/?${query}`, {
    headers: { 'x-fc-invocation-type': 'Async', 'x-fc-async-task-id': taskId },
  });
  expect(res.status).toBe(202);
}
const status = async (fn: string, id: string) =>
  (
    (await (await fetch(`${emulator.controlUrl}/2023-03-30/functions/${fn}/async-tasks/${id}`)).json()) as {
      status: string;
    }
  ).status;

describe('the dashboard with two functions', () => {
  it("reads the shown function's tasks again on its own events only", async () => {
    page = await context.newPage();
    page.setDefaultTimeout(20_000);
    await page.goto(`${proxyUrl}/`);
    await poll(() => page.locator('#live').textContent()).toBe('live');
    await page.selectOption('#function', 'alpha');
    await send('alpha', 'a_0');
    await poll(() => page.locator('tr[data-task-id="a_0"] .status').textContent()).toBe('Succeeded');
    const before = listReads.get('alpha') ?? 0;
    // Eight tasks of beta, each a few hundred ms apart: a page that refreshed on them would read
    // alpha's list once or more for each (refreshes are at most one per 250 ms).
    for (let i = 0; i < 8; i++) {
      await send('beta', `b_${i}`, 'ms=300');
      await poll(() => status('beta', `b_${i}`)).toBe('Succeeded');
    }
    // alpha's own task still shows live.
    await send('alpha', 'a_1');
    await poll(() => page.locator('tr[data-task-id="a_1"] .status').textContent()).toBe('Succeeded');
    expect(await page.locator('tbody tr').count()).toBe(2);
    expect(listReads.get('beta')).toBeUndefined();
    // a_1's events (accepted, started, attempt, finished) and a_0's last one at most.
    expect((listReads.get('alpha') ?? 0) - before).toBeLessThanOrEqual(5);
  });
});
