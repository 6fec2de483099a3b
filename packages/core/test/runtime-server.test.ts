import { spawn } from 'node:child_process';
import { Agent, createServer, get, type IncomingMessage, type ServerResponse } from 'node:http';
import { type AddressInfo, connect } from 'node:net';
import { fileURLToPath } from 'node:url';
import { BasicTracerProvider, BatchSpanProcessor, InMemorySpanExporter } from '@opentelemetry/sdk-trace-base';
import { afterEach, describe, expect, it, vi } from 'vitest';
import {
  type AsyncBackend,
  addPreStopHook,
  createFcRuntime,
  type Detector,
  detectInvocation,
  FcAsyncError,
  type FcServer,
  listenFc,
  MemoryTaskStore,
  PQueueDriver,
  writeBridgeResponse,
} from '../src/index.js';
import { resolveListenOptions } from '../src/runtime/options.js';
import { deferred, memoryLogger, until } from './helpers.js';

const open: FcServer[] = [];
afterEach(async () => {
  for (const s of open.splice(0)) await s.close();
});

const quiet = { logger: memoryLogger(), signals: [] as NodeJS.Signals[], host: '127.0.0.1' };

async function start(listener: (req: IncomingMessage, res: ServerResponse) => unknown, options = {}, hooks = {}) {
  const fc = await listenFc(listener, { ...quiet, port: 0, ...options }, hooks);
  open.push(fc);
  return { fc, url: `http://127.0.0.1:${fc.port}` };
}

/** A port nobody listens on right now. */
async function freePort(): Promise<number> {
  const probe = createServer();
  await new Promise<void>((r) => probe.listen(0, '127.0.0.1', r));
  const { port } = probe.address() as AddressInfo;
  await new Promise((r) => probe.close(r));
  return port;
}

const ok = (_req: IncomingMessage, res: ServerResponse) => res.end('app');

describe('listenFc: where it listens', () => {
  it('takes the port from options, then FC_CUSTOM_LISTEN_PORT, then FC_SERVER_PORT, then 9000', async () => {
    const [a, b] = [await freePort(), await freePort()];
    const custom = await start(ok, { port: undefined, env: { FC_CUSTOM_LISTEN_PORT: String(a), FC_SERVER_PORT: '1' } });
    expect(custom.fc.port).toBe(a);
    const server = await start(ok, { port: undefined, env: { FC_SERVER_PORT: String(b) } });
    expect(server.fc.port).toBe(b);
    expect(resolveListenOptions({}, {}).port).toBe(9000);
    expect(resolveListenOptions({ port: 7 }, { FC_CUSTOM_LISTEN_PORT: '8' }).port).toBe(7);
  });

  it('listens on 0.0.0.0 by default, with no request timeout and long keep-alive', async () => {
    const fc = await listenFc(ok, { logger: memoryLogger(), signals: [], port: 0 });
    open.push(fc);
    expect(fc.host).toBe('0.0.0.0');
    expect((fc.server.address() as AddressInfo).address).toBe('0.0.0.0');
    expect(fc.server.requestTimeout).toBe(0);
    expect(fc.server.keepAliveTimeout).toBeGreaterThanOrEqual(60_000);
  });

  it('serves two requests on one keep-alive connection', async () => {
    const sockets = new Set<unknown>();
    const { url } = await start((req, res) => {
      sockets.add(req.socket);
      res.end('x');
    });
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    const fetchOne = () =>
      new Promise<number>((resolve, reject) =>
        get(url, { agent }, (res) => {
          res.resume();
          res.on('end', () => resolve(res.statusCode ?? 0));
        }).on('error', reject),
      );
    expect([await fetchOne(), await fetchOne()]).toEqual([200, 200]);
    expect(sockets.size).toBe(1);
    agent.destroy();
  });

  it('rejects a bad port or budget with a precise message', async () => {
    await expect(listenFc(ok, { ...quiet, env: { FC_CUSTOM_LISTEN_PORT: 'nine' } })).rejects.toThrow(
      'Expected `FC_CUSTOM_LISTEN_PORT` to be a port number from 0 to 65535, got `nine`',
    );
    await expect(listenFc(ok, { ...quiet, port: 70_000 })).rejects.toThrow('Expected `port`');
    await expect(listenFc(ok, { ...quiet, preStopTimeoutMs: 0 })).rejects.toThrow(
      'Expected `preStopTimeoutMs` to be an integer from 1 to 3600000, got `0`',
    );
  });
});

