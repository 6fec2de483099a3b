import { createServer } from 'node:http';
import { connect, type Socket } from 'node:net';
import { until } from '@fc-async/test-kit/wait';
import type { BrowserContext } from 'playwright-core';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { EventHub } from '../src/control/dashboard.js';
import type { Emulator } from '../src/index.js';
import type { FunctionRegistry } from '../src/registry.js';
import { launchChromium, startJobs } from './helpers.js';

// The live stream under a pulse: the hub writes a turn's events to a stream together, and every
// event still reaches it, as a message of its own, in the order the engines emitted them.

type Listener = (event: Record<string, unknown>) => void;

const cleanup: (() => unknown)[] = [];
afterEach(async () => {
  for (const step of cleanup.splice(0).reverse()) await step();
});

/** A hub over two fake functions whose events the test emits, served on a free port. */
async function hubOf() {
  const listeners = new Map<string, Listener>();
  const fn = (name: string) => ({
    spec: { name },
    engine: {
      subscribe: (listener: Listener) => {
        listeners.set(name, listener);
        return () => listeners.delete(name);
      },
      // A store of this process alone: nothing changes elsewhere.
      watchStore: () => () => {},
    },
  });
  const registry = { all: [fn('a'), fn('b')] } as unknown as FunctionRegistry;
  const hub = new EventHub(registry);
  let attached = 0;
  const server = createServer((req, res) => {
    hub.attach(req, res);
    attached++;
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  cleanup.push(() => new Promise((resolve) => server.close(resolve)));
  cleanup.push(() => server.closeAllConnections());
  cleanup.push(() => hub.close());
  const emit = (name: string, event: Record<string, unknown>) => listeners.get(name)?.(event);
  return { hub, port, emit, attached: () => attached };
}

/** A stream read from a raw socket: its messages' data, parsed, and whether it ended. */
function open(port: number, attached: () => number) {
  const socket: Socket = connect(port, '127.0.0.1');
  cleanup.push(() => socket.destroy());
  const before = attached();
  socket.write(`GET /api/events HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\n\r\n`);
  let text = '';
  socket.setEncoding('latin1');
  socket.on('data', (chunk: string) => {
    text += chunk;
  });
  return {
    ready: () => until(() => (attached() > before ? true : undefined), 'the stream to be attached'),
    /** The data of every message so far (chunked framing removed: data lines are what the page reads). */
    messages: () =>
      [...text.matchAll(/^data: (.*)$/gm)].map((m) => JSON.parse(m[1] as string) as Record<string, unknown>),
    /** The answer ended (its last, empty chunk came), or the connection closed. */
    ended: () => text.endsWith('\r\n0\r\n\r\n') || socket.destroyed,
  };
}

const accepted = (i: number) => ({ type: 'accepted', taskId: `t${i}`, requestId: `1-${i}`, delayMs: 0 });
const finished = (i: number) => ({ type: 'finished', taskId: `t${i}`, requestId: `1-${i}`, status: 'Succeeded' });

describe('the live stream under a burst of events', () => {
  it('delivers every event of a turn and of the next ones, each a message of its own, in order', async () => {
    const { port, emit, attached } = await hubOf();
    const stream = open(port, attached);
    await stream.ready();
    const sent: Record<string, unknown>[] = [];
    const send = (name: string, event: Record<string, unknown>) => {
      emit(name, event);
      sent.push({ function: name, ...event });
    };
    // Two functions' events interleaved in one turn, then more over the next turns.
    for (let i = 0; i < 2000; i++) send(i % 3 === 0 ? 'b' : 'a', accepted(i));
    for (let turn = 0; turn < 5; turn++) {
      await new Promise((resolve) => setImmediate(resolve));
      for (let i = 0; i < 300; i++) send('a', finished(turn * 300 + i));
    }
    await until(() => (stream.messages().length >= sent.length ? true : undefined), `${sent.length} messages`);
    expect(stream.messages()).toEqual(sent);
  });

  it('sends what happened before a shutdown to the streams before they end', async () => {
    const { hub, port, emit, attached } = await hubOf();
    const stream = open(port, attached);
    await stream.ready();
    for (let i = 0; i < 50; i++) emit('a', accepted(i));
    hub.close();
    await until(() => (stream.ended() ? true : undefined), 'the stream to end');
    expect(stream.messages().map((m) => m.taskId)).toEqual(Array.from({ length: 50 }, (_, i) => `t${i}`));
  });

  it('gives a stream opened during a turn the events after it, and the streams already open all of them', async () => {
    const { port, emit, attached } = await hubOf();
    const first = open(port, attached);
    await first.ready();
    for (let i = 0; i < 10; i++) emit('a', accepted(i));
    const second = open(port, attached);
    await second.ready();
    for (let i = 10; i < 20; i++) emit('a', accepted(i));
    await until(() => (first.messages().length >= 20 ? true : undefined), 'the first stream to get 20 messages');
    await until(() => (second.messages().length >= 10 ? true : undefined), 'the second stream to get 10 messages');
    expect(first.messages().map((m) => m.taskId)).toEqual(Array.from({ length: 20 }, (_, i) => `t${i}`));
    // t0..t9 happened before the second stream was open: it gets no backlog.
    expect(second.messages().map((m) => m.taskId)).toEqual(Array.from({ length: 10 }, (_, i) => `t${i + 10}`));
  });
});

/** The worker as it was before events came in bursts: a message per event ({ data }). */
const EARLIER_WORKER = `
const ports = new Set();
let source;
let state = 'connecting';
function send(message) { for (const port of ports) port.postMessage(message); }
function open() {
  source = new EventSource('/api/events');
  source.onopen = () => { state = 'open'; send({ state }); };
  source.onerror = () => { state = 'error'; send({ state }); };
  source.onmessage = (message) => send({ data: message.data });
}
self.onconnect = (event) => {
  const port = event.ports[0];
  ports.add(port);
  port.postMessage({ state });
  if (!source) open();
};`;

/** An async call of the jobs fixture under `taskId` (a job of 1 ms), answered 202. */
async function sendJob(emulator: Emulator, taskId: string): Promise<void> {
  const res = await fetch(`${emulator.triggerUrl}/jobs`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-fc-invocation-type': 'Async', 'x-fc-async-task-id': taskId },
    body: JSON.stringify({ ms: 1 }),
  });
  expect(res.status).toBe(202);
}

describe('a dashboard tab behind a burst of tasks', () => {
  let emulator: Emulator | undefined;
  let context: BrowserContext | undefined;
  afterAll(async () => {
    await context?.close();
    await emulator?.close({ timeoutMs: 1000 });
  });

  it("shows a new status filter's own list while a live refresh waits on an older, slow one", async () => {
    const own = await startJobs();
    const browser = await launchChromium();
    const send = (id: string) => sendJob(own, id);
    const settled = async (id: string) => {
      const url = `${own.controlUrl}/2023-03-30/functions/jobs/async-tasks/${id}`;
      await expect
        .poll(async () => ((await (await fetch(url)).json()) as { status?: string }).status, {
          timeout: 20_000,
          message: `task ${id} to succeed`,
        })
        .toBe('Succeeded');
    };
    try {
      const page = await browser.newPage();
      page.setDefaultTimeout(20_000);
      let lists = 0;
      page.on('response', (response) => {
        if (response.url().includes('/async-tasks?')) lists++;
      });
      await page.goto(`${own.controlUrl}/`);
      await page.locator('#live', { hasText: /^live$/ }).waitFor();
      await until(() => (lists >= 2 ? true : undefined), 'the lists of the load and of the stream opening', 20_000);
      await page.evaluate(`{
        window.sawFirst = false;
        new MutationObserver(() => {
          if (document.querySelector('tr[data-task-id="first_answer"]')) window.sawFirst = true;
        }).observe(document.getElementById('tasks'), { childList: true });
      }`);
      // The unfiltered lists from now on wait for `release`; the first Failed list waits for them,
      // and answers a task of its own, so that the page shows it only if it keeps that answer.
      let release = () => {};
      const held = new Promise<void>((resolve) => {
        release = resolve;
      });
      let slow = 0;
      let slowDone = 0;
      let failed = 0;
      await page.route(/\/async-tasks\?/, async (route) => {
        const url = route.request().url();
        if (!url.includes('status=Failed')) {
          slow++;
          await held;
          await route.continue();
          return;
        }
        if (++failed > 1) return route.continue();
        await held;
        await until(() => (slowDone >= slow ? true : undefined), 'the slow lists to be answered', 20_000);
        const answer = await route.fetch();
        const first = {
          taskId: 'first_answer',
          status: 'Failed',
          requestId: '1-first',
          startedTime: Date.now(),
          events: [],
        };
        await route.fulfill({ response: answer, json: { tasks: [first] } });
      });
      page.on('requestfinished', (request) => {
        if (request.url().includes('/async-tasks?') && !request.url().includes('status=Failed')) slowDone++;
      });
      // A live refresh starts a list that hangs; the next task's events have the next live refresh
      // wait on it.
      await send('hold_1');
      await until(() => (slow >= 1 ? true : undefined), 'a live refresh', 20_000);
      await send('hold_2');
      await settled('hold_2');
      // Past the 250 ms a live refresh waits: it is now waiting on the hanging list. (Were it later,
      // the filter's list would show under the old page as well: the test would pass, not fail.)
      await new Promise((resolve) => setTimeout(resolve, 1000));
      await page.locator('#status').selectOption('Failed');
      await until(() => (failed >= 1 ? true : undefined), "the filter's list", 20_000);
      release();
      await expect
        .poll(() => page.evaluate('window.sawFirst'), { timeout: 20_000, message: "the filter's own answer shown" })
        .toBe(true);
    } finally {
      await browser.close();
      await own.close({ timeoutMs: 1000 });
    }
  });

  it('keeps following the stream through a worker of an earlier version, which sends one event a message', async () => {
    const own = await startJobs();
    const browser = await launchChromium();
    try {
      // A tab of the earlier page, still open across an upgrade, keeps its worker: new tabs join it.
      let served = 0;
      await browser.route('**/assets/events-worker.js', (route) => {
        served++;
        return route.fulfill({ status: 200, contentType: 'text/javascript', body: EARLIER_WORKER });
      });
      const page = await browser.newPage();
      page.setDefaultTimeout(20_000);
      let lists = 0;
      page.on('response', (response) => {
        if (response.url().includes('/async-tasks?')) lists++;
      });
      await page.goto(`${own.controlUrl}/`);
      await page.locator('#live', { hasText: /^live$/ }).waitFor();
      // The page's first list, and the one it loads when the stream opens: after them, only an
      // event brings the task below to the list.
      await until(() => (lists >= 2 ? true : undefined), 'the lists of the load and of the stream opening', 20_000);
      await sendJob(own, 'earlier');
      await expect
        .poll(() => page.locator('tr[data-task-id="earlier"] .status').textContent(), {
          timeout: 20_000,
          message: 'the task shown Succeeded',
        })
        .toBe('Succeeded');
      expect(served).toBe(1);
    } finally {
      await browser.close();
      await own.close({ timeoutMs: 1000 });
    }
  });

  it("gets the stream's events complete and in order through the shared worker, and ends on every task's final status", async () => {
    emulator = await startJobs();
    const control = emulator.controlUrl;
    context = await launchChromium();
    const page = await context.newPage();
    page.setDefaultTimeout(20_000);
    await page.goto(`${control}/`);
    await page.locator('#live', { hasText: /^live$/ }).waitFor();
    // What the tabs get from the worker, seen by one more port of it (as a second tab would).
    await page.evaluate(`{
      window.seen = [];
      const worker = new SharedWorker('/assets/events-worker.js', { name: 'fc-async-events' });
      worker.port.onmessage = (message) => {
        if (message.data.events) window.seen.push(...message.data.events.map((data) => JSON.parse(data)));
        else if (message.data.data) window.seen.push(JSON.parse(message.data.data));
      };
    }`);
    // The hub's own stream, read beside the page: what the worker got to pass on.
    const { port } = new URL(control);
    const direct = open(Number(port), () => 1);
    await new Promise((resolve) => setTimeout(resolve, 200));
    const count = 300;
    const ids = Array.from({ length: count }, (_, i) => `burst_${i}`);
    const started = emulator;
    await Promise.all(ids.map((id) => sendJob(started, id)));
    const finished = (events: Record<string, unknown>[]) =>
      events.filter((e) => e.type === 'finished' && String(e.taskId).startsWith('burst_')).length;
    await until(() => (finished(direct.messages()) === count ? true : undefined), 'every task to finish', 20_000);
    const seen = async () => (await page.evaluate('window.seen')) as Record<string, unknown>[];
    await expect
      .poll(async () => finished(await seen()), { timeout: 10_000, message: "the worker's events of every task's end" })
      .toBe(count);
    const bursts = (events: Record<string, unknown>[]) => events.filter((e) => String(e.taskId).startsWith('burst_'));
    expect(bursts(await seen())).toEqual(bursts(direct.messages()));

    // The list the tab ends on is the one ListAsyncTasks answers: the newest 50, each Succeeded.
    const listed = (await (
      await fetch(`${control}/2023-03-30/functions/jobs/async-tasks?sortOrderByTime=desc&limit=50&returnPayload=false`)
    ).json()) as { tasks: { taskId: string; status: string }[] };
    const want = listed.tasks.map((t) => `${t.taskId}:${t.status}`);
    expect(want).toHaveLength(50);
    expect(new Set(listed.tasks.map((t) => t.status))).toEqual(new Set(['Succeeded']));
    const shown = () =>
      page.evaluate(
        `[...document.querySelectorAll('#tasks > tr')].map((tr) => tr.dataset.taskId + ':' + tr.dataset.status)`,
      );
    await expect
      .poll(shown, { timeout: 20_000, interval: 100, message: 'the tab to show the newest 50 as listed' })
      .toEqual(want);
  });
});
