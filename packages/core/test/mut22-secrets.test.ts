import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { BasicTracerProvider } from '@opentelemetry/sdk-trace-base';
import { afterEach, describe, expect, it } from 'vitest';
import {
  captureRequest,
  createFcRuntime,
  type DestinationRecord,
  type FcRequest,
  type FcRuntimeOptions,
  fcFunctionDestination,
  parseFcEvent,
  serializeRequest,
  type TracingRequestInfo,
  type TracingResponseInfo,
  writeBridgeResponse,
} from '../src/index.js';
import { event, memoryLogger } from './helpers.js';

// Secrets kept out of what fc-async stores and shows, where no other test held it (session 22's
// secrets mutation audit): the custom-runtime middleware's own `redactHeaders` (`createFcRuntime`,
// what the adapters' `fcAsync()` is built on), a redactor of one's own given to `captureRequest`,
// and a mistyped FC endpoint in a message.

const servers: Server[] = [];
afterEach(async () => {
  for (const s of servers.splice(0)) {
    s.closeAllConnections();
    await new Promise((r) => s.close(r));
  }
});

/** A Node server with the runtime in front of an app that answers what it got, as an adapter wires it. */
async function serveRuntime(options: FcRuntimeOptions) {
  const replayed: IncomingMessage['headers'][] = [];
  const runtime = createFcRuntime({
    env: {},
    ...options,
    async: { backoff: { baseMs: 1, maxMs: 2 }, ...options.async },
  });
  const app = (req: IncomingMessage, res: ServerResponse) => {
    replayed.push(req.headers);
    req.resume();
    req.on('end', () => {
      res.statusCode = req.url?.includes('fail') ? 500 : 200;
      res.setHeader('set-cookie', 'sid=ANSWER-COOKIE');
      res.end('done');
    });
  };
  const key = {};
  const whole = async (req: IncomingMessage, res: ServerResponse) => {
    const answer = await runtime.handle(req, { app: key, listener: () => whole });
    if (answer) writeBridgeResponse(res, answer, req.method ?? 'GET');
    else app(req, res);
  };
  const server = createServer((req, res) => void whole(req, res));
  servers.push(server);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { runtime, replayed, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}` };
}

const SECRET_HEADERS = {
  'X-Fc-Access-Key-Id': 'LEAK-AKID',
  'X-Fc-Access-Key-Secret': 'LEAK-SK',
  'X-Fc-Security-Token': 'LEAK-STS',
  'X-Acs-Security-Token': 'LEAK-ACS',
  Authorization: 'Bearer LEAK-BEARER',
  'Proxy-Authorization': 'Basic LEAK-PROXY',
  Cookie: 'sid=LEAK-COOKIE',
  'Set-Cookie': 'echo=LEAK-SETCOOKIE',
  'X-Api-Key': 'LEAK-API-KEY',
};

describe('createFcRuntime({ redactHeaders }), local mode', () => {
  it('keeps the named header and the defaults out of the task, its destination records, its replays and the hooks', async () => {
    const records: DestinationRecord[] = [];
    const logger = memoryLogger();
    const hooks: (TracingRequestInfo | TracingResponseInfo)[] = [];
    const { runtime, replayed, url } = await serveRuntime({
      logger,
      redactHeaders: ['x-API-key'],
      async: { maxAsyncRetryAttempts: 1 },
      destinations: { onSuccess: (r) => void records.push(r), onFailure: (r) => void records.push(r) },
      tracing: {
        tracerProvider: new BasicTracerProvider(),
        requestHook: (_span, info) => void hooks.push(info),
        responseHook: (_span, info) => void hooks.push(info),
      },
    });
    try {
      const ids: string[] = [];
      for (const path of ['/ok', '/fail']) {
        const r = await fetch(`${url}${path}`, {
          method: 'POST',
          headers: { ...SECRET_HEADERS, 'x-fc-invocation-type': 'Async', 'x-visible': 'kept' },
          body: '{}',
        });
        expect(r.status).toBe(202);
        ids.push(r.headers.get('x-fc-async-task-id') ?? '');
      }
      await runtime.drain();
      const tasks = await Promise.all(ids.map((id) => runtime.tasks.get(id)));
      expect(tasks.map((t) => t?.status)).toEqual(['Succeeded', 'Failed']);
      // The failed task was tried twice: the retried attempt's replay too is without them.
      expect(replayed).toHaveLength(3);
      expect(records.map((r) => r.requestContext.condition)).toEqual(['', 'UnhandledInvocationError']);
      expect(JSON.parse(tasks[0]?.taskPayload ?? '{}').headers).toMatchObject({ 'x-visible': 'kept' });
      expect(replayed[0]).toMatchObject({ 'x-visible': 'kept' });
      expect(hooks.length).toBeGreaterThan(0);
      const text = JSON.stringify({ tasks, records, replayed, hooks, logs: logger.entries });
      expect(text.match(/LEAK-[\w-]+/g)).toBeNull();
    } finally {
      await runtime.close();
    }
  });
});

describe('captureRequest with a redactor of your own', () => {
  it('applies it, and still drops the gateway headers', () => {
    const request: FcRequest = parseFcEvent(
      event({
        method: 'POST',
        path: '/jobs',
        headers: { 'X-Internal-Token': 'LEAK-INTERNAL', 'X-Fc-Invocation-Type': 'Async', 'X-Visible': 'kept' },
        body: '{}',
      }),
    );
    const withoutToken = (headers: FcRequest['headers']) => {
      const out: Record<string, string | string[]> = {};
      for (const [name, value] of Object.entries(headers)) {
        if (value !== undefined && name.toLowerCase() !== 'x-internal-token') out[name.toLowerCase()] = value;
      }
      return out;
    };
    const captured = captureRequest(request, withoutToken);
    expect(captured.headers).toMatchObject({ 'x-visible': 'kept' });
    expect(captured.headers).not.toHaveProperty('x-fc-invocation-type');
    expect(serializeRequest(captured)).not.toContain('LEAK-INTERNAL');
  });
});

describe('fcFunctionDestination clientConfig.endpoint refused', () => {
  it.each([
    ['https://fc.example.com/2023-03-30?token=LEAK-TOKEN', 'https://fc.example.com/2023-03-30?***'],
    ['https://user:LEAK-PASSWORD@fc.example.com/x', 'https://***@fc.example.com/x'],
    // An origin with a user and password would be signed with the keys and its password dropped unsaid.
    ['https://user:LEAK-PASSWORD@fc.example.com', 'https://***@fc.example.com'],
    ['user:LEAK-PASSWORD@fc.example.com', 'user***'],
  ])('%s: the message shows it masked (%s)', (endpoint, shown) => {
    const make = () => fcFunctionDestination('f', { accessKeyId: 'ak', accessKeySecret: 'sk', endpoint });
    expect(make).toThrow(
      `Expected \`clientConfig.endpoint\` to be host[:port] or an http(s) origin, without a path, user or password, got \`${shown}\``,
    );
    expect(make).not.toThrow(/LEAK/);
  });
});
