import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { createFcRuntime, isAnsweredInFront, writeBridgeResponse } from '../src/index.js';
import { memoryLogger } from './helpers.js';

// The framework-free runtime every adapter's fcAsync() uses, behind a front that answers 503 and
// passes the request on all the same: written as createFcRuntime's own example reads.
const cleanup: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const c of cleanup.splice(0)) await c();
});

async function serve(env: Record<string, string>) {
  const runtime = createFcRuntime({ env, logger: memoryLogger() });
  const runs: string[] = [];
  const answered: boolean[] = [];
  const appListener = (_req: IncomingMessage, res: ServerResponse) => {
    runs.push('route');
    if (!res.headersSent) res.end('ran');
  };
  const server = createServer(async (req, res) => {
    res.statusCode = 503;
    res.end('busy');
    const answer = await runtime.handle(req, { app: server, listener: () => appListener }, res);
    answered.push(isAnsweredInFront(answer));
    if (answer) writeBridgeResponse(res, answer, req.method ?? 'GET');
    else runtime.proceed(req, () => appListener(req, res));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  cleanup.push(async () => {
    await runtime.close();
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  });
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/job`;
  return { runtime, runs, answered, url };
}

describe('createFcRuntime().handle() of an async request already answered in front', () => {
  it.each([
    ['local', {}],
    ['platform', { FC_FUNCTION_NAME: 'f', FC_REGION: 'cn-hangzhou' }],
  ])('%s mode: an answer that writes nothing; nothing queued, the app never runs', async (_mode, env) => {
    const { runtime, runs, answered, url } = await serve(env);
    const headers = { 'x-fc-invocation-type': 'Async', 'x-fc-request-id': '1-64f6d6e7-e01edb1cce58240ed59b59d9' };
    const r = await fetch(url, { method: 'POST', headers, body: '{}' });
    expect([r.status, await r.text()]).toEqual([503, 'busy']);
    await runtime.drain();
    if (runtime.mode === 'local') expect((await runtime.tasks.list()).tasks).toEqual([]);
    expect(answered).toEqual([true]);
    expect(runs).toEqual([]);
  });

  it('a response fc-async made for itself is not one answered in front', () => {
    expect(isAnsweredInFront(undefined)).toBe(false);
    expect(isAnsweredInFront({ statusCode: 503, headers: {}, body: '' })).toBe(false);
  });
});
