import { spawn } from 'node:child_process';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { connect } from 'node:net';
import { fileURLToPath } from 'node:url';
import { BasicTracerProvider, BatchSpanProcessor, InMemorySpanExporter } from '@opentelemetry/sdk-trace-base';
import { afterEach, describe, expect, it } from 'vitest';
import {
  addPreStopHook,
  createFcRuntime,
  type FcServer,
  getInvocation,
  listenFc,
  writeBridgeResponse,
} from '../src/index.js';
import { resolveListenOptions } from '../src/runtime/options.js';
import { deferred, memoryLogger } from './helpers.js';

// Behaviour of the custom runtime (listen(app) in every adapter) that the nineteenth session's
// mutation audit of the adapters found no test holding.

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

describe('listen() options: the documented defaults', () => {
  it('budgets 10 s for GET /pre-stop and 30 s for a graceful shutdown, on SIGTERM and SIGINT, on 0.0.0.0:9000', () => {
    expect(resolveListenOptions({}, {})).toMatchObject({
      port: 9000,
      host: '0.0.0.0',
      preStopTimeoutMs: 10_000,
      shutdownTimeoutMs: 30_000,
      signals: ['SIGTERM', 'SIGINT'],
    });
  });

  it.each(['FC_CUSTOM_LISTEN_PORT', 'FC_SERVER_PORT'])('refuses a port past 65535 in %s with a clear error', (name) => {
    expect(() => resolveListenOptions({}, { [name]: '70000' })).toThrow(
      `Expected \`${name}\` to be a port number from 0 to 65535, got \`70000\``,
    );
  });
});

describe('listenFc: connections of long invocations', () => {
  it('turns TCP keep-alive on for its connections (an async invocation may keep one quiet for hours)', async () => {
    const { fc, url } = await start((_req, res) => res.end('ok'));
    expect(await (await fetch(url)).text()).toBe('ok');
    // Node's `keepAlive` server option: SO_KEEPALIVE on each accepted socket, which JS cannot read back.
    expect((fc.server as unknown as { keepAlive?: unknown }).keepAlive).toBe(true);
  });
});

describe('listenFc on FC: a 5xx of an async call the app’s fcAsync() ran', () => {
  const env = { FC_FUNCTION_NAME: 'f', FC_REGION: 'cn-hangzhou' };

  it('is marked by the middleware’s own isFailure: a 503 it counts a success goes out without x-fc-status', async () => {
    // An app whose 503 is a planned answer ("come back later"), not a failure FC should retry.
    const runtime = createFcRuntime({
      env,
      logger: memoryLogger(),
      async: { isFailure: (r) => r.statusCode >= 500 && r.statusCode !== 503 },
    });
    const app = {};
    const appListener = (req: IncomingMessage, res: ServerResponse) => {
      res.statusCode = req.url === '/busy' ? 503 : 500;
      res.end('no');
    };
    const listener = async (req: IncomingMessage, res: ServerResponse) => {
      const answer = await runtime.handle(req, { app, listener: () => appListener }, res);
      if (answer) writeBridgeResponse(res, answer, req.method ?? 'GET');
      else runtime.proceed(req, () => appListener(req, res));
    };
    const { url } = await start(listener, { env }, { app });
    try {
      const post = async (path: string) => {
        const r = await fetch(`${url}${path}`, {
          method: 'POST',
          headers: { 'x-fc-request-id': `r${path}`, 'x-fc-invocation-type': 'Async' },
        });
        return [r.status, r.headers.get('x-fc-status')];
      };
      expect(await post('/busy')).toEqual([503, null]);
      expect(await post('/broken')).toEqual([500, '404']);
    } finally {
      await runtime.close();
    }
  });
});

describe('listenFc: GET /pre-freeze (FC 2.0)', () => {
  it('runs options.onPreStop with the pre-stop hooks (docs/deploy.md), and answers 200', async () => {
    let ran = 0;
    const { url } = await start((_req, res) => res.end('app'), { onPreStop: () => void ran++ });
    const r = await fetch(`${url}/pre-freeze`);
    expect([r.status, await r.text(), ran]).toEqual([200, '', 1]);
  });
});

