import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { createServer, type IncomingHttpHeaders, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  type AsyncBackend,
  createFcHandler,
  type Destination,
  DestinationError,
  type DestinationRecord,
  deliverRecord,
  fcFunctionDestination,
  getInvocation,
  httpDestination,
  jsonlDestination,
  MemoryTaskStore,
  PQueueDriver,
  verifyDestinationSignature,
} from '../src/index.js';
import { asyncEvent, context, deferred, event, type Listener, memoryLogger, tick, until } from './helpers.js';

// Faults around destinations: receivers that misbehave, files that cannot be written, a handler
// closed while deliveries are in flight. Loopback only; every wait is bounded.

interface Received {
  url: string;
  headers: IncomingHttpHeaders;
  raw: Buffer;
}

const servers: (() => Promise<void>)[] = [];

/** A loopback receiver; `respond` answers each request once its body is in. */
async function receiver(respond: (req: Received, res: ServerResponse, index: number) => void) {
  const requests: Received[] = [];
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const received = { url: req.url ?? '', headers: req.headers, raw: Buffer.concat(chunks) };
      requests.push(received);
      respond(received, res, requests.length - 1);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  servers.push(
    () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  );
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, requests };
}

afterEach(async () => {
  await Promise.all(servers.splice(0).map((close) => close()));
});

function record(requestId = '1-64f6d6e7-e01edb1cce58240ed59b59d9'): DestinationRecord {
  return {
    timestamp: 1660120276975,
    requestContext: {
      requestId,
      functionArn: 'acs:fc:cn-hangzhou:123:functions/f',
      condition: '',
      approximateInvokeCount: 1,
    },
    requestPayload: '{"method":"POST"}',
    responseContext: { statusCode: 200, functionError: '' },
    responsePayload: 'done',
  };
}

/** Delivery options with no real waits between retries. */
const instant = () => ({ logger: memoryLogger(), sleep: async () => {}, random: () => 0 });

const ok: Listener = (_req, res) => {
  res.end('ok');
};

describe('httpDestination against misbehaving receivers', () => {
  it('cancels a huge or endless 2xx body instead of reading it, and counts the delivery', async () => {
    const hook = await receiver((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/octet-stream' });
      const chunk = Buffer.alloc(64 * 1024, 120);
      const timer = setInterval(() => res.write(chunk), 1);
      res.on('close', () => clearInterval(timer));
    });
    const result = await deliverRecord(httpDestination(hook.url, { timeoutMs: 5000 }), record(), instant());
    expect(result).toMatchObject({ status: 'Succeeded', attempts: 1 });
  });

  it.each([
    [307, false, 1],
    [410, false, 1],
    [429, true, 3],
    [503, true, 3],
  ])('HTTP %i: retryable %s, %i attempts with retries: 2', async (status, retryable, attempts) => {
    const hook = await receiver((_req, res) => {
      res.writeHead(status, status === 307 ? { location: '/elsewhere' } : {});
      res.end('x'.repeat(100_000));
    });
    const result = await deliverRecord(httpDestination(hook.url, { retries: 2 }), record(), instant());
    expect(result).toMatchObject({ status: 'Failed', attempts });
    expect(result.errors[0]).toContain(`HTTP ${status} from ${hook.url}`);
    expect(hook.requests).toHaveLength(attempts);
    await expect(httpDestination(hook.url)(record())).rejects.toMatchObject({ retryable, status });
  });

  it('retries a connection reset before the answer as a network error', async () => {
    const hook = await receiver((req, res, index) => {
      if (index === 0) {
        res.socket?.destroy();
        return;
      }
      res.statusCode = 204;
      res.end();
      void req;
    });
    const result = await deliverRecord(httpDestination(hook.url), record(), instant());
    expect(result).toMatchObject({ status: 'Succeeded', attempts: 2 });
  });

  it('signs non-ASCII records so that the documented helper verifies the raw bytes', async () => {
    const hook = await receiver((_req, res) => res.end());
    const r = record();
    r.responsePayload = 'ünïcødé 表 😀 \u2028 line\nbreak';
    await httpDestination(hook.url, { secret: 'sécret-✓' })(r);
    const got = hook.requests[0] as Received;
    expect(verifyDestinationSignature(got.raw, got.headers['fc-async-signature'], 'sécret-✓')).toBe(true);
    expect(JSON.parse(got.raw.toString('utf8'))).toEqual(r);
  });
});

