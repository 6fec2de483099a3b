import {
  createServer,
  request as httpRequest,
  type IncomingMessage,
  type Server,
  type ServerResponse,
} from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import {
  createFcRuntime,
  type DestinationRecord,
  type FcRuntimeOptions,
  getInvocation,
  type Invocation,
  readNodeRequest,
  writeBridgeResponse,
} from '../src/index.js';
import { memoryLogger, tick, until } from './helpers.js';

type Listener = (req: IncomingMessage, res: ServerResponse) => unknown;

const servers: Server[] = [];
afterEach(async () => {
  for (const s of servers.splice(0)) {
    s.closeAllConnections();
    await new Promise((r) => s.close(r));
  }
});

async function serve(listener: Listener): Promise<string> {
  const server = createServer(listener);
  servers.push(server);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

async function readAll(req: IncomingMessage): Promise<string> {
  let text = '';
  for await (const chunk of req) text += chunk;
  return text;
}

/** The app behind the runtime: echoes what it saw; `?fail` answers 500, `/throw` throws. */
function appFor(seen: { invocation: Invocation | undefined; body: string }[]): Listener {
  return async (req, res) => {
    const body = await readAll(req);
    seen.push({ invocation: getInvocation(req), body });
    if (req.url?.startsWith('/throw')) throw new Error('app blew up');
    res.statusCode = req.url?.includes('fail') ? 500 : 200;
    res.setHeader('content-type', 'application/json');
    res.end(JSON.stringify({ body, type: getInvocation(req)?.type }));
  };
}

/** A plain Node server with the runtime in front of `app`, as an adapter wires it. */
async function setup(options: FcRuntimeOptions = {}) {
  const seen: { invocation: Invocation | undefined; body: string }[] = [];
  const successes: DestinationRecord[] = [];
  const failures: DestinationRecord[] = [];
  const logger = memoryLogger();
  const runtime = createFcRuntime({
    logger,
    env: {},
    destinations: { onSuccess: (r) => void successes.push(r), onFailure: (r) => void failures.push(r) },
    ...options,
    async: { backoff: { baseMs: 1, maxMs: 2 }, ...options.async },
  });
  const app = appFor(seen);
  const key = {};
  // Replays go through the whole listener, runtime included: it must let them straight through.
  const whole: Listener = async (req, res) => {
    const answer = await runtime.handle(req, { app: key, listener: () => whole });
    if (answer) writeBridgeResponse(res, answer, req.method ?? 'GET');
    else await app(req, res);
  };
  const url = await serve(whole);
  return { runtime, url, seen, successes, failures, logger, key };
}

const FC_HEADERS = {
  'x-fc-request-id': '1-64f6d6e7-e01edb1cce58240ed59b59d9',
  'x-fc-function-name': 'transcode',
  'x-fc-region': 'cn-hangzhou',
  'x-fc-account-id': '123',
  'x-fc-function-memory': '512',
  'x-fc-access-key-id': 'AKID',
  'x-fc-access-key-secret': 'SECRET',
  'x-fc-security-token': 'TOKEN',
};

describe('createFcRuntime on a real Node server', () => {
  it('passes a sync request through with the invocation read from FC headers, credentials left out', async () => {
    const { url, seen, runtime } = await setup();
    const r = await fetch(`${url}/hello`, { method: 'POST', headers: FC_HEADERS, body: 'hi' });
    expect(r.status).toBe(200);
    expect(await r.json()).toEqual({ body: 'hi', type: 'Sync' });
    expect(seen[0]?.invocation).toMatchObject({
      type: 'Sync',
      requestId: FC_HEADERS['x-fc-request-id'],
      functionName: 'transcode',
      region: 'cn-hangzhou',
      accountId: '123',
      memoryMB: 512,
    });
    expect(JSON.stringify(seen[0]?.invocation)).not.toMatch(/AKID|SECRET|TOKEN/);
    expect(runtime.mode).toBe('local');
  });

  it('local mode: answers 202, then replays through the app with the body, secrets kept out of the task', async () => {
    const { url, seen, runtime, successes } = await setup();
    const r = await fetch(`${url}/job?x=1`, {
      method: 'POST',
      headers: { ...FC_HEADERS, 'x-fc-invocation-type': 'Async', authorization: 'Bearer s3cret' },
      body: '{"v":1}',
    });
    expect(r.status).toBe(202);
    // No FC in front: the request id is this gateway's, as FC gives its own (the caller's is not taken).
    const requestId = r.headers.get('x-fc-request-id') ?? '';
    expect(requestId).toMatch(/^1-[0-9a-f]{8}-[0-9a-f]{24}$/);
    expect(requestId).not.toBe(FC_HEADERS['x-fc-request-id']);
    expect(r.headers.get('x-fc-async-task-id')).toBe(requestId);
    await runtime.drain();
    expect(seen).toHaveLength(1);
    expect(seen[0]?.body).toBe('{"v":1}');
    expect(seen[0]?.invocation).toMatchObject({ type: 'Async', attempt: 0, source: 'local-queue', requestId });
    const task = await runtime.tasks.get(requestId);
    expect(task?.status).toBe('Succeeded');
    expect(task?.taskPayload).not.toMatch(/s3cret|AKID|SECRET|TOKEN/);
    expect(JSON.parse(successes[0]?.requestPayload ?? '{}')).toMatchObject({ method: 'POST', url: '/job?x=1' });
  });

  it("local mode: a caller's X-Fc-Request-Id names neither the request nor the task (a bad id, or one id for two tasks)", async () => {
    const { url, runtime } = await setup();
    const ids: string[] = [];
    for (const taskId of ['a1', 'a2', undefined]) {
      const r = await fetch(`${url}/job`, {
        method: 'POST',
        headers: {
          'x-fc-invocation-type': 'Async',
          'x-fc-request-id': 'not a valid id!',
          ...(taskId ? { 'x-fc-async-task-id': taskId } : {}),
        },
        body: '{}',
      });
      expect(r.status).toBe(202);
      ids.push(r.headers.get('x-fc-request-id') ?? '');
      expect(r.headers.get('x-fc-async-task-id')).toBe(taskId ?? ids.at(-1));
    }
    expect(new Set(ids).size).toBe(3);
    expect(ids.every((id) => /^1-[0-9a-f]{8}-[0-9a-f]{24}$/.test(id))).toBe(true);
    await runtime.drain();
  });

  it("refuses an async body above the limit with 400 InvalidArgument (the code of FC's HTTP trigger), declared or chunked, and the connection stays usable", async () => {
    const { url } = await setup({ async: { maxAsyncPayloadBytes: 16 } });
    const declared = await fetch(`${url}/job`, {
      method: 'POST',
      headers: { 'x-fc-invocation-type': 'Async' },
      body: 'x'.repeat(64),
    });
    expect(declared.status).toBe(400);
    expect(await declared.json()).toMatchObject({
      code: 'InvalidArgument',
      message: expect.stringMatching(/above the limit of 16/),
    });
    const chunked = await fetch(`${url}/job`, {
      method: 'POST',
      headers: { 'x-fc-invocation-type': 'Async' },
      body: new Blob(['x'.repeat(64)]).stream(),
      duplex: 'half',
    } as RequestInit);
    expect(chunked.status).toBe(400);
    expect(await chunked.json()).toMatchObject({
      code: 'InvalidArgument',
      message: expect.stringMatching(/above the limit of 16/),
    });
    expect((await fetch(`${url}/after`)).status).toBe(200);
  });

  it('platform mode: a failed async invocation is marked x-fc-status 404; a success and a sync 500 are not', async () => {
    const env = { FC_FUNCTION_NAME: 'transcode', FC_REGION: 'cn-hangzhou' };
    const { url, runtime, successes, failures } = await setup({ env, async: { maxAsyncRetryAttempts: 1 } });
    expect(runtime.mode).toBe('platform');
    const call = (path: string, retry: string) =>
      fetch(`${url}${path}`, { method: 'POST', headers: { 'x-fc-async-task-id': 'job_1', 'x-fc-retry-count': retry } });
    const ok = await call('/ok', '0');
    expect([ok.status, ok.headers.get('x-fc-status')]).toEqual([200, null]);
    expect(successes[0]?.requestContext).toMatchObject({ condition: '', approximateInvokeCount: 1 });

    const failed = await call('/fail', '1');
    expect([failed.status, failed.headers.get('x-fc-status')]).toEqual([500, '404']);
    const thrown = await call('/throw', '1');
    expect([thrown.status, thrown.headers.get('x-fc-status')]).toEqual([500, '404']);
    expect(await thrown.json()).toEqual({ code: 'InternalError', message: 'Internal Server Error' });
    expect(failures.map((f) => f.requestContext.condition)).toEqual([
      'UnhandledInvocationError',
      'UnhandledInvocationError',
    ]);

    const sync = await fetch(`${url}/fail`);
    expect([sync.status, sync.headers.get('x-fc-status')]).toEqual([500, null]);
    await expect(runtime.tasks.list()).rejects.toMatchObject({ code: 'NotAvailableInPlatformMode' });
  });

  it('platform mode: FC closing the request (a stop, or the timeout) aborts the signal and calls no in-app destination', async () => {
    const env = { FC_FUNCTION_NAME: 'transcode', FC_REGION: 'cn-hangzhou' };
    const records: DestinationRecord[] = [];
    const logger = memoryLogger();
    // The last attempt (no retry left), whose failure or success would have been delivered.
    const runtime = createFcRuntime({
      logger,
      env,
      async: { maxAsyncRetryAttempts: 0 },
      destinations: { onSuccess: (r) => void records.push(r), onFailure: (r) => void records.push(r) },
    });
    const answered: string[] = [];
    const started: string[] = [];
    // The app's answer to the abort (an error middleware's 500, or what was done so far) comes once FC has gone.
    const app: Listener = (req, res) => {
      started.push(req.url ?? '');
      const { signal } = getInvocation(req)!;
      signal.addEventListener('abort', () => {
        answered.push(`${req.url} ${(signal.reason as { code?: string }).code}`);
        res.statusCode = req.url === '/partial' ? 200 : 500;
        res.end();
      });
    };
    const key = {};
    const url = await serve(async (req, res) => {
      const answer = await runtime.handle(req, { app: key, listener: () => app }, res);
      if (answer) writeBridgeResponse(res, answer, req.method ?? 'GET');
    });
    for (const path of ['/failing', '/partial']) {
      const fc = new AbortController();
      const headers = { 'x-fc-async-task-id': `job${path.replace('/', '_')}`, 'x-fc-retry-count': '0' };
      const call = fetch(`${url}${path}`, { method: 'POST', headers, signal: fc.signal });
      // FC goes once the app runs (a loaded machine takes more than a few ms to get there).
      await until(`the app to run ${path}`, () => started.includes(path));
      fc.abort();
      await call.catch(() => undefined);
    }
    await runtime.drain();
    await tick(20);
    expect(answered).toEqual(['/failing Stopped', '/partial Stopped']);
    expect(records).toEqual([]);
    expect(logger.entries.filter((e) => e.message.startsWith('FC ended the async invocation'))).toHaveLength(2);
  });

  it('platform mode: an app that gives up without answering once FC closed the request is let go after stopGraceMs', async () => {
    const env = { FC_FUNCTION_NAME: 'transcode', FC_REGION: 'cn-hangzhou' };
    const records: DestinationRecord[] = [];
    const logger = memoryLogger();
    const runtime = createFcRuntime({
      logger,
      env,
      async: { maxAsyncRetryAttempts: 0, stopGraceMs: 100 },
      destinations: { onSuccess: (r) => void records.push(r), onFailure: (r) => void records.push(r) },
    });
    let started = false;
    // Cleans up on the abort and returns, as a route does that catches it: the response is never ended.
    const app: Listener = (req) => {
      started = true;
      return new Promise<void>((resolve) => getInvocation(req)!.signal.addEventListener('abort', () => resolve()));
    };
    const key = {};
    const url = await serve(async (req, res) => {
      const answer = await runtime.handle(req, { app: key, listener: () => app }, res);
      if (answer) writeBridgeResponse(res, answer, req.method ?? 'GET');
    });
    const fc = new AbortController();
    const headers = { 'x-fc-invocation-type': 'Async', 'x-fc-retry-count': '0' };
    const call = fetch(`${url}/job`, { method: 'POST', headers, signal: fc.signal });
    await until('the app to run', () => started);
    fc.abort();
    await call.catch(() => undefined);
    // Without the grace, the invocation stayed in flight for ever: every pre-stop waited out its
    // half of the budget for it, and Fastify's app.close() its 30 s.
    const drained = await Promise.race([runtime.drain().then(() => 'drained'), tick(15_000).then(() => 'in flight')]);
    expect(drained).toBe('drained');
    expect(records).toEqual([]);
    expect(logger.entries.filter((e) => e.level === 'error')).toEqual([]);
    expect(logger.entries.map((e) => e.message)).toContain(
      'the app did not settle within async.stopGraceMs after FC ended the async invocation: no longer waited for',
    );
  });

  it('platform mode: an async body past the limit answers 400 marked x-fc-status 404, so FC counts it failed', async () => {
    const env = { FC_FUNCTION_NAME: 'transcode', FC_REGION: 'cn-hangzhou' };
    const limit = 300 * 1024; // above FC's 256 KB, so the option is the limit
    const { url } = await setup({ env, async: { maxAsyncPayloadBytes: limit } });
    const r = await fetch(`${url}/job`, {
      method: 'POST',
      headers: { 'x-fc-async-task-id': 'big_1', 'x-fc-retry-count': '0' },
      body: 'x'.repeat(limit + 1),
    });
    expect([r.status, r.headers.get('x-fc-status')]).toEqual([400, '404']);
    expect(await r.json()).toMatchObject({ code: 'InvalidArgument' });
  });

  it('refuses one runtime serving two apps, and answers 503 once closed', async () => {
    const { runtime, url } = await setup();
    await fetch(url); // binds the runtime to its app
    const other = await runtime.handle(Object.assign(Object.create(null), { headers: {} }) as IncomingMessage, {
      app: {},
      listener: () => () => undefined,
    });
    expect(other).toMatchObject({ statusCode: 500 });
    expect(JSON.parse(String(other?.body))).toMatchObject({ code: 'MiddlewareSharedAcrossApps' });
    expect(runtime.close()).toBe(runtime.close());
    await runtime.close();
    const r = await fetch(`${url}/job`, { method: 'POST', headers: { 'x-fc-invocation-type': 'Async' } });
    expect(r.status).toBe(503);
    expect(await r.json()).toMatchObject({ code: 'ServiceUnavailable' });
  });

  it('keeps two interleaved invocations apart', async () => {
    const runtime = createFcRuntime({ logger: memoryLogger(), env: {} });
    const gates = new Map<string, () => void>();
    const arrived = new Map<string, Promise<void>>();
    const signals = new Map<string, () => void>();
    for (const id of ['a', 'b']) arrived.set(id, new Promise((r) => signals.set(id, r)));
    const key = {};
    const app: Listener = async (req, res) => {
      const id = String(req.headers['x-id']);
      signals.get(id)?.();
      await new Promise<void>((r) => gates.set(id, r));
      res.end(getInvocation(req)?.requestId);
    };
    const url = await serve(async (req, res) => {
      const answer = await runtime.handle(req, { app: key, listener: () => app });
      if (answer) writeBridgeResponse(res, answer, 'GET');
      else await app(req, res);
    });
    const ids = { a: '1-64f6d6e7-00000000000000000000000a', b: '1-64f6d6e7-00000000000000000000000b' };
    const a = fetch(url, { headers: { 'x-id': 'a', 'x-fc-request-id': ids.a } });
    const b = fetch(url, { headers: { 'x-id': 'b', 'x-fc-request-id': ids.b } });
    await Promise.all(arrived.values());
    gates.get('b')?.();
    expect(await (await b).text()).toBe(ids.b);
    gates.get('a')?.();
    expect(await (await a).text()).toBe(ids.a);
  });

  it('validates its options eagerly', () => {
    expect(() => createFcRuntime(null as never)).toThrow('Expected `options` to be an object, got `null`');
    expect(() => createFcRuntime({ async: { concurrency: 0 } })).toThrow('Expected `async.concurrency`');
  });
});

describe('readNodeRequest', () => {
  it('reports a body a parser already read, instead of queueing an empty one', async () => {
    let error: unknown;
    const url = await serve(async (req, res) => {
      await readAll(req);
      error = await readNodeRequest(req, { limit: 100 }).catch((e: unknown) => e);
      res.end();
    });
    await fetch(url, { method: 'POST', body: 'already' });
    expect(error).toMatchObject({ code: 'BodyAlreadyRead', statusCode: 500 });
  });

  it('keeps the method, the given URL, the headers, the body and the peer address', async () => {
    let read: unknown;
    const url = await serve(async (req, res) => {
      read = await readNodeRequest(req, { limit: 100, url: '/mounted/path?q=1' });
      res.end();
    });
    await fetch(`${url}/path?q=1`, { method: 'PUT', headers: { 'x-a': '1' }, body: 'abc' });
    expect(read).toMatchObject({
      method: 'PUT',
      url: '/mounted/path?q=1',
      headers: { 'x-a': '1' },
      body: Buffer.from('abc'),
      remoteAddress: '127.0.0.1',
    });
  });
});

describe('writeBridgeResponse', () => {
  function get(url: string, method = 'GET') {
    return new Promise<{ status: number; headers: IncomingMessage['headers']; body: string }>((resolve, reject) => {
      httpRequest(url, { method }, async (res) => {
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body: await readAll(res) });
      })
        .on('error', reject)
        .end();
    });
  }

  it('writes status, every Set-Cookie, a content-length from the body, and nothing for HEAD or 204', async () => {
    const url = await serve((req, res) => {
      const status = req.url === '/empty' ? 204 : 201;
      writeBridgeResponse(
        res,
        {
          statusCode: status,
          headers: { 'set-cookie': ['a=1', 'b=2'], 'content-length': 99, 'content-type': 'text/plain' },
          body: 'héllo',
        },
        req.method ?? 'GET',
      );
    });
    const r = await get(url);
    expect(r).toMatchObject({ status: 201, body: 'héllo' });
    expect(r.headers['set-cookie']).toEqual(['a=1', 'b=2']);
    expect(r.headers['content-length']).toBe(String(Buffer.byteLength('héllo')));
    expect(r.headers['x-fc-status']).toBeUndefined();
    expect(await get(url, 'HEAD')).toMatchObject({ status: 201, body: '' });
    expect(await get(`${url}/empty`)).toMatchObject({ status: 204, body: '' });
  });
});
