import { type ClientRequest, type IncomingHttpHeaders, request } from 'node:http';
import type { BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Emulator, type EmulatorOptions, startEmulator } from '../src/index.js';
import { fixture, launchChromium, startEcho, startJobs } from './helpers.js';

// The control plane serves at most `maxEventStreams` dashboard live streams at once: past it a new
// one gets FC's error body with 503 and Retry-After, a closed stream frees its slot, and the
// dashboard page waits and opens its stream again rather than stay without live updates.

const poll = <T>(probe: () => Promise<T> | T) => expect.poll(probe, { timeout: 20_000, interval: 50 });

interface Stream {
  status: number;
  headers: IncomingHttpHeaders;
  /** The body so far (all of it, for an answer that is not a stream). */
  text: () => string;
  ended: Promise<void>;
  close: () => void;
}

/** `GET /api/events` on a connection of its own, once its answer's head has arrived. */
function openStream(controlUrl: string, method = 'GET'): Promise<Stream> {
  return new Promise((resolve, reject) => {
    let req: ClientRequest | undefined;
    req = request(`${controlUrl}/api/events`, { method, agent: false }, (res) => {
      let text = '';
      res.on('data', (chunk: Buffer) => {
        text += chunk.toString('utf8');
      });
      res.on('error', () => {});
      const ended = new Promise<void>((done) => res.on('close', () => done()));
      resolve({
        status: res.statusCode ?? 0,
        headers: res.headers,
        text: () => text,
        ended,
        close: () => req?.destroy(),
      });
    });
    req.on('error', reject);
    req.end();
  });
}

describe('the cap on dashboard live streams', () => {
  let emulator: Emulator;
  const streams: Stream[] = [];
  beforeAll(async () => {
    emulator = await startEcho({ maxEventStreams: 2 });
  });
  afterAll(async () => {
    for (const s of streams) s.close();
    await emulator.close({ timeoutMs: 1000 });
  });

  it('refuses a stream past the cap with 503, Retry-After and FC’s error body, and frees a closed stream’s slot', async () => {
    for (let i = 0; i < 2; i++) {
      const stream = await openStream(emulator.controlUrl);
      streams.push(stream);
      expect(stream.status).toBe(200);
      expect(stream.headers['content-type']).toBe('text/event-stream');
    }
    const refused = await openStream(emulator.controlUrl);
    await refused.ended;
    expect(refused.status).toBe(503);
    expect(refused.headers['retry-after']).toBe('5');
    const body = JSON.parse(refused.text()) as Record<string, unknown>;
    expect(Object.keys(body).sort()).toEqual(['Code', 'Message', 'RequestId']);
    expect(body.Code).toBe('TooManyStreams');
    expect(body.Message).toMatch(/maxEventStreams/);
    expect(body.RequestId).toBe(refused.headers['x-fc-request-id']);

    // HEAD holds no stream; the API and the page still answer.
    const head = await openStream(emulator.controlUrl, 'HEAD');
    expect(head.status).toBe(200);
    expect((await fetch(`${emulator.controlUrl}/api/functions`)).status).toBe(200);
    expect((await fetch(`${emulator.controlUrl}/`)).status).toBe(200);

    // A stream its client closes frees its slot.
    streams.shift()?.close();
    await poll(async () => {
      const next = await openStream(emulator.controlUrl);
      if (next.status === 200) streams.push(next);
      return next.status;
    }).toBe(200);
    const again = await openStream(emulator.controlUrl);
    expect(again.status).toBe(503);
  });

  it('caps at 64 streams by default', async () => {
    const other = await startEcho();
    const open: Stream[] = [];
    try {
      for (let i = 0; i < 64; i++) open.push(await openStream(other.controlUrl));
      expect(open.map((s) => s.status)).toEqual(Array(64).fill(200));
      const refused = await openStream(other.controlUrl);
      expect(refused.status).toBe(503);
      refused.close();
    } finally {
      for (const s of open) s.close();
      await other.close({ timeoutMs: 1000 });
    }
  });
});

