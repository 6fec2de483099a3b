import { Readable } from 'node:stream';
import { type Fc2Request, type Fc2Response, type FcContext, fcHttpEvent, silentLogger } from '@fc-async/core';
import { createHandler } from '@fc-async/express';
import express from 'express';
import { afterAll, describe, expect, it } from 'vitest';
import { eventContext } from '../src/migrating/event-context.js';
import { handler } from '../src/migrating/fc-express-after.js';
import { handler as lambdaHandler } from '../src/migrating/lambda-after.js';
import { AVATAR } from '../src/migrating/routes.js';

// docs/migrating.md: the migrated handlers answer FC's calls as the wrappers they replace did.
// The expected answers are what @webserverless/fc-express 1.0.0 answered for the same calls
// (compared outside the repository, which does not depend on it), except where the guide says
// fc-async answers differently: binary bodies, several cookies, errors.

afterAll(async () => {
  await handler.close();
  await lambdaHandler.close();
});

/** FC's context object, credentials included, as the built-in runtimes pass it. */
const context = {
  requestId: 'req-fc2',
  region: 'cn-hangzhou',
  accountId: '1234',
  credentials: { accessKeyId: 'AKID', accessKeySecret: 'SECRET', securityToken: 'TOKEN' },
  function: { name: 'web', handler: 'index.handler', memory: 512, timeout: 60 },
  service: { name: 'svc', logProject: '', logStore: '', qualifier: 'LATEST', versionId: '' },
} as FcContext;

interface Fc2Reply {
  status: number;
  headers: Record<string, string>;
  body: Buffer;
}

/** An FC 2.0 HTTP call: `req` a stream with FC's fields, `resp` FC's response object. */
async function fc2(
  method: string,
  path: string,
  options: { queries?: Record<string, string>; body?: string; headers?: Record<string, string> } = {},
): Promise<Fc2Reply> {
  const bytes = Buffer.from(options.body ?? '');
  const req = Object.assign(Readable.from(bytes.length > 0 ? [bytes] : []), {
    method,
    path,
    queries: options.queries ?? {},
    clientIP: '10.0.0.9',
    headers: { host: 'web.cn-hangzhou.fcapp.run', 'x-forwarded-for': '198.51.100.1', ...options.headers },
  }) as unknown as Fc2Request;
  const reply: Fc2Reply = { status: 0, headers: {}, body: Buffer.alloc(0) };
  let sent!: () => void;
  const done = new Promise<void>((resolve) => {
    sent = resolve;
  });
  const resp: Fc2Response = {
    setStatusCode: (code) => {
      reply.status = code;
    },
    setHeader: (name, value) => {
      reply.headers[name] = value;
    },
    deleteHeader: (name) => {
      delete reply.headers[name];
    },
    send: (data) => {
      reply.body = Buffer.isBuffer(data) ? data : Buffer.from(String(data));
      sent();
    },
  };
  await handler(req, resp, context);
  await done;
  return reply;
}

const json = (body: Buffer | string) => JSON.parse(body.toString());