describe('listenFc on FC: a shutdown past its budget', () => {
  it('aborts the signal of an async invocation still running with ShuttingDown, so its clean-up runs', async () => {
    const env = { FC_FUNCTION_NAME: 'f', FC_REGION: 'cn-hangzhou' };
    const runtime = createFcRuntime({ env, logger: memoryLogger() });
    const app = {};
    const started = deferred();
    const reasons: unknown[] = [];
    // A transcode that runs until it is told to stop.
    const appListener = (req: IncomingMessage, res: ServerResponse) => {
      const signal = getInvocation(req)?.signal;
      signal?.addEventListener('abort', () => {
        reasons.push((signal.reason as { code?: unknown }).code);
        res.statusCode = 500;
        res.end('stopped');
      });
      started.resolve();
    };
    const listener = async (req: IncomingMessage, res: ServerResponse) => {
      const answer = await runtime.handle(req, { app, listener: () => appListener }, res);
      if (answer) writeBridgeResponse(res, answer, req.method ?? 'GET');
      else runtime.proceed(req, () => appListener(req, res));
    };
    const { fc, url } = await start(listener, { env, shutdownTimeoutMs: 300, preStopTimeoutMs: 300 }, { app });
    const call = fetch(`${url}/transcode`, {
      method: 'POST',
      headers: { 'x-fc-request-id': 'r1', 'x-fc-invocation-type': 'Async' },
    }).then(
      (r) => r.text(),
      () => 'cut',
    );
    await started.promise;
    await fc.close();
    await call;
    expect(reasons).toEqual(['ShuttingDown']);
  });
});

describe('listenFc: SIGTERM in a real process', () => {
  it('exits 1 when an in-flight request had to be cut at the end of the shutdown budget (docs/deploy.md)', async () => {
    const core = new URL('../src/index.ts', import.meta.url).href;
    // A request that never answers, and a shutdown budget of 300 ms.
    const script = `
      import { listenFc, silentLogger } from ${JSON.stringify(core)};
      const fc = await listenFc(() => console.log('started'), {
        port: 0, host: '127.0.0.1', logger: silentLogger, shutdownTimeoutMs: 300, preStopTimeoutMs: 300,
      });
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
    await expect.poll(() => /port (\d+)/.test(out), { timeout: 15_000 }).toBe(true);
    const port = (out.match(/port (\d+)/) as RegExpMatchArray)[1];
    const response = fetch(`http://127.0.0.1:${port}/`).then(
      (r) => r.status,
      () => 'cut',
    );
    await expect.poll(() => out.includes('started'), { timeout: 15_000 }).toBe(true);
    child.kill('SIGTERM');
    expect(await exited).toBe(1);
    expect(await response).toBe('cut');
  });
});

describe('listenFc: close()', () => {
  it('takes its signal handlers out of the process once the shutdown is over', async () => {
    const before = process.listenerCount('SIGUSR2');
    const { fc } = await start((_req, res) => res.end('ok'), { signals: ['SIGUSR2'] });
    expect(process.listenerCount('SIGUSR2')).toBe(before + 1);
    await fc.close();
    // Left behind, a later SIGUSR2 would still exit the process, and each listen() would add one more.
    expect(process.listenerCount('SIGUSR2')).toBe(before);
  });
});

describe('listenFc: a request that comes on a kept-alive connection once the shutdown began', () => {
  it('is answered with connection: close, so that the gateway does not send another on it', async () => {
    const gate = deferred();
    const seen: string[] = [];
    const { fc } = await start(async (req: IncomingMessage, res: ServerResponse) => {
      seen.push(req.url ?? '');
      if (req.url === '/stream') {
        res.write('a'); // headers out before the shutdown: too late to ask this one to close
        await gate.promise;
      }
      res.end('b');
    });
    const socket = connect(fc.port, '127.0.0.1');
    let received = '';
    socket.on('data', (d) => {
      received += d;
    });
    const ended = new Promise((resolve) => socket.on('close', resolve));
    socket.write('GET /stream HTTP/1.1\r\nHost: x\r\n\r\n');
    await expect.poll(() => received.includes('HTTP/1.1 200')).toBe(true);
    const closing = fc.close();
    socket.write('GET /next HTTP/1.1\r\nHost: x\r\n\r\n');
    // The second request reached the app (its answer is queued behind the first): then let the first end.
    await expect.poll(() => seen).toEqual(['/stream', '/next']);
    gate.resolve();
    await ended;
    await closing;
    const second = received.slice(received.lastIndexOf('HTTP/1.1 200'));
    expect(received.split('HTTP/1.1 200')).toHaveLength(3);
    expect(second.toLowerCase()).toContain('connection: close');
  });
});

describe('writeBridgeResponse: HEAD', () => {
  it('keeps the Content-Length the app declared for the body a GET would get', async () => {
    const { url } = await start((req: IncomingMessage, res: ServerResponse) =>
      writeBridgeResponse(res, { statusCode: 200, headers: { 'content-length': '42' }, body: '' }, req.method ?? 'GET'),
    );
    const r = await fetch(url, { method: 'HEAD' });
    expect([r.status, r.headers.get('content-length')]).toEqual([200, '42']);
  });
});