describe('fcFunctionDestination against an FC endpoint that never answers', () => {
  it('fails the call past timeoutMs as a retryable DestinationTimeout', async () => {
    const silent = await receiver(() => {
      // never answers
    });
    const destination = fcFunctionDestination(
      'dest-fail',
      { accessKeyId: 'ak', accessKeySecret: 'sk-sentinel', endpoint: silent.url },
      { timeoutMs: 200 },
    );
    const error = await Promise.resolve(destination(record())).catch((e: unknown) => e);
    expect(error).toMatchObject({ code: 'DestinationTimeout', retryable: true });
    expect((error as Error).message).toMatch(/^InvokeFunction fc:dest-fail failed: ReadTimeout\(200\)/);
    expect((error as Error).message).not.toContain('sk-sentinel');
    expect(silent.requests).toHaveLength(1);
  });
});

describe('httpDestination refuses, when made, what fetch would refuse at every delivery', () => {
  it.each(['content-length', 'Transfer-Encoding', 'keep-alive', 'upgrade', 'expect', 'connection'])(
    'a `%s` header',
    (name) => {
      expect(() => httpDestination('http://127.0.0.1:8080/', { headers: { [name]: '1' } })).toThrow(
        new TypeError(
          `Expected \`headers\` not to set \`${name}\`: fetch sets the connection and body framing headers itself`,
        ),
      );
    },
  );

  it.each([0, 6000, 6666, 10080])('port %i', (port) => {
    expect(() => httpDestination(`http://127.0.0.1:${port}/hook`)).toThrow(
      new TypeError(`Expected \`url\` to use a port fetch allows, got \`${port}\``),
    );
  });

  it('still accepts ordinary ports and headers', () => {
    expect(() =>
      httpDestination('https://hooks.example.com:8443/x', { headers: { authorization: 'Bearer t', host: 'a' } }),
    ).not.toThrow();
  });
});

describe('jsonlDestination faults', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'fc-async-jsonl-faults-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('keeps a record holding newlines, U+2028 and U+2029 on one line of the file', async () => {
    const file = join(dir, 'separators.jsonl');
    const r = record();
    r.responsePayload = 'a\nb\r\nc\u2028d\u2029e\u0085f';
    await jsonlDestination(file)(r);
    await jsonlDestination(file)(record('second'));
    const text = await readFile(file, 'utf8');
    // Readers that split on every Unicode line break (editors, Python's splitlines) see two lines.
    expect(text.split(/\r\n|[\n\r\u2028\u2029\u0085]/)).toHaveLength(3);
    expect(JSON.parse(text.split('\n')[0] as string)).toEqual(r);
  });

  it('reports a path that is a folder as a failed delivery, never an unhandled rejection', async () => {
    const unhandled: unknown[] = [];
    const onUnhandled = (reason: unknown) => unhandled.push(reason);
    process.on('unhandledRejection', onUnhandled);
    try {
      const destinations = [jsonlDestination(dir, { retries: 1 }), jsonlDestination(dir, { retries: 1 })];
      const result = await deliverRecord(destinations, record(), instant());
      expect(result).toMatchObject({ status: 'Failed', attempts: 4 });
      expect(result.errors.join(' ')).toContain('EISDIR');
      await tick(20);
    } finally {
      process.off('unhandledRejection', onUnhandled);
    }
    expect(unhandled).toEqual([]);
  });
});