describe('listenFc: FC lifecycle', () => {
  it('answers POST /initialize after running onInitialize; a throwing initializer answers 500 with x-fc-status', async () => {
    let calls = 0;
    const { url } = await start(ok, { onInitialize: () => void calls++ });
    const r = await fetch(`${url}/initialize`, { method: 'POST', headers: { 'x-fc-control-path': '/initialize' } });
    expect([r.status, await r.text(), calls]).toEqual([200, '', 1]);
    const failing = await start(ok, {
      onInitialize: () => {
        throw new Error('db down');
      },
    });
    const f = await fetch(`${failing.url}/initialize`, { method: 'POST' });
    expect([f.status, f.headers.get('x-fc-status')]).toEqual([500, '404']);
    expect(await f.json()).toEqual({ code: 'LifecycleHookFailed', message: 'The /initialize hook failed' });
  });

  it('leaves an app route of the same name to the app when FC says it is an HTTP invocation', async () => {
    const { url } = await start(ok);
    const r = await fetch(`${url}/initialize`, { method: 'POST', headers: { 'x-fc-control-path': '/http-invoke' } });
    expect(await r.text()).toBe('app');
    expect(await (await fetch(`${url}/pre-stop`, { method: 'POST' })).text()).toBe('app');
  });

  it('GET /pre-stop lets running async tasks finish, then runs the pre-stop hooks, then answers 200', async () => {
    const order: string[] = [];
    const gate = deferred();
    const runtime = createFcRuntime({ logger: memoryLogger(), env: {}, async: { mode: 'local' } });
    const app = {};
    const listener = async (req: IncomingMessage, res: ServerResponse) => {
      const answer = await runtime.handle(req, { app, listener: () => listener });
      if (answer) return writeBridgeResponse(res, answer, req.method ?? 'GET');
      await gate.promise;
      order.push('task');
      res.end();
    };
    const off = addPreStopHook(() => void order.push('flush'));
    try {
      const { url } = await start(listener, { onPreStop: () => void order.push('onPreStop') }, { app });
      const accepted = await fetch(`${url}/job`, { method: 'POST', headers: { 'x-fc-async-task-id': 'slow' } });
      expect(accepted.status).toBe(202);
      const preStop = fetch(`${url}/pre-stop`);
      setTimeout(gate.resolve, 50);
      expect((await preStop).status).toBe(200);
      expect(order).toEqual(['task', 'flush', 'onPreStop']);
      expect((await runtime.tasks.get('slow'))?.status).toBe('Succeeded');
    } finally {
      off();
    }
  });

  it('GET /pre-stop answers within its budget when a task or a hook never ends', async () => {
    const runtime = createFcRuntime({ logger: memoryLogger(), env: {}, async: { mode: 'local', stopGraceMs: 0 } });
    const app = {};
    const listener = async (req: IncomingMessage, res: ServerResponse) => {
      const answer = await runtime.handle(req, { app, listener: () => listener });
      if (answer) writeBridgeResponse(res, answer, req.method ?? 'GET');
      // otherwise never answers
    };
    const logger = memoryLogger();
    const { url } = await start(
      listener,
      { preStopTimeoutMs: 200, logger, onPreStop: () => new Promise(() => {}) },
      { app },
    );
    await fetch(`${url}/job`, { method: 'POST', headers: { 'x-fc-async-task-id': 'stuck' } });
    expect((await fetch(`${url}/pre-stop`)).status).toBe(200);
    expect(logger.entries.map((e) => e.message)).toContain('pre-stop hooks did not finish in time');
  });

  it('GET /pre-stop with the default stopGraceMs still records a task whose app ignores its signal Stopped, and sends its onFailure, within the budget', async () => {
    // The engine used to get half the budget plus its own 10 s grace and 2 s for deliveries while
    // the pre-stop waited three quarters of the budget: SIGTERM's exit came first, the task was lost.
    const failures: { requestContext?: { condition?: string } }[] = [];
    const runtime = createFcRuntime({
      logger: memoryLogger(),
      env: {},
      async: { mode: 'local' },
      destinations: { onFailure: (record) => void failures.push(record) },
    });
    const app = {};
    const listener = async (req: IncomingMessage, res: ServerResponse) => {
      const answer = await runtime.handle(req, { app, listener: () => listener });
      if (answer) writeBridgeResponse(res, answer, req.method ?? 'GET');
      // otherwise never answers, whatever its signal says
    };
    const logger = memoryLogger();
    const { url } = await start(listener, { preStopTimeoutMs: 1000, logger }, { app });
    expect((await fetch(`${url}/job`, { method: 'POST', headers: { 'x-fc-async-task-id': 'deaf' } })).status).toBe(202);
    await until('the task to run', async () => (await runtime.tasks.get('deaf'))?.status === 'Running');
    expect((await fetch(`${url}/pre-stop`)).status).toBe(200);
    expect((await runtime.tasks.get('deaf'))?.status).toBe('Stopped');
    expect(failures.map((r) => r.requestContext?.condition)).toEqual(['Stopped']);
    expect(logger.entries.map((e) => e.message)).not.toContain('async tasks did not settle within the pre-stop budget');
  });

  it('keeps every header of a request, past the 1,000 Node keeps by default', async () => {
    const { url } = await start(async (req, res) => {
      let body = '';
      for await (const chunk of req) body += String(chunk);
      res.end(JSON.stringify({ headers: req.rawHeaders.length / 2, body }));
    });
    const { port } = new URL(url);
    const answer = await new Promise<string>((resolve) => {
      const socket = connect(Number(port), '127.0.0.1');
      let out = '';
      socket.on('data', (chunk) => {
        out += String(chunk);
      });
      socket.on('close', () => resolve(out));
      socket.write(
        `POST /x HTTP/1.1\r\nHost: a\r\n${'a: 1\r\n'.repeat(1200)}Content-Length: 2\r\nConnection: close\r\n\r\nab`,
      );
    });
    expect(answer).toContain('{"headers":1203,"body":"ab"}');
  });

  it('GET /pre-freeze runs the pre-stop hooks', async () => {
    let flushed = 0;
    const off = addPreStopHook(() => void flushed++);
    try {
      const { url } = await start(ok);
      expect((await fetch(`${url}/pre-freeze`)).status).toBe(200);
      expect(flushed).toBe(1);
    } finally {
      off();
    }
  });
});

