import type { DestinationRecord, FcRuntimeOptions, FcServer } from '@fc-async/core';
import { silentLogger } from '@fc-async/core';
import { until } from '@fc-async/test-kit/wait';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { serveExpress, serveFastify } from '../src/custom-runtime.js';
import { OrdersService } from '../src/orders.js';

// The example's Nest app as the HTTP server of a custom runtime: fcAsync() in the app, then
// listen(), called over real HTTP on loopback.
const platforms = [
  ['Express', serveExpress],
  ['Fastify', serveFastify],
] as const;

const ON_FC = { FC_FUNCTION_NAME: 'nest-orders', FC_REGION: 'cn-hangzhou' };
const servers: FcServer[] = [];
afterEach(async () => {
  vi.restoreAllMocks();
  for (const server of servers.splice(0)) await server.close();
});

describe.each(platforms)('Nest on %s as a custom runtime', (_name, serve) => {
  const succeeded: DestinationRecord[] = [];
  const failed: DestinationRecord[] = [];

  async function start(env: Record<string, string> = {}) {
    const runtime: FcRuntimeOptions = {
      env,
      logger: silentLogger,
      async: { maxAsyncRetryAttempts: 0 },
      destinations: { onSuccess: (r) => void succeeded.push(r), onFailure: (r) => void failed.push(r) },
    };
    const { app, server } = await serve(runtime, { port: 0, host: '127.0.0.1', signals: [], logger: silentLogger });
    servers.push(server);
    return { url: `http://127.0.0.1:${server.port}`, app, server };
  }

  const post = (url: string, headers: Record<string, string>, body: unknown) =>
    fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...headers },
      body: JSON.stringify(body),
    });

  it('off FC: answers sync calls, and an async one with 202 and a task id that then runs', async () => {
    const { url } = await start();
    const got = await fetch(`${url}/orders/1`);
    expect(got.status).toBe(200);
    expect(await got.json()).toEqual({ id: '1', item: 'tea' });
    const accepted = await post(`${url}/thumbnails`, { 'x-fc-invocation-type': 'Async' }, { image: 'owl.jpg' });
    expect(accepted.status).toBe(202);
    const taskId = accepted.headers.get('x-fc-async-task-id');
    expect(taskId).toBeTruthy();
    const record = await until(
      () => succeeded.find((r) => r.requestContext.requestId === taskId),
      `the onSuccess record of ${taskId}`,
      10_000,
    );
    expect(JSON.parse(String(record.responsePayload))).toMatchObject({ made: 'owl.jpg.thumb.png', type: 'Async' });
  });

  it('on FC: runs an async invocation FC hands over and answers it, x-fc-status unset', async () => {
    const { url } = await start(ON_FC);
    expect((await fetch(`${url}/initialize`, { method: 'POST' })).status).toBe(200);
    const headers = { 'x-fc-invocation-type': 'Async', 'x-fc-request-id': '1-nest-ok' };
    const ran = await post(`${url}/thumbnails`, headers, { image: 'fox.jpg' });
    expect(ran.status).toBe(200);
    expect(ran.headers.get('x-fc-status')).toBeNull();
    expect(await ran.json()).toMatchObject({ made: 'fox.jpg.thumb.png', type: 'Async', requestId: '1-nest-ok' });
  });

  it('on FC: marks an async invocation Nest answered 500 with x-fc-status: 404 (FC retries it), not a sync one', async () => {
    const stderr = vi.spyOn(process.stderr, 'write').mockImplementation(() => true); // Nest logs the crash
    const { url } = await start(ON_FC);
    const failedAsync = await fetch(`${url}/crash`, {
      headers: { 'x-fc-invocation-type': 'Async', 'x-fc-request-id': '1-nest-crash' },
    });
    expect(failedAsync.status).toBe(500);
    expect(failedAsync.headers.get('x-fc-status')).toBe('404');
    expect(await failedAsync.json()).toEqual({ statusCode: 500, message: 'Internal server error' });
    expect(failed.map((r) => r.requestContext.requestId)).toContain('1-nest-crash');
    const failedSync = await fetch(`${url}/crash`, { headers: { 'x-fc-request-id': '1-nest-sync' } });
    expect(failedSync.status).toBe(500);
    expect(failedSync.headers.get('x-fc-status')).toBeNull();
    expect(await failedSync.json()).toEqual({ statusCode: 500, message: 'Internal server error' });
    // The filter's log lines name FC's request id of each call (x-fc-request-id).
    const lines = stderr.mock.calls.map(([chunk]) => String(chunk)).filter((l) => l.includes('hunter2'));
    expect(lines.some((l) => l.includes('requestId=1-nest-crash database password is hunter2'))).toBe(true);
    expect(lines.some((l) => l.includes('requestId=1-nest-sync database password is hunter2'))).toBe(true);
  });

  it("runs Nest's shutdown hooks when the server shuts down (FC's pre-stop, SIGTERM)", async () => {
    const { url, app, server } = await start();
    expect((await fetch(`${url}/orders/1`)).status).toBe(200);
    const orders = app.get(OrdersService);
    expect(orders.closed).toBe(false);
    await server.close();
    expect(orders.closed).toBe(true);
  });
});