describe('handler.close() while deliveries are in flight', () => {
  function setup(destination: Destination) {
    const logger = memoryLogger();
    const handler = createFcHandler(ok, {
      logger,
      env: {},
      async: { mode: 'local', stopGraceMs: 20 },
      destinations: { onSuccess: destination },
    });
    return { handler, logger };
  }

  it('ends a delivery that never settles by the deadline, records it Failed, and calls nothing after', async () => {
    let calls = 0;
    let aborted = false;
    const { handler, logger } = setup((_record, ctx) => {
      calls++;
      ctx?.signal.addEventListener('abort', () => {
        aborted = true;
      });
      return new Promise(() => {});
    });
    await handler(asyncEvent({ taskId: 'hung' }), context);
    await until('the destination call', () => calls > 0);
    expect(calls).toBe(1);
    const closing = handler.close({ timeoutMs: 30 });
    const ended = await Promise.race([closing.then(() => 'closed'), tick(3000).then(() => 'still open')]);
    expect(ended).toBe('closed');
    expect(aborted).toBe(true);
    const task = await handler.tasks.get('hung');
    expect(task?.status).toBe('Succeeded');
    expect(task?.destinationStatus).toBe('Failed');
    // Ended by the shutdown, not by the destination: a warning, not an error.
    expect(
      logger.entries.some(
        (e) =>
          e.level === 'warn' &&
          e.message === 'fc-async: destination delivery cut short by shutdown' &&
          e.fields?.code === 'DestinationAborted',
      ),
    ).toBe(true);
    expect(logger.entries.filter((e) => e.level === 'error')).toEqual([]);
    await tick(50);
    expect(calls).toBe(1);
  });

  it('stops retrying a failing destination once closed: no call after close() resolves', async () => {
    let calls = 0;
    const { handler } = setup(() => {
      calls++;
      throw new Error('receiver down');
    });
    await handler(asyncEvent({ taskId: 'down' }), context);
    await until('the first destination call', () => calls > 0);
    await handler.close({ timeoutMs: 30 });
    const after = calls;
    const task = await handler.tasks.get('down');
    expect(task?.status).toBe('Succeeded');
    expect(task?.destinationStatus).toBe('Failed');
    await tick(1500); // past the first backoff waits (500 ms, then 1 s caps)
    expect(calls).toBe(after);
  });
});

describe('several destinations for one side, one failing', () => {
  it('still delivers to the others, records Failed, and keeps the task status', async () => {
    const delivered: DestinationRecord[] = [];
    const handler = createFcHandler(
      () => {
        throw new Error('boom');
      },
      {
        logger: memoryLogger(),
        env: {},
        async: { mode: 'local', maxAsyncRetryAttempts: 0 },
        destinations: {
          onFailure: [
            () => {
              throw new DestinationError('DestinationHttpError', 'HTTP 400 from x', { retryable: false, status: 400 });
            },
            (r) => void delivered.push(r),
          ],
        },
      },
    );
    await handler(asyncEvent({ taskId: 'mixed' }), context);
    await handler.drain();
    const task = await handler.tasks.get('mixed');
    expect(task).toMatchObject({ status: 'Failed', destinationStatus: 'Failed' });
    expect(delivered.map((r) => r.requestContext.condition)).toEqual(['UnhandledInvocationError']);
    await handler.close();
  });
});

/** A memory store that outlives its handler, as a file or Redis does: a second handler finds what the first left. */
function durableMemory() {
  const store = new MemoryTaskStore();
  const durable: AsyncBackend = {
    name: 'durable-memory',
    persistent: true,
    create: () => ({ store, queue: new PQueueDriver(2) }),
  };
  return { store, durable };
}