describe('listenFc: GET /pre-stop with a hook that throws', () => {
  it('logs the failure, still runs the other hooks, and answers 200', async () => {
    const logger = memoryLogger();
    let flushed = 0;
    const off = addPreStopHook(() => void flushed++);
    try {
      const { url } = await start((_req, res) => res.end('app'), {
        logger,
        onPreStop: () => {
          throw new Error('exporter down');
        },
      });
      expect((await fetch(`${url}/pre-stop`)).status).toBe(200);
      expect(flushed).toBe(1);
      const failed = logger.entries.find((e) => e.message === 'pre-stop hook failed');
      expect((failed?.fields?.error as Error | undefined)?.message).toBe('exporter down');
    } finally {
      off();
    }
  });
});

describe('createFcRuntime on FC: the body of an async invocation', () => {
  it("reads up to FC's raised quota of 256 KiB, past the 128 KiB default of local mode", async () => {
    const env = { FC_FUNCTION_NAME: 'f', FC_REGION: 'cn-hangzhou' };
    const runtime = createFcRuntime({ env, logger: memoryLogger() });
    const app = {};
    const appListener = (req: IncomingMessage, res: ServerResponse) => {
      let size = 0;
      req.on('data', (d: Buffer) => {
        size += d.length;
      });
      req.on('end', () => res.end(String(size)));
    };
    const listener = async (req: IncomingMessage, res: ServerResponse) => {
      const answer = await runtime.handle(req, { app, listener: () => appListener }, res);
      if (answer) writeBridgeResponse(res, answer, req.method ?? 'GET');
      else runtime.proceed(req, () => appListener(req, res));
    };
    const { url } = await start(listener, { env }, { app });
    try {
      const post = async (bytes: number) => {
        const r = await fetch(`${url}/transcode`, {
          method: 'POST',
          headers: { 'x-fc-request-id': `r${bytes}`, 'x-fc-invocation-type': 'Async' },
          body: 'x'.repeat(bytes),
        });
        return [r.status, r.headers.get('x-fc-status'), await r.text()];
      };
      expect(await post(200 * 1024)).toEqual([200, null, String(200 * 1024)]);
      // Past FC's own limit: refused, and reported failed so that FC does not count it a success.
      const [status, fcStatus] = await post(256 * 1024 + 1);
      expect([status, fcStatus]).toEqual([400, '404']);
    } finally {
      await runtime.close();
    }
  });
});

describe('createFcRuntime on FC: an async invocation that ends', () => {
  const env = { FC_FUNCTION_NAME: 'f', FC_REGION: 'cn-hangzhou' };

  function serve(
    runtime: ReturnType<typeof createFcRuntime>,
    appListener: (req: IncomingMessage, res: ServerResponse) => void,
  ) {
    const app = {};
    return start(
      async (req: IncomingMessage, res: ServerResponse) => {
        const answer = await runtime.handle(req, { app, listener: () => appListener }, res);
        if (answer) writeBridgeResponse(res, answer, req.method ?? 'GET');
        else runtime.proceed(req, () => appListener(req, res));
        res.once('close', () => closed.push(req.url ?? ''));
      },
      { env },
      { app },
    );
  }
  const closed: string[] = [];
  const asyncCall = { method: 'POST', headers: { 'x-fc-request-id': 'r-end', 'x-fc-invocation-type': 'Async' } };

  it('has its spans exported before FC gets the answer (FC may freeze the instance right after)', async () => {
    const exporter = new InMemorySpanExporter();
    // Batched: nothing is exported for seconds unless someone flushes.
    const provider = new BasicTracerProvider({ spanProcessors: [new BatchSpanProcessor(exporter)] });
    const runtime = createFcRuntime({ env, logger: memoryLogger(), tracing: { tracerProvider: provider } });
    try {
      const { url } = await serve(runtime, (_req, res) => res.end('done'));
      const r = await fetch(`${url}/jobs`, asyncCall);
      expect(r.status).toBe(200);
      expect(exporter.getFinishedSpans().length).toBeGreaterThan(0);
    } finally {
      await runtime.close();
      await provider.shutdown();
    }
  });

  it('leaves its signal unaborted once the answer went out whole (only a stop or FC’s timeout aborts it)', async () => {
    const runtime = createFcRuntime({ env, logger: memoryLogger() });
    let signal: AbortSignal | undefined;
    try {
      const { url } = await serve(runtime, (req, res) => {
        signal = getInvocation(req)?.signal;
        res.end('done');
      });
      const r = await fetch(`${url}/clean`, asyncCall);
      expect([r.status, await r.text()]).toEqual([200, 'done']);
      await expect.poll(() => closed.includes('/clean')).toBe(true);
      expect(signal?.aborted).toBe(false);
    } finally {
      await runtime.close();
    }
  });
});
