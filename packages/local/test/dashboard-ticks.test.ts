import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Emulator, startEmulator } from '../src/index.js';
import { fixture, launchChromium } from './helpers.js';

// The dashboard's own timers, in headless Chromium: the duration of a task still under way keeps
// counting, and looking again after failed loads (a store down) stays one look, not one per failure.

let emulator: Emulator;
let context: BrowserContext;
let page: Page;
const poll = <T>(probe: () => Promise<T> | T) => expect.poll(probe, { timeout: 20_000, interval: 50 });
const row = (id: string) => page.locator(`tr[data-task-id="${id}"]`);

beforeAll(async () => {
  emulator = await startEmulator({
    output: () => {},
    port: 0,
    controlPort: 0,
    entry: fixture('koa-hang.mjs'),
    name: 'hang',
  });
  context = await launchChromium();
  page = await context.newPage();
  page.setDefaultTimeout(20_000);
  // Open and live before any test, so that each test stands on its own (`-t` runs one alone).
  await page.goto(`${emulator.controlUrl}/`);
  // expect.poll belongs to a test: the page's own wait here.
  await page.locator('#live', { hasText: /^live$/ }).waitFor({ timeout: 20_000 });
});

afterAll(async () => {
  await context?.close();
  await emulator?.close({ timeoutMs: 100 });
});

describe('the dashboard timers', () => {
  it('keeps counting the duration of a Stopping task whose app ignores the stop', async () => {
    const res = await fetch(`${emulator.triggerUrl}/hang`, {
      headers: { 'x-fc-invocation-type': 'Async', 'x-fc-async-task-id': 'stuck' },
    });
    expect(res.status).toBe(202);
    await poll(() => row('stuck').locator('.status').textContent()).toBe('Running');
    const stop = await fetch(`${emulator.controlUrl}/2023-03-30/functions/hang/async-tasks/stuck/stop`, {
      method: 'PUT',
    });
    expect(stop.status).toBe(200);
    await poll(() => row('stuck').locator('.status').textContent()).toBe('Stopping');
    const before = await row('stuck').locator('td').nth(5).textContent();
    // Within the ticker's second or two, long before the stop's 10 s grace ends the attempt (and with it the row).
    await expect
      .poll(() => row('stuck').locator('td').nth(5).textContent(), { timeout: 3000, interval: 50 })
      .not.toBe(before);
    expect(await row('stuck').locator('.status').textContent()).toBe('Stopping');
  });

  it("keeps another running task's Stop button in view while a task is open in a narrow window", async () => {
    await page.setViewportSize({ width: 900, height: 700 });
    for (const id of ['narrow_a', 'narrow_b']) {
      const res = await fetch(`${emulator.triggerUrl}/hang`, {
        headers: { 'x-fc-invocation-type': 'Async', 'x-fc-async-task-id': id },
      });
      expect(res.status).toBe(202);
    }
    await poll(() => row('narrow_b').locator('.status').textContent()).toBe('Running');
    await row('narrow_a').click();
    await poll(() => page.locator('#detail-title').textContent()).toBe('narrow_a');
    const inView = () =>
      row('narrow_b')
        .locator('button.stop')
        .evaluate((button) => {
          const list = button.closest('section');
          return list !== null && button.getBoundingClientRect().right <= list.getBoundingClientRect().right + 1;
        });
    await poll(inView).toBe(true);
    // The open row's Stop cell has the row's colour, not the white that keeps other rows' cells opaque.
    const colours = await row('narrow_a').evaluate((tr) => {
      const style = (globalThis as unknown as { getComputedStyle: (e: unknown) => { backgroundColor: string } })
        .getComputedStyle;
      return [style(tr).backgroundColor, style(tr.lastElementChild).backgroundColor];
    });
    expect(colours[1]).toBe(colours[0]);
    await page.locator('#detail-close').click();
    await page.setViewportSize({ width: 1280, height: 720 });
  });

  it('looks again once at a time while list loads fail, however many failed', async () => {
    let lists = 0;
    await page.route(/\/async-tasks\?/, (route) => {
      lists++;
      return route.fulfill({
        status: 503,
        contentType: 'application/json',
        body: JSON.stringify({ Code: 'RedisUnavailable', Message: 'down', RequestId: 'r' }),
      });
    });
    // Five loads fail (filter changes), 300 ms apart: each used to start a look-again loop of its own.
    for (const status of ['Running', 'Failed', 'Succeeded', 'Stopped', '']) {
      await page.selectOption('#status', status);
      await page.waitForTimeout(300);
    }
    await poll(() => page.locator('#error').textContent()).toMatch(/^RedisUnavailable/);
    lists = 0;
    await page.waitForTimeout(5000);
    // One look every 2.25 s: two or three in 5 s (five loops made about eleven).
    expect(lists).toBeLessThanOrEqual(3);
    await page.unrouteAll({ behavior: 'ignoreErrors' });
    await poll(() => page.locator('#error').isHidden()).toBe(true);
  });
});

describe('the dashboard of an event function with no tasks', () => {
  it('says how its tasks come (InvokeFunction), not to send it a request it has no trigger for', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'fc-async-dash-event-'));
    writeFileSync(join(dir, 'fn.mjs'), 'export const handler = async () => "ok";\n');
    const fn = (name: string, http: boolean) => `  ${name}:
    component: fc3
    props:
      functionName: ${name}
      runtime: nodejs20
      code: ./
      handler: fn.handler
${http ? '      triggers:\n        - triggerName: http\n          triggerType: http\n' : ''}`;
    writeFileSync(
      join(dir, 's.yaml'),
      `edition: 3.0.0\nname: hint\nresources:\n${fn('web', true)}${fn('sink', false)}`,
    );
    const two = await startEmulator({ output: () => {}, port: 0, controlPort: 0, config: join(dir, 's.yaml') });
    const tab = await context.newPage();
    try {
      await tab.goto(`${two.controlUrl}/`);
      await expect.poll(() => tab.locator('#empty').isVisible(), { timeout: 20_000 }).toBe(true);
      await tab.selectOption('#function', 'sink');
      await expect.poll(() => tab.locator('#empty-event').isVisible(), { timeout: 20_000 }).toBe(true);
      expect(await tab.locator('#empty').isHidden()).toBe(true);
    } finally {
      await tab.close();
      await two.close({ timeoutMs: 100 });
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