describe('handler.close() with a persistent backend while a delivery hangs', () => {
  it('closes by the deadline and leaves the delivery to the next start, which makes it', async () => {
    const { store, durable } = durableMemory();
    let hungCalls = 0;
    const first = createFcHandler(ok, {
      logger: memoryLogger(),
      env: {},
      async: { mode: 'local', backend: durable, stopGraceMs: 20 },
      destinations: {
        onSuccess: () => {
          hungCalls++;
          return new Promise(() => {});
        },
      },
    });
    await first(asyncEvent({ taskId: 'durable' }), context);
    await until('the destination call', () => hungCalls > 0);
    const ended = await Promise.race([
      first.close({ timeoutMs: 30 }).then(() => 'closed'),
      tick(3000).then(() => 'still open'),
    ]);
    expect(ended).toBe('closed');
    expect(store.get('durable')).toMatchObject({ status: 'Succeeded', deliveryPending: true });
    expect(store.get('durable')?.destinationStatus).toBeUndefined();

    const delivered: DestinationRecord[] = [];
    const second = createFcHandler(ok, {
      env: {},
      async: { mode: 'local', backend: durable },
      destinations: { onSuccess: (r) => void delivered.push(r) },
    });
    await second.tasks.get('durable');
    await second.drain();
    expect(delivered.map((r) => r.requestContext.condition)).toEqual(['']);
    expect((await second.tasks.get('durable'))?.destinationStatus).toBe('Succeeded');
    await second.close();
    expect(hungCalls).toBe(1);
  });
});

describe('a record sent again by the next start, its first delivery cut by a crash or a shutdown', () => {
  it("keeps the attempt's HTTP status and the function's own error type, as the first record had them", async () => {
    const { durable } = durableMemory();
    const first: DestinationRecord[] = [];
    const app = (req: IncomingMessage, res: ServerResponse) => {
      res.statusCode = req.url === '/fail' ? 500 : 201;
      res.setHeader('content-type', 'application/json');
      res.end(req.url === '/fail' ? '{"errorMessage":"disk full","errorType":"DiskFull"}' : '{"ok":true}');
    };
    const hang = (record: DestinationRecord) => {
      first.push(record);
      return new Promise<void>(() => {});
    };
    const one = createFcHandler(app, {
      logger: memoryLogger(),
      env: {},
      async: { mode: 'local', backend: durable, stopGraceMs: 20, maxAsyncRetryAttempts: 0 },
      destinations: { onSuccess: hang, onFailure: hang },
    });
    await one(asyncEvent({ taskId: 'ok_again', path: '/ok' }), context);
    await one(asyncEvent({ taskId: 'fail_again', path: '/fail' }), context);
    await until('both destination calls', () => first.length === 2);
    await one.close({ timeoutMs: 30 });

    const again: DestinationRecord[] = [];
    const two = createFcHandler(app, {
      logger: memoryLogger(),
      env: {},
      async: { mode: 'local', backend: durable },
      destinations: { onSuccess: (r) => void again.push(r), onFailure: (r) => void again.push(r) },
    });
    await two.tasks.get('ok_again');
    await two.drain();
    const shape = (r: DestinationRecord) => [
      r.requestContext.condition,
      r.responseContext.statusCode,
      r.responsePayload,
    ];
    const byCondition = (a: DestinationRecord, b: DestinationRecord) =>
      a.requestContext.condition.localeCompare(b.requestContext.condition);
    expect(again.sort(byCondition).map(shape)).toEqual(first.sort(byCondition).map(shape));
    expect(again.map(shape)).toEqual([
      ['', 201, '{"ok":true}'],
      ['UnhandledInvocationError', 500, '{"errorMessage":"disk full","errorType":"DiskFull"}'],
    ]);
    await two.close();
  });
});