describe('the dashboard when its live stream is refused', () => {
  let emulator: Emulator;
  let context: BrowserContext;
  beforeAll(async () => {
    emulator = await startJobs({ maxEventStreams: 1 });
    context = await launchChromium();
  });
  afterAll(async () => {
    await context?.close();
    await emulator?.close({ timeoutMs: 1000 });
  });

  async function send(taskId: string) {
    const res = await fetch(`${emulator.triggerUrl}/jobs`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-fc-invocation-type': 'Async', 'x-fc-async-task-id': taskId },
      body: JSON.stringify({ ms: 1 }),
    });
    expect(res.status).toBe(202);
  }

  /** Takes the one stream slot (once whatever held it before has let it go). */
  async function holdTheSlot(): Promise<Stream> {
    let held: Stream | undefined;
    await poll(async () => {
      const s = await openStream(emulator.controlUrl);
      if (s.status === 200) held = s;
      return s.status;
    }).toBe(200);
    return held as Stream;
  }

  const status = (page: Page, taskId: string) => page.locator(`tr[data-task-id="${taskId}"] .status`).textContent();

  it.each([
    ['through its SharedWorker', false],
    ['on its own, without SharedWorker', true],
  ])('lists tasks meanwhile and goes live once a slot is free: %s', async (_name, noSharedWorker) => {
    const tag = noSharedWorker ? 'alone' : 'shared';
    const held = await holdTheSlot();
    await send(`before_${tag}`);
    const page = await context.newPage();
    try {
      if (noSharedWorker) {
        await page.addInitScript(() => {
          delete (globalThis as { SharedWorker?: unknown }).SharedWorker;
        });
      }
      await page.goto(`${emulator.controlUrl}/`);
      await poll(() => status(page, `before_${tag}`)).toBeTruthy();
      await poll(() => page.locator('#live').textContent()).toBe('reconnecting…');
      expect(await page.locator('#error').isHidden()).toBe(true);
      held.close();
      await poll(() => page.locator('#live').textContent()).toBe('live');
      await send(`live_${tag}`);
      await poll(() => status(page, `live_${tag}`)).toBe('Succeeded');
    } finally {
      held.close();
      await page.close();
    }
  });
});

describe('the options of the bounds', () => {
  const quiet = { entry: fixture('echo-handler.mjs'), port: 0, controlPort: 0, output: () => {} };
  it.each<[string, unknown, string]>([
    ['maxEventStreams', 0, 'Expected `maxEventStreams` to be an integer from 1 to 10000, got `0`'],
    ['maxEventStreams', '8', 'Expected `maxEventStreams` to be an integer from 1 to 10000, got `8`'],
    [
      'maxBufferedBodyBytes',
      1024,
      'Expected `maxBufferedBodyBytes` to be an integer from 33554432 to 9007199254740991, got `1024`',
    ],
    [
      'maxBufferedBodyBytes',
      2.5e8 + 0.5,
      'Expected `maxBufferedBodyBytes` to be an integer from 33554432 to 9007199254740991, got `250000000.5`',
    ],
  ])('refuses %s: %s', async (name, value, message) => {
    const options = { ...quiet, [name]: value } as EmulatorOptions;
    await expect(startEmulator(options)).rejects.toThrow(new TypeError(message));
    // The caller's object is left as it was: no default written into it.
    expect(Object.keys(options).sort()).toEqual(['controlPort', 'entry', 'output', 'port', name].sort());
  });

  it('leaves the caller’s options without the defaults', async () => {
    const options: EmulatorOptions = { ...quiet };
    const emulator = await startEmulator(options);
    await emulator.close({ timeoutMs: 1000 });
    expect(options).not.toHaveProperty('maxEventStreams');
    expect(options).not.toHaveProperty('maxBufferedBodyBytes');
  });
});
