import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { deliveryBound } from '../src/async/platform.js';
import {
  addPreStopHook,
  buildInvocation,
  createFcHandler,
  createFcRuntime,
  type Destination,
  type DestinationRecord,
  detectInvocation,
  type FcServer,
  fcHttpEvent,
  getInvocation,
  listenFc,
  writeBridgeResponse,
} from '../src/index.js';
import { deferred, memoryLogger, tick, until } from './helpers.js';

const FC_ENV = { FC_FUNCTION_NAME: 'job', FC_REGION: 'cn-hangzhou', FC_ACCOUNT_ID: '123' };
const FC_ID = '1-64f6d6e7-e01edb1cce58240ed59b5970';
const context = (extra: Record<string, unknown> = {}) => ({
  requestId: FC_ID,
  region: 'cn-hangzhou',
  accountId: '123',
  function: { name: 'job' },
  ...extra,
});

/** A destination that never settles by itself: it ends only when its signal aborts. */
const hung =
  (reasons: unknown[]): Destination =>
  (_record, context) =>
    new Promise<void>((_, reject) => {
      const signal = context?.signal as AbortSignal;
      signal.addEventListener('abort', () => {
        reasons.push(signal.reason);
        reject(signal.reason);
      });
    });

const servers: Server[] = [];
const listening: FcServer[] = [];
afterEach(async () => {
  for (const s of servers.splice(0)) {
    s.closeAllConnections();
    await new Promise((r) => s.close(r));
  }
  for (const s of listening.splice(0)) await s.close();
});