describe('a record sent again by the next start, of an answer over 1 MiB', () => {
  it("carries the task's returnPayload, the answer's first 1 MiB, under the same request id (docs/destinations.md)", async () => {
    const { durable } = durableMemory();
    const big = 'x'.repeat(3 * 1024 * 1024);
    const app = (_req: IncomingMessage, res: ServerResponse) => {
      res.setHeader('content-type', 'text/plain');
      res.end(big);
    };
    const first: DestinationRecord[] = [];
    const one = createFcHandler(app, {
      logger: memoryLogger(),
      env: {},
      async: { mode: 'local', backend: durable, stopGraceMs: 20 },
      destinations: {
        onSuccess: (record: DestinationRecord) => {
          first.push(record);
          return new Promise<void>(() => {});
        },
      },
    });
    await one(asyncEvent({ taskId: 'big_again' }), context);
    await until('the first delivery', () => first.length === 1);
    await one.close({ timeoutMs: 30 });

    const again: DestinationRecord[] = [];
    const two = createFcHandler(app, {
      logger: memoryLogger(),
      env: {},
      async: { mode: 'local', backend: durable },
      destinations: { onSuccess: (r) => void again.push(r) },
    });
    await two.tasks.get('big_again');
    await two.drain();
    await two.close();
    // The first record held the whole answer; the copy holds what the task record kept of it.
    expect(first.map((r) => r.responsePayload.length)).toEqual([big.length]);
    expect(again.map((r) => [r.requestContext.requestId, r.responsePayload])).toEqual([
      [first[0]?.requestContext.requestId, big.slice(0, 1024 * 1024)],
    ]);
  });
});

describe('handler.close() with a persistent backend while a stopped task ends', () => {
  it('lets the onFailure delivery its end starts finish, so that the next start does not make it again', async () => {
    const { store, durable } = durableMemory();
    const started = deferred();
    const calls: DestinationRecord[] = [];
    // The app ignores its abort and answers 100 ms later; the destination takes 50 ms.
    const first = createFcHandler(
      (_req, res) => {
        started.resolve();
        setTimeout(() => res.end('late'), 100);
      },
      {
        logger: memoryLogger(),
        env: {},
        async: { mode: 'local', backend: durable, stopGraceMs: 2000 },
        destinations: { onFailure: (r) => tick(50).then(() => void calls.push(r)) },
      },
    );
    await first(asyncEvent({ taskId: 'stopped-at-close' }), context);
    await started.promise;
    await first.tasks.stop('stopped-at-close');
    await first.close({ timeoutMs: 10 });
    expect(calls.map((r) => r.requestContext.condition)).toEqual(['Stopped']);
    expect(store.get('stopped-at-close')).toMatchObject({ status: 'Stopped', destinationStatus: 'Succeeded' });

    const second = createFcHandler(ok, {
      env: {},
      async: { mode: 'local', backend: durable },
      destinations: { onFailure: (r) => void calls.push(r) },
    });
    await second.tasks.get('stopped-at-close');
    await second.drain();
    await second.close();
    expect(calls).toHaveLength(1);
  });

  it('lets the onFailure delivery of a waiting task stopped just before close() finish too (it runs outside any job)', async () => {
    const { durable } = durableMemory();
    const calls: string[] = [];
    const first = createFcHandler(ok, {
      logger: memoryLogger(),
      env: {},
      async: { mode: 'local', backend: durable, stopGraceMs: 300 },
      destinations: {
        onFailure: async (r) => {
          calls.push(`first:${r.requestContext.condition}`);
          await tick(800);
        },
      },
    });
    await first(asyncEvent({ taskId: 'waiting', delay: '60' }), context);
    await first.tasks.stop('waiting');
    await tick(5);
    await first.close({ timeoutMs: 50 });
    const second = createFcHandler(ok, {
      env: {},
      async: { mode: 'local', backend: durable },
      destinations: { onFailure: (r) => void calls.push(`again:${r.requestContext.condition}`) },
    });
    await second.tasks.get('waiting');
    await second.drain();
    await second.close();
    expect(calls).toEqual(['first:Stopped']);
  });

  it('lets a delivery already under way at the deadline finish too, past a short stopGraceMs', async () => {
    const { durable } = durableMemory();
    const started = deferred();
    const calls: string[] = [];
    // The app ends at once on its stop, so that its onFailure call (800 ms) starts before close().
    const first = createFcHandler(
      (req, res) => {
        started.resolve();
        getInvocation(req)?.signal.addEventListener('abort', () => res.end('aborted'));
      },
      {
        logger: memoryLogger(),
        env: {},
        async: { mode: 'local', backend: durable, stopGraceMs: 300 },
        destinations: { onFailure: (r) => tick(800).then(() => void calls.push(r.requestContext.condition)) },
      },
    );
    await first(asyncEvent({ taskId: 'delivering-at-close' }), context);
    await started.promise;
    await first.tasks.stop('delivering-at-close');
    await tick(5);
    await first.close({ timeoutMs: 50 });
    expect(calls).toEqual(['Stopped']);

    const second = createFcHandler(ok, {
      env: {},
      async: { mode: 'local', backend: durable },
      destinations: { onFailure: (r) => void calls.push(`again:${r.requestContext.condition}`) },
    });
    await second.tasks.get('delivering-at-close');
    await second.drain();
    await second.close();
    expect(calls).toEqual(['Stopped']);
  });
});