/** A backend whose first `failures` starts fail with RedisUnavailable; `gate` holds each start until it resolves. */
function backendFailing(failures: number, gate: Promise<void> = Promise.resolve()): AsyncBackend & { creates: number } {
  const backend = {
    name: 'flaky',
    persistent: false,
    creates: 0,
    async create({ concurrency }: { concurrency: number }) {
      backend.creates++;
      await gate;
      if (backend.creates <= failures) {
        throw new FcAsyncError('RedisUnavailable', 'Redis did not answer within 300 ms', { statusCode: 503 });
      }
      return { store: new MemoryTaskStore(), queue: new PQueueDriver(concurrency) };
    },
  };
  return backend;
}

describe('listenFc: the async backend of the app’s middleware', () => {
  const local = (backend: AsyncBackend) =>
    createFcRuntime({ logger: memoryLogger(), env: {}, async: { mode: 'local', backend } });

  it('listens only once the backend of a middleware that has not seen a request yet (Express, Koa) started', async () => {
    const gate = deferred();
    const runtime = local(backendFailing(0, gate.promise));
    try {
      const order: string[] = [];
      const listening = start(ok, {}, { app: {} }).then((started) => {
        order.push('listening');
        return started;
      });
      await new Promise((resolve) => setTimeout(resolve, 20));
      order.push('backend started');
      gate.resolve();
      const { url } = await listening;
      expect(order).toEqual(['backend started', 'listening']);
      expect(await (await fetch(url)).text()).toBe('app');
    } finally {
      await runtime.close();
    }
  });

  it('rejects with the backend’s error when it does not start, and nothing listens', async () => {
    const runtime = local(backendFailing(Number.POSITIVE_INFINITY));
    try {
      const port = await freePort();
      await expect(listenFc(ok, { ...quiet, port }, { app: {} })).rejects.toMatchObject({
        code: 'RedisUnavailable',
        message: 'Redis did not answer within 300 ms',
      });
      await expect(fetch(`http://127.0.0.1:${port}/`)).rejects.toThrow();
    } finally {
      await runtime.close();
    }
  });

  it('POST /initialize answers 500 while the backend does not start, and 200 once a later try starts it', async () => {
    vi.useFakeTimers({ toFake: ['performance'] });
    const logger = memoryLogger();
    const { url } = await start(ok, { logger }, { app: {} });
    // Made after listen() resolved: the initializer is what waits for it.
    const backend = backendFailing(1);
    const runtime = local(backend);
    try {
      const initialize = () => fetch(`${url}/initialize`, { method: 'POST' });
      const failed = await initialize();
      expect([failed.status, failed.headers.get('x-fc-status')]).toEqual([500, '404']);
      expect(logger.entries.find((e) => e.message === 'lifecycle hook failed')?.fields?.error).toMatchObject({
        code: 'RedisUnavailable',
      });
      vi.advanceTimersByTime(1000);
      expect((await initialize()).status).toBe(200);
      expect(backend.creates).toBe(2);
    } finally {
      vi.useRealTimers();
      await runtime.close();
    }
  });
});