/** A Node server with a custom-runtime middleware in front of `app`, as an adapter wires it. */
async function serveRuntime(
  runtime: ReturnType<typeof createFcRuntime>,
  app: (req: IncomingMessage, res: ServerResponse) => unknown,
): Promise<string> {
  const key = {};
  const server = createServer(async (req, res) => {
    const answer = await runtime.handle(req, { app: key, listener: () => app }, res);
    if (answer) writeBridgeResponse(res, answer, req.method ?? 'GET');
    else await app(req, res);
  });
  servers.push(server);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

describe("the request id is FC's context.requestId wherever a context gives one", () => {
  it("platform mode: a caller's X-Fc-Request-Id names neither the invocation nor the record", async () => {
    const records: DestinationRecord[] = [];
    const seen: (string | undefined)[] = [];
    const handler = createFcHandler(
      (req, res) => {
        seen.push(getInvocation(req)?.requestId, req.headers['x-fc-request-id'] as string);
        res.end('{}');
      },
      { env: FC_ENV, logger: memoryLogger(), destinations: { onSuccess: (r) => void records.push(r) } },
    );
    const headers = { 'X-Fc-Invocation-Type': 'Async', 'X-Fc-Request-Id': 'caller-chosen-id' };
    await handler(fcHttpEvent({ method: 'POST', url: '/job', headers, body: {} }), context());
    await handler(fcHttpEvent({ url: '/sync', headers: { 'X-Fc-Request-Id': 'caller-chosen-id' } }), context());
    expect(seen).toEqual([FC_ID, FC_ID, FC_ID, FC_ID]);
    expect(records.map((r) => r.requestContext.requestId)).toEqual([FC_ID]);
  });

  it("local mode: a caller's X-Fc-Request-Id neither names the task nor makes a second call a 409", async () => {
    const handler = createFcHandler((_req, res) => res.end('ok'), { env: {}, logger: memoryLogger() });
    const spoofed = () =>
      fcHttpEvent({
        method: 'POST',
        body: 'x',
        headers: { 'X-Fc-Request-Id': 'not a task id!', 'X-Fc-Invocation-Type': 'Async' },
      });
    const first = await handler(spoofed(), { requestId: '1-64f6d6e7-e01edb1cce58240ed59b59d1' });
    const second = await handler(spoofed(), { requestId: '1-64f6d6e7-e01edb1cce58240ed59b59d2' });
    await handler.drain();
    await handler.close();
    expect([first.statusCode, first.headers['x-fc-async-task-id']]).toEqual([
      202,
      '1-64f6d6e7-e01edb1cce58240ed59b59d1',
    ]);
    expect([second.statusCode, second.headers['x-fc-async-task-id']]).toEqual([
      202,
      '1-64f6d6e7-e01edb1cce58240ed59b59d2',
    ]);
  });
});

describe("platform mode bounds its in-process delivery by the function's timeout", () => {
  it('deliveryBound: 10 s at most, less when the timeout (less a tenth of it, 1 s at most) comes sooner, never below 0', () => {
    expect(deliveryBound({}, 0, 5).ms).toBe(10_000);
    expect(deliveryBound({ timeoutSeconds: 600 }, 0, 5).ms).toBe(10_000);
    expect(deliveryBound({ timeoutSeconds: 3 }, 0, 10).ms).toBe(2690);
    expect(deliveryBound({ timeoutSeconds: 20 }, 0, 10_000).ms).toBe(9000);
    // FC's shortest timeout still leaves a quick app time to deliver.
    expect(deliveryBound({ timeoutSeconds: 1 }, 0, 10).ms).toBe(890);
    expect(deliveryBound({ timeoutSeconds: 1 }, 0, 950).ms).toBe(0);
    expect(deliveryBound({ timeoutSeconds: 3 }, 0, 10).reason.message).toMatch(/function's 3 s timeout/);
  });

  it("reads the function's timeout from context.function.timeout, else a custom runtime's x-fc-function-timeout", () => {
    const headers = { 'x-fc-invocation-type': 'Async', 'x-fc-function-timeout': '7' };
    const detection = detectInvocation(headers);
    expect(buildInvocation(detection, headers, undefined, {}).timeoutSeconds).toBe(7);
    expect(buildInvocation(detection, headers, { function: { timeout: 3 } }, {}).timeoutSeconds).toBe(3);
    expect(buildInvocation(detection, { 'x-fc-function-timeout': 'soon' }, undefined, {}).timeoutSeconds).toBe(
      undefined,
    );
  });

  it('FC 3.0: a hung onSuccess is cut before the function times out, not after 10 s', async () => {
    const reasons: unknown[] = [];
    const handler = createFcHandler((_req, res) => res.end('{"done":true}'), {
      env: FC_ENV,
      logger: memoryLogger(),
      destinations: { onSuccess: hung(reasons) },
    });
    const event = fcHttpEvent({ method: 'POST', url: '/job', headers: { 'x-fc-invocation-type': 'Async' }, body: {} });
    // 1.5 s: 1.35 s for the delivery once the margin (a tenth) is kept back.
    const result = await handler(event, context({ function: { name: 'job', timeout: 1.5 } }));
    expect(result.statusCode).toBe(200);
    expect(reasons).toHaveLength(1);
    expect((reasons[0] as Error).message).toMatch(/function's 1.5 s timeout/);
  });

  it('custom runtime: x-fc-function-timeout bounds the delivery the same way', async () => {
    const reasons: unknown[] = [];
    const logger = memoryLogger();
    const runtime = createFcRuntime({ env: FC_ENV, logger, destinations: { onSuccess: hung(reasons) } });
    const url = await serveRuntime(runtime, (_req, res) => res.end('ok'));
    const r = await fetch(`${url}/job`, {
      method: 'POST',
      headers: { 'x-fc-invocation-type': 'Async', 'x-fc-retry-count': '0', 'x-fc-function-timeout': '1' },
    });
    expect(r.status).toBe(200);
    // A 1 s timeout keeps 100 ms back: the hung delivery is cut at 900 ms, not at 10 s.
    expect(reasons).toHaveLength(1);
    const failed = logger.entries.find((e) => JSON.stringify(e.fields ?? {}).includes("function's 1 s timeout"));
    expect(failed).toBeDefined();
  });
});

describe('a refusal of an async call FC already accepted counts as a failure', () => {
  const finalAttempt = context({ retryCount: 2 });
  const refusing = () =>
    createFcHandler((_req, res) => res.end('ran'), {
      env: FC_ENV,
      logger: memoryLogger(),
      async: { maxAsyncRetryAttempts: 2 },
    });

  it('FC 3.0: the handler throws, naming no success, for an FC 2.0 task id out of rule and a bad retry count', async () => {
    const handler = refusing();
    const logger = handler.logger as ReturnType<typeof memoryLogger>;
    const fc2 = { 'X-Fc-Invocation-Type': 'Async', 'X-Fc-Stateful-Async-Invocation-Id': '2026-export' };
    await expect(
      handler(fcHttpEvent({ method: 'POST', url: '/job', headers: fc2, body: {} }), finalAttempt),
    ).rejects.toMatchObject({ code: 'UnhandledInvocationError', message: expect.stringMatching(/HTTP 400/) });
    const retry = { 'X-Fc-Invocation-Type': 'Async', 'X-Fc-Retry-Count': 'two' };
    await expect(
      handler(fcHttpEvent({ method: 'POST', url: '/job', headers: retry }), context()),
    ).rejects.toMatchObject({
      code: 'UnhandledInvocationError',
    });
    // The log names the header that was sent, FC 2.0's.
    expect(logger.entries.find((e) => e.message === 'request rejected')?.fields?.reason).toMatch(
      /^X-Fc-Stateful-Async-Invocation-Id must match/,
    );
  });

  it('FC 3.0: a sync call refused keeps its 400 answer', async () => {
    const headers = { 'X-Fc-Invocation-Type': 'Sync', 'X-Fc-Async-Task-Id': '42' };
    const result = await refusing()(fcHttpEvent({ url: '/job', headers }), context());
    expect(result.statusCode).toBe(400);
  });

  it('custom runtime: the 400 carries x-fc-status: 404', async () => {
    const runtime = createFcRuntime({ env: FC_ENV, logger: memoryLogger() });
    const url = await serveRuntime(runtime, (_req, res) => res.end('ran'));
    const r = await fetch(`${url}/job`, {
      method: 'POST',
      headers: { 'x-fc-invocation-type': 'Async', 'x-fc-stateful-async-invocation-id': '2026-export' },
    });
    expect([r.status, r.headers.get('x-fc-status')]).toEqual([400, '404']);
    expect(((await r.json()) as { message: string }).message).toMatch(/^X-Fc-Stateful-Async-Invocation-Id must match/);
    const sync = await fetch(`${url}/job`, { headers: { 'x-fc-invocation-type': 'Sync', 'x-fc-async-task-id': '42' } });
    expect([sync.status, sync.headers.get('x-fc-status')]).toEqual([400, null]);
  });
});

describe('custom runtime, platform mode: GET /pre-stop', () => {
  it('waits for an async invocation still running (and its delivery) before the pre-stop hooks', async () => {
    const order: string[] = [];
    const gate = deferred();
    const runtime = createFcRuntime({
      env: FC_ENV,
      logger: memoryLogger(),
      destinations: { onSuccess: () => void order.push('onSuccess') },
    });
    const app = {};
    let started = false;
    const listener = async (req: IncomingMessage, res: ServerResponse) => {
      const answer = await runtime.handle(req, { app, listener: () => listener }, res);
      if (answer) return writeBridgeResponse(res, answer, req.method ?? 'GET');
      started = true;
      await gate.promise;
      order.push('job');
      res.end('done');
    };
    const off = addPreStopHook(() => void order.push('hook'));
    try {
      const fc = await listenFc(
        listener,
        {
          logger: memoryLogger(),
          signals: [],
          port: 0,
          host: '127.0.0.1',
          onPreStop: () => void order.push('onPreStop'),
        },
        { app },
      );
      listening.push(fc);
      const url = `http://127.0.0.1:${fc.port}`;
      const call = fetch(`${url}/job`, {
        method: 'POST',
        headers: { 'x-fc-invocation-type': 'Async', 'x-fc-retry-count': '0' },
      });
      await until('the invocation to start', () => started);
      const preStop = fetch(`${url}/pre-stop`, { headers: { 'x-fc-control-path': '/pre-stop' } });
      setTimeout(gate.resolve, 50);
      expect((await preStop).status).toBe(200);
      expect(order).toEqual(['job', 'onSuccess', 'hook', 'onPreStop']);
      expect((await call).status).toBe(200);
    } finally {
      off();
    }
  });
});

/** A platform-mode handler running one async invocation until `release` resolves. */
function runningUntilReleased() {
  const release = deferred<void>();
  const handler = createFcHandler(
    async (_req, res) => {
      await release.promise;
      res.end('done');
    },
    { env: FC_ENV, logger: memoryLogger() },
  );
  const event = fcHttpEvent({ method: 'POST', url: '/job', headers: { 'x-fc-invocation-type': 'Async' }, body: {} });
  return { handler, release, running: handler(event, context()) };
}

describe('createFcHandler, platform mode: close()', () => {
  it('waits for an invocation still running, but no longer than its timeoutMs', async () => {
    const { handler, release, running } = runningUntilReleased();
    await tick();
    let closed = false;
    const closing = handler.close({ timeoutMs: 30 }).then(() => {
      closed = true;
    });
    await tick();
    expect(closed).toBe(false); // the invocation is still running
    await closing; // settles at its timeout although the app has not answered
    release.resolve();
    expect((await running).statusCode).toBe(200);
  });

  it('refuses options it cannot read, as in local mode', async () => {
    const handler = createFcHandler((_req, res) => res.end(), { env: FC_ENV, logger: memoryLogger() });
    await expect(handler.close({ timeoutMs: -1 })).rejects.toThrow(/timeoutMs/);
  });
});

describe('review of the platform-mode changes', () => {
  it('close({ timeoutMs: Infinity }) waits for an invocation still running (Node would fire such a timer at 1 ms)', async () => {
    const { handler, release, running } = runningUntilReleased();
    let closed = false;
    const closing = handler.close({ timeoutMs: Number.POSITIVE_INFINITY }).then(() => {
      closed = true;
    });
    await tick(20);
    expect(closed).toBe(false);
    release.resolve();
    await closing;
    expect((await running).statusCode).toBe(200);
  });

  it('no time left before the function times out: the destination is not called, one warning says why', async () => {
    const called: unknown[] = [];
    const logger = memoryLogger();
    const handler = createFcHandler(
      async (_req, res) => {
        await tick(60);
        res.end('late');
      },
      { env: FC_ENV, logger, destinations: { onSuccess: (record) => void called.push(record) } },
    );
    const event = fcHttpEvent({ method: 'POST', url: '/job', headers: { 'x-fc-invocation-type': 'Async' }, body: {} });
    // A 50 ms timeout (5 ms kept back) that the app's 60 ms used up.
    const result = await handler(event, context({ function: { name: 'job', timeout: 0.05 } }));
    expect(result.statusCode).toBe(200);
    expect(called).toEqual([]);
    expect(logger.entries.filter((e) => e.level === 'error')).toEqual([]);
    const warning = logger.entries.find((e) => e.message.startsWith('destination not called'));
    expect(warning?.fields).toMatchObject({ requestId: FC_ID, side: 'onSuccess' });
  });

  it('a sync call with a task id out of rule (no invocation type, no retry) answers its 400, not a function error', async () => {
    const handler = createFcHandler((_req, res) => res.end('ran'), { env: FC_ENV, logger: memoryLogger() });
    const headers = { 'X-Fc-Async-Task-Id': '9-starts-with-a-digit' };
    const result = await handler(fcHttpEvent({ url: '/job', headers }), context());
    expect(result.statusCode).toBe(400);
    expect(JSON.parse(result.body)).toMatchObject({ code: 'InvalidArgument' });
  });
});
