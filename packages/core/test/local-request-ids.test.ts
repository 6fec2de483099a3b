import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { createFcRuntime, getInvocation, writeBridgeResponse } from '../src/index.js';
import { memoryLogger } from './helpers.js';

// fcAsync() in local mode is the gateway: it gives the request id, as FC does (its 202 carries it,
// its task records it). What a user greps the log for is the id the caller got: each line about a
// request names the id its answer carried, or the one the app was given.
const cleanup: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const c of cleanup.splice(0)) await c();
});

const CALLER_ID = '1-64f6d6e7-e01edb1cce58240ed59b59d9';

/** createFcRuntime's own example in local mode; `front` runs first, as a middleware in front would. */
async function serve(front: (res: ServerResponse) => void = () => {}) {
  const logger = memoryLogger();
  const runtime = createFcRuntime({ env: {}, logger });
  const seen: (string | undefined)[] = [];
  const appListener = (req: IncomingMessage, res: ServerResponse) => {
    seen.push(getInvocation(req)?.requestId);
    res.end(' ran');
  };
  const server = createServer(async (req, res) => {
    front(res);
    const answer = await runtime.handle(req, { app: server, listener: () => appListener }, res);
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
  const post = (headers: Record<string, string>) =>
    fetch(url, {
      method: 'POST',
      headers: { 'x-fc-invocation-type': 'Async', 'x-fc-request-id': CALLER_ID, ...headers },
      body: '{}',
    });
  return { logger, seen, post };
}

describe('fcAsync() in local mode: the request id a log line names is the one the caller got', () => {
  it('a refused async call (its task id taken) answers with the id its "request rejected" line names', async () => {
    const { logger, post } = await serve();
    expect((await post({ 'x-fc-async-task-id': 'job_1' })).status).toBe(202);
    const r = await post({ 'x-fc-async-task-id': 'job_1' });
    expect(r.status).toBe(409);
    const rejected = logger.entries.filter((e) => e.message === 'request rejected');
    expect(rejected).toHaveLength(1);
    expect(r.headers.get('x-fc-request-id')).toMatch(/^1-/);
    expect(rejected[0]?.fields?.requestId).toBe(r.headers.get('x-fc-request-id'));
  });

  it('one refused before its detection ended (a task id breaking the rule) too', async () => {
    const { logger, post } = await serve();
    const r = await post({ 'x-fc-async-task-id': 'bad id!' });
    expect(r.status).toBe(400);
    const rejected = logger.entries.filter((e) => e.message === 'request rejected');
    expect(rejected).toHaveLength(1);
    expect(r.headers.get('x-fc-request-id')).toMatch(/^1-/);
    expect(rejected[0]?.fields?.requestId).toBe(r.headers.get('x-fc-request-id'));
  });

  it('one whose answer a middleware in front began goes on under the id its warn line names', async () => {
    const { logger, seen, post } = await serve((res) => {
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.write('head');
    });
    const r = await post({});
    expect([r.status, await r.text()]).toEqual([200, 'head ran']);
    const warned = logger.entries.filter((e) => e.level === 'warn');
    expect(warned).toEqual([{ level: 'warn', message: expect.stringContaining('begun'), fields: expect.anything() }]);
    expect(seen).toEqual([CALLER_ID]);
    expect(warned[0]?.fields?.requestId).toBe(CALLER_ID);
  });

  it('one a middleware in front answered names the id the caller gave it', async () => {
    const { logger, seen, post } = await serve((res) => {
      res.statusCode = 503;
      res.end('busy');
    });
    const r = await post({});
    expect([r.status, await r.text()]).toEqual([503, 'busy']);
    expect(seen).toEqual([]);
    expect(logger.entries.filter((e) => e.level === 'warn').map((e) => e.fields?.requestId)).toEqual([CALLER_ID]);
  });
});