describe('listenFc on FC: an async call answered 5xx before any fcAsync() saw it', () => {
  const onFc = { env: { FC_FUNCTION_NAME: 'f', FC_REGION: 'cn-hangzhou' } };
  const asyncCall = { 'x-fc-request-id': 'r1', 'x-fc-invocation-type': 'Async' };

  it.each([
    [
      'headers set one by one',
      (res: ServerResponse) => {
        res.statusCode = 500;
        res.setHeader('set-cookie', ['a=1', 'b=2']);
        res.end('boom');
      },
    ],
    [
      'raw headers, a flat array',
      (res: ServerResponse) => {
        res.writeHead(500, ['content-type', 'text/plain', 'set-cookie', 'a=1', 'set-cookie', 'b=2']).end('boom');
      },
    ],
    [
      'raw [name, value] pairs after an undefined reason',
      (res: ServerResponse) => {
        res
          .writeHead(500, undefined, [
            ['set-cookie', 'a=1'],
            ['set-cookie', 'b=2'],
          ] as never)
          .end('boom');
      },
    ],
    [
      'raw headers, [name, value] pairs',
      (res: ServerResponse) => {
        res
          .writeHead(500, [
            ['content-type', 'text/plain'],
            ['set-cookie', 'a=1'],
            ['set-cookie', 'b=2'],
          ] as never)
          .end('boom');
      },
    ],
  ])('is marked x-fc-status: 404, its own headers kept (%s)', async (_label, answer) => {
    const { url } = await start((_req, res) => answer(res), onFc);
    const r = await fetch(`${url}/job`, { method: 'POST', headers: asyncCall });
    expect([r.status, r.headers.get('x-fc-status'), await r.text()]).toEqual([500, '404', 'boom']);
    expect(r.headers.getSetCookie()).toEqual(['a=1', 'b=2']);
    // A sync call's caller reads the 500 itself: not marked.
    const sync = await fetch(`${url}/job`, { method: 'POST', headers: { 'x-fc-request-id': 'r2' } });
    expect([sync.status, sync.headers.get('x-fc-status')]).toEqual([500, null]);
  });

  it('leaves an x-fc-status the app set itself, in raw headers or an object, as it is', async () => {
    const { url } = await start((req, res) => {
      if (req.url === '/raw') res.writeHead(500, ['X-Fc-Status', '200']).end('mine');
      else res.writeHead(500, { 'X-FC-Status': '200' }).end('mine');
    }, onFc);
    for (const path of ['/raw', '/object']) {
      const r = await fetch(`${url}${path}`, { method: 'POST', headers: asyncCall });
      expect([r.status, r.headers.get('x-fc-status')]).toEqual([500, '200']);
    }
  });

  describe("by the detector the app's fcAsync() was given", () => {
    const env = { FC_FUNCTION_NAME: 'f', FC_REGION: 'cn-hangzhou' };
    // docs/async.md's asyncOnly: on FC, a call that says nothing (its x-fc-* headers dropped) is async.
    const asyncOnly: Detector = (headers, e) => {
      const found = detectInvocation(headers, e);
      return found.source === 'default' && e.FC_REGION ? { ...found, type: 'Async', source: 'async-only' } : found;
    };
    // An app whose calls are all sync, whatever FC's retry count says.
    const syncOnly: Detector = (headers, e) => ({ ...detectInvocation(headers, e), type: 'Sync', source: 'default' });
    /** A middleware in front of fcAsync() that throws: its framework answers 500, the runtime never sees it. */
    const failing = (_req: IncomingMessage, res: ServerResponse) => {
      res.statusCode = 500;
      res.end('auth backend down');
    };
    async function served(detect: Detector, bound: boolean) {
      const runtime = createFcRuntime({ env, logger: memoryLogger(), detect });
      const app = {};
      if (bound) runtime.bind({ app, listener: () => failing });
      const { url } = await start(failing, { env }, { app });
      const post = async (headers: Record<string, string>) => {
        const r = await fetch(`${url}/job`, { method: 'POST', headers });
        return [r.status, r.headers.get('x-fc-status')];
      };
      return { post, runtime };
    }

    it.each([
      ['bound to the app', true],
      ['not reached yet', false],
    ])('marks a call its own detector calls async, which the default calls sync (%s)', async (_label, bound) => {
      const { post, runtime } = await served(asyncOnly, bound);
      try {
        expect(await post({ 'x-fc-request-id': 'r1' })).toEqual([500, '404']);
        expect(await post({ 'x-fc-request-id': 'r2', 'x-fc-invocation-type': 'Sync' })).toEqual([500, null]);
      } finally {
        await runtime.close();
      }
    });

    it('leaves unmarked a call its own detector calls sync, which the default calls async (a retry count)', async () => {
      const { post, runtime } = await served(syncOnly, true);
      try {
        expect(await post({ 'x-fc-request-id': 'r1', 'x-fc-retry-count': '1' })).toEqual([500, null]);
      } finally {
        await runtime.close();
      }
    });
  });
});

