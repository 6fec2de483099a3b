import type { BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Emulator, startEmulator } from '../src/index.js';
import { fixture, launchChromium } from './helpers.js';

// The dashboard without a mouse, in headless Chromium: a task opens from the keyboard, Escape closes
// it, Stop says which task it stops and leaves the focus somewhere, and a phone's width shows the
// open task whole. Rows used to open on a click only, and a stop dropped the focus to the page.

let emulator: Emulator;
let context: BrowserContext;
let page: Page;
const poll = <T>(probe: () => Promise<T> | T) => expect.poll(probe, { timeout: 20_000, interval: 50 });
const row = (id: string) => page.locator(`tr[data-task-id="${id}"]`);
/** The focused element: its id, else its row's task id, else its tag (evaluated in the page). */
const focused = () =>
  page.evaluate<string>(
    "(() => { const a = document.activeElement; return a?.id || a?.getAttribute('data-task-id') || a?.tagName || ''; })()",
  );

async function task(id: string, path: '/hang' | '/done'): Promise<void> {
  const res = await fetch(`${emulator.triggerUrl}${path}`, {
    headers: { 'x-fc-invocation-type': 'Async', 'x-fc-async-task-id': id },
  });
  expect(res.status).toBe(202);
}

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
  // Stop asks first (a native dialog, which the keyboard answers too): yes.
  page.on('dialog', (dialog) => void dialog.accept());
  await page.goto(`${emulator.controlUrl}/`);
  await page.locator('#live', { hasText: /^live$/ }).waitFor({ timeout: 20_000 });
});

afterAll(async () => {
  await context?.close();
  await emulator?.close({ timeoutMs: 100 });
});

describe('the dashboard from the keyboard', () => {
  it('opens a task with Enter on its row, moves the focus into it, and Escape closes it back to the row', async () => {
    await task('key_open', '/done');
    await poll(() => row('key_open').locator('.status').textContent()).toBe('Succeeded');
    await row('key_open').focus();
    await page.keyboard.press('Enter');
    await poll(() => page.locator('#detail-title').textContent()).toBe('key_open');
    await poll(focused).toBe('detail-title');
    expect(await page.locator('#detail').getAttribute('aria-labelledby')).toBe('detail-title');
    await page.keyboard.press('Escape');
    await poll(() => page.locator('#detail').isHidden()).toBe(true);
    await poll(focused).toBe('key_open');
  });

  it('names each Stop button by its task, and a Stop pressed from the keyboard leaves the focus on its row', async () => {
    await task('key_stop', '/hang');
    await poll(() => row('key_stop').locator('.status').textContent()).toBe('Running');
    const stop = row('key_stop').locator('button.stop');
    expect(await stop.getAttribute('aria-label')).toBe('Stop task key_stop');
    expect(await page.locator('thead th').last().textContent()).toBe('Stop');
    await stop.focus();
    await page.keyboard.press('Enter');
    await poll(() => row('key_stop').locator('.status').textContent()).toMatch(/^Stopp/);
    await poll(focused).toBe('key_stop');
    expect(await page.locator('#live').getAttribute('role')).toBe('status');
  });

  it('shows an open task whole at a phone width, without the page scrolling sideways', async () => {
    await task('key_narrow_with_a_long_task_id_0123456789', '/done');
    await page.setViewportSize({ width: 360, height: 740 });
    await row('key_narrow_with_a_long_task_id_0123456789').click();
    await poll(() => page.locator('#detail-title').textContent()).toBe('key_narrow_with_a_long_task_id_0123456789');
    const widths = await page.evaluate<{ page: number; detail: number }>(
      "({ page: document.documentElement.scrollWidth, detail: document.getElementById('detail').getBoundingClientRect().width })",
    );
    expect(widths.page).toBeLessThanOrEqual(360);
    expect(widths.detail).toBeGreaterThan(300);
  });
});