describe('fc-express → fc-async, FC 2.0 (req, resp, context)', () => {
  it('answers a JSON route as fc-express did, the request id where eventContext() put it', async () => {
    const reply = await fc2('GET', '/hello', { queries: { name: 'fc' } });
    expect([reply.status, reply.headers['content-type'], json(reply.body)]).toEqual([
      200,
      'application/json; charset=utf-8',
      { hello: 'fc', requestId: 'req-fc2' },
    ]);
  });

  it('reads the client address and the function name as fc-express did', async () => {
    const reply = await fc2('GET', '/whoami');
    expect(json(reply.body)).toEqual({ ip: '198.51.100.1', functionName: 'web' });
  });

  it('sends each cookie under a header name of its own (fc-express handed resp.setHeader an array)', async () => {
    const reply = await fc2('POST', '/login', {
      body: '{"user":"ann"}',
      headers: { 'content-type': 'application/json' },
    });
    const cookies = Object.entries(reply.headers).filter(([name]) => name.toLowerCase() === 'set-cookie');
    expect(cookies.map(([, value]) => value)).toEqual(['session=abc123; Path=/; HttpOnly', 'theme=dark; Path=/']);
    expect(json(reply.body)).toEqual({ user: 'ann' });
  });

  it('sends a binary body byte for byte (fc-express sent it as UTF-8 text, 0x89 and 0xff turned to U+FFFD)', async () => {
    const reply = await fc2('GET', '/avatar.png');
    expect(reply.headers['content-type']).toBe('image/png');
    expect(reply.body.equals(AVATAR)).toBe(true);
  });

  it('answers an unknown route 404 in JSON (fc-express: Express HTML page)', async () => {
    const reply = await fc2('GET', '/nope');
    expect([reply.status, json(reply.body)]).toEqual([404, { code: 'NotFound', message: 'Cannot GET /nope' }]);
  });
});

describe('fc-express → fc-async, FC 3.0 (event, context): the same handler', () => {
  const fc3Context = { ...context, requestId: 'req-fc3' } as FcContext;

  it('answers the JSON route with the request id of FC 3.0 context', async () => {
    const result = await handler(fcHttpEvent({ method: 'GET', url: '/hello?name=fc' }), fc3Context);
    expect([result.statusCode, result.isBase64Encoded, json(result.body)]).toEqual([
      200,
      false,
      { hello: 'fc', requestId: 'req-fc3' },
    ]);
  });

  it('returns a binary body base64-encoded, without a list of binary types', async () => {
    const result = await handler(fcHttpEvent({ method: 'GET', url: '/avatar.png' }), fc3Context);
    expect(result.isBase64Encoded).toBe(true);
    expect(Buffer.from(result.body, 'base64').equals(AVATAR)).toBe(true);
  });
});

describe('the eventContext() stand-in', () => {
  it('carries the invocation, never FC credentials', async () => {
    const app = express();
    app.use(eventContext());
    app.get('/', (req, res) => {
      res.json(req.eventContext);
    });
    const probe = createHandler(app, { logger: silentLogger, env: {} });
    try {
      const result = await probe(fcHttpEvent({ method: 'GET', url: '/' }), context);
      expect(json(result.body)).toEqual({
        context: {
          requestId: 'req-fc2',
          region: 'cn-hangzhou',
          accountId: '1234',
          function: { name: 'web', memory: 512, timeout: 60 },
          service: { qualifier: 'LATEST', versionId: '' },
        },
      });
      expect(result.body).not.toMatch(/AKID|SECRET|TOKEN/);
    } finally {
      await probe.close();
    }
  });
});

describe('serverless-http / @vendia/serverless-express → fc-async', () => {
  it("answers FC 3.0's event (which those wrappers route to / or fail on) with the request id", async () => {
    const event = fcHttpEvent({ method: 'POST', url: '/orders', body: { sku: 'A-1' } });
    const result = await lambdaHandler(event, { ...context, requestId: 'req-orders' } as FcContext);
    expect([result.statusCode, json(result.body)]).toEqual([201, { id: 42, requestId: 'req-orders' }]);
  });

  it('takes an async call, which the wrappers never saw, with 202 and runs it as a task', async () => {
    const event = fcHttpEvent({
      method: 'POST',
      url: '/orders',
      headers: { 'x-fc-invocation-type': 'Async', 'x-fc-async-task-id': 'order_1' },
      body: { sku: 'A-1' },
    });
    expect((await lambdaHandler(event)).statusCode).toBe(202);
    await lambdaHandler.drain();
    const task = await lambdaHandler.tasks.get('order_1');
    expect(task?.status).toBe('Succeeded');
    expect(JSON.parse(task?.returnPayload ?? '')).toMatchObject({ id: 42 });
  });
});