describe('listenFc: spans of requests that end after a pre-stop', () => {
  it('go out at the shutdown that follows (FC calls pre-stop, then sends SIGTERM)', async () => {
    const exporter = new InMemorySpanExporter();
    // Exported only when flushed: what a BatchSpanProcessor holds when the process exits is lost.
    const provider = new BasicTracerProvider({
      spanProcessors: [new BatchSpanProcessor(exporter, { scheduledDelayMillis: 600_000 })],
    });
    const runtime = createFcRuntime({ env: {}, logger: memoryLogger(), tracing: { tracerProvider: provider } });
    const app = {};
    const release = deferred();
    const entered = deferred();
    const appListener = async (_req: IncomingMessage, res: ServerResponse) => {
      entered.resolve();
      await release.promise;
      res.end('slow');
    };
    const listener = (req: IncomingMessage, res: ServerResponse) =>
      runtime.handle(req, { app, listener: () => appListener }, res).then((answer) => {
        if (answer === undefined) return runtime.proceed(req, () => appListener(req, res));
        writeBridgeResponse(res, answer, req.method ?? 'GET');
      });
    const { fc, url } = await start(listener, {}, { app });
    const slow = fetch(`${url}/slow`).then((r) => r.text());
    await entered.promise;
    await fc.preStop();
    release.resolve();
    expect(await slow).toBe('slow');
    expect(exporter.getFinishedSpans()).toHaveLength(0);
    await fc.close();
    expect(exporter.getFinishedSpans().map((s) => s.name)).toEqual(['GET']);
  });
});