describe("the abort signal's reason", () => {
  it('tells a stop (Stopped) from a graceful shutdown of a durable store (ShuttingDown), which runs the task again', async () => {
    const durable: AsyncBackend = {
      name: 'durable-memory',
      persistent: true,
      create: () => ({ store: new MemoryTaskStore(), queue: new PQueueDriver(2) }),
    };
    const reasons = new Map<string, unknown>();
    const running = new Set<string>();
    const handler = createFcHandler(
      (req, res) => {
        const invocation = getInvocation(req);
        running.add(invocation?.taskId ?? '');
        invocation?.signal.addEventListener('abort', () => {
          reasons.set(invocation.taskId ?? '', (invocation.signal.reason as { code?: unknown }).code);
          res.end('aborted');
        });
      },
      { logger: memoryLogger(), env: {}, async: { mode: 'local', backend: durable, stopGraceMs: 20 } },
    );
    await handler(asyncEvent({ taskId: 'user_stop' }), context);
    await handler(asyncEvent({ taskId: 'cut_by_close' }), context);
    await until('both attempts to run', () => running.size === 2);
    await handler.tasks.stop('user_stop');
    await handler.close({ timeoutMs: 10 });
    expect(Object.fromEntries(reasons)).toEqual({ user_stop: 'Stopped', cut_by_close: 'ShuttingDown' });
  });
});

describe('secrets never reach a destination record', () => {
  const secrets = {
    Authorization: 'Bearer sentinel-authz',
    'Proxy-Authorization': 'Basic sentinel-proxy',
    Cookie: 'sid=sentinel-cookie',
    'X-Fc-Access-Key-Id': 'sentinel-akid',
    'X-Fc-Access-Key-Secret': 'sentinel-aksecret',
    'X-Fc-Security-Token': 'sentinel-sts',
  };

  it('local mode, posted through httpDestination', async () => {
    const hook = await receiver((_req, res) => res.end());
    const handler = createFcHandler(ok, {
      env: {},
      async: { mode: 'local' },
      destinations: { onSuccess: httpDestination(hook.url) },
    });
    await handler(asyncEvent({ taskId: 'secrets', headers: { ...secrets, 'X-Kept': 'kept' } }), context);
    await handler.drain();
    await handler.close();
    const body = (hook.requests[0] as Received).raw.toString('utf8');
    expect(body).toContain('x-kept');
    expect(body).not.toMatch(/sentinel/);
  });

  it('platform mode, posted through httpDestination', async () => {
    const hook = await receiver((_req, res) => res.end());
    const handler = createFcHandler(ok, {
      env: { FC_FUNCTION_NAME: 'f', FC_REGION: 'cn-hangzhou' },
      async: { mode: 'platform' },
      destinations: { onSuccess: httpDestination(hook.url) },
    });
    const e = event({ headers: { ...secrets, 'X-Fc-Invocation-Type': 'Async', 'X-Kept': 'kept' } });
    await handler(e, context);
    const body = (hook.requests[0] as Received).raw.toString('utf8');
    expect(body).toContain('x-kept');
    expect(body).not.toMatch(/sentinel/);
  });
});
