import type { IncomingMessage, ServerResponse } from 'node:http';
import { bodyParser } from '@koa/bodyparser';
import Router from '@koa/router';
import express from 'express';
import Fastify from 'fastify';
import Koa from 'koa';

/** The two requests every library is fed, as the same HTTP request in both platforms' events. */
export interface BenchRequest {
  method: 'GET' | 'POST';
  path: string;
  query: Record<string, string>;
  body?: string;
}

export const GET: BenchRequest = { method: 'GET', path: '/hello', query: { lang: 'en' } };
export const POST: BenchRequest = {
  method: 'POST',
  path: '/echo',
  query: {},
  body: JSON.stringify({ name: 'fc-async', n: 42, tags: ['a', 'b'], nested: { ok: true } }),
};

/** What every app answers, as JSON. */
export function expectedBody(request: BenchRequest): unknown {
  return request.method === 'GET' ? { ok: true } : { received: JSON.parse(request.body ?? 'null') };
}

/** Headers a browser-ish client and the gateway put on the request; the same set for both events. */
function requestHeaders(request: BenchRequest): Record<string, string> {
  const headers: Record<string, string> = {
    accept: 'application/json',
    'accept-encoding': 'gzip, deflate, br',
    'accept-language': 'en-US,en;q=0.9',
    host: 'demo-abc.cn-hangzhou.fcapp.run',
    'user-agent': 'bench/1.0',
    'x-forwarded-for': '203.0.113.7',
    'x-forwarded-proto': 'https',
  };
  if (request.body !== undefined) headers['content-type'] = 'application/json';
  return headers;
}

function canonical(name: string): string {
  return name.replace(/(^|-)([a-z])/g, (_m, dash: string, c: string) => dash + c.toUpperCase());
}

const EPOCH = 1_700_000_000_000;

/**
 * The FC 3.0 HTTP trigger event, in the shape of packages/test-kit's `fc3Event`: canonical
 * header names, `queryParameters`, `timeEpoch` a string. Returned parsed; FC passes it to the
 * handler as a Buffer holding this JSON.
 */
export function fc3Event(request: BenchRequest): Record<string, unknown> {
  const headers: Record<string, string> = {};
  for (const [name, value] of Object.entries(requestHeaders(request))) headers[canonical(name)] = value;
  return {
    version: 'v1',
    rawPath: request.path,
    body: request.body ?? '',
    isBase64Encoded: false,
    headers,
    queryParameters: request.query,
    requestContext: {
      accountId: '1234567890123456',
      domainName: 'demo-abc.cn-hangzhou.fcapp.run',
      domainPrefix: 'demo-abc',
      http: {
        method: request.method,
        path: request.path,
        protocol: 'HTTP/1.1',
        sourceIp: '203.0.113.7',
        userAgent: 'bench/1.0',
      },
      requestId: '1-64f6d6e7-e01edb1cce58240ed59b59d9',
      time: new Date(EPOCH).toISOString(),
      timeEpoch: String(EPOCH),
    },
  };
}

/** FC 3.0's `context` argument. */
export const fcContext = {
  requestId: '1-64f6d6e7-e01edb1cce58240ed59b59d9',
  credentials: { accessKeyId: 'AKID', accessKeySecret: 'SECRET', securityToken: 'TOKEN' },
  function: { name: 'demo', handler: 'index.handler', memory: 512, timeout: 60 },
  service: { logProject: 'p', logStore: 's', qualifier: 'LATEST', versionId: '' },
  region: 'cn-hangzhou',
  accountId: '1234567890123456',
};

/** The same request as an API Gateway HTTP API (payload format 2.0) event. */
export function apiGatewayV2Event(request: BenchRequest): Record<string, unknown> {
  const rawQueryString = new URLSearchParams(request.query).toString();
  return {
    version: '2.0',
    routeKey: '$default',
    rawPath: request.path,
    rawQueryString,
    headers: requestHeaders(request),
    ...(rawQueryString ? { queryStringParameters: request.query } : {}),
    requestContext: {
      accountId: '123456789012',
      apiId: 'abc123',
      domainName: 'abc123.execute-api.us-east-1.amazonaws.com',
      domainPrefix: 'abc123',
      http: {
        method: request.method,
        path: request.path,
        protocol: 'HTTP/1.1',
        sourceIp: '203.0.113.7',
        userAgent: 'bench/1.0',
      },
      requestId: 'JKJaXmPLvHcESHA=',
      routeKey: '$default',
      stage: '$default',
      time: '14/Nov/2023:22:13:20 +0000',
      timeEpoch: EPOCH,
    },
    ...(request.body !== undefined ? { body: request.body } : {}),
    isBase64Encoded: false,
  };
}

/** Lambda's `context` argument. */
export const lambdaContext = {
  awsRequestId: 'c6af9ac6-7b61-11e6-9a41-93e812345678',
  functionName: 'demo',
  functionVersion: '$LATEST',
  invokedFunctionArn: 'arn:aws:lambda:us-east-1:123456789012:function:demo',
  memoryLimitInMB: '512',
  logGroupName: '/aws/lambda/demo',
  logStreamName: '2023/11/14/[$LATEST]abc',
  callbackWaitsForEmptyEventLoop: true,
  getRemainingTimeInMillis: () => 60_000,
};

const OK = '{"ok":true}';

/**
 * A plain Node request listener doing as little as a handler can: GET answers `{"ok":true}`,
 * POST reads the body from the request stream, parses it and echoes it.
 */
export function rawApp(req: IncomingMessage, res: ServerResponse): void {
  if (req.method === 'GET') {
    res.setHeader('content-type', 'application/json');
    res.end(OK);
    return;
  }
  const chunks: Buffer[] = [];
  req.on('data', (chunk: Buffer) => chunks.push(chunk));
  req.on('end', () => {
    const received = JSON.parse(Buffer.concat(chunks).toString('utf8'));
    res.setHeader('content-type', 'application/json');
    res.end(JSON.stringify({ received }));
  });
}

/** Express 5 with `express.json()`. */
export function expressApp() {
  const app = express();
  app.use(express.json());
  app.get('/hello', (_req, res) => {
    res.json({ ok: true });
  });
  app.post('/echo', (req, res) => {
    res.json({ received: req.body });
  });
  return app;
}

/** Koa 3 with `@koa/bodyparser` and `@koa/router`. */
export function koaApp() {
  const app = new Koa();
  const router = new Router();
  router.get('/hello', (ctx) => {
    ctx.body = { ok: true };
  });
  router.post('/echo', (ctx) => {
    ctx.body = { received: ctx.request.body };
  });
  app.use(bodyParser());
  app.use(router.routes());
  return app;
}

/** Fastify 5 with its built-in JSON body parser. */
export function fastifyApp() {
  const app = Fastify();
  app.get('/hello', async () => ({ ok: true }));
  app.post('/echo', async (request) => ({ received: request.body }));
  return app;
}