describe('listenFc: spans buffered at pre-stop', () => {
  it('a runtime that serves an app listenFc was not told of is flushed at pre-stop too', async () => {
    const exporter = new InMemorySpanExporter();
    // Exported only when flushed: what a BatchSpanProcessor holds when FC freezes or stops the instance is lost.
    const provider = new BasicTracerProvider({
      spanProcessors: [new BatchSpanProcessor(exporter, { scheduledDelayMillis: 600_000 })],
    });
    const runtime = createFcRuntime({ env: {}, logger: memoryLogger(), tracing: { tracerProvider: provider } });
    const listener = (req: IncomingMessage, res: ServerResponse) =>
      runtime.handle(req, { app: {}, listener: () => ok }, res).then((answer) => {
        if (answer === undefined) return runtime.proceed(req, () => ok(req, res));
        writeBridgeResponse(res, answer, req.method ?? 'GET');
      });
    // No `app` hook: listenFc's pre-stop closes no runtime of its own, only the pre-stop hooks run.
    const { fc, url } = await start(listener);
    try {
      expect(await (await fetch(`${url}/users`)).text()).toBe('app');
      expect(exporter.getFinishedSpans()).toHaveLength(0);
      await fc.preStop();
      expect(exporter.getFinishedSpans().map((s) => s.name)).toEqual(['GET']);
    } finally {
      await runtime.close();
    }
  });
});

describe('listenFc: graceful shutdown', () => {
  it('close() finishes the in-flight request, then stops listening', async () => {
    const gate = deferred();
    const started = deferred();
    const { fc, url } = await start(async (_req, res) => {
      started.resolve();
      await gate.promise;
      res.end('finished');
    });
    const inFlight = fetch(url);
    await started.promise;
    const closed = fc.close();
    gate.resolve();
    const r = await inFlight;
    expect(await r.text()).toBe('finished');
    await closed;
    expect(fc.server.listening).toBe(false);
    await expect(fetch(url)).rejects.toThrow();
  });

  /**
   * A real process serving `listener` (the source of a `(req, res)` function) through listenFc, its
   * default signals on: `line(pattern)` resolves with the first match in what it printed.
   */
  function serverProcess(listener: string) {
    const core = new URL('../src/index.ts', import.meta.url).href;
    const script = `
      import { listenFc, silentLogger } from ${JSON.stringify(core)};
      const fc = await listenFc(${listener}, { port: 0, host: '127.0.0.1', logger: silentLogger });
      console.log('port ' + fc.port);
    `;
    const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
      cwd: fileURLToPath(new URL('.', import.meta.url)),
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    let out = '';
    child.stdout.on('data', (d) => {
      out += d;
    });
    const line = async (pattern: RegExp) => {
      await expect.poll(() => out.match(pattern), { timeout: 15_000 }).toBeTruthy();
      return out.match(pattern) as RegExpMatchArray;
    };
    return { child, exited, line };
  }

  it('on SIGTERM a real process finishes its in-flight request and exits 0', async () => {
    // Answers only once the process got SIGTERM: the request is in flight while the shutdown runs.
    const { child, exited, line } = serverProcess(`async (req, res) => {
      const sigterm = new Promise((r) => process.once('SIGTERM', r));
      console.log('started');
      await sigterm;
      res.end('finished');
    }`);
    const port = (await line(/port (\d+)/))[1];
    const response = fetch(`http://127.0.0.1:${port}/`).then((r) => r.text());
    await line(/started/);
    child.kill('SIGTERM');
    expect(await response).toBe('finished');
    expect(await exited).toBe(0);
  });

  it('takes a signal told twice at once (a Ctrl-C under tsx or npm) as one: the shutdown still finishes', async () => {
    // Still working when the signal comes again.
    const { child, exited, line } = serverProcess(`async (req, res) => {
      const sigint = new Promise((r) => process.once('SIGINT', r));
      console.log('started');
      await sigint;
      await new Promise((r) => setTimeout(r, 300));
      res.end('finished');
    }`);
    const port = (await line(/port (\d+)/))[1];
    const response = fetch(`http://127.0.0.1:${port}/`).then((r) => r.text());
    await line(/started/);
    child.kill('SIGINT');
    setTimeout(() => child.kill('SIGINT'), 20);
    expect(await response).toBe('finished');
    expect(await exited).toBe(0);
  });
});
