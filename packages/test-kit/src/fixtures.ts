import { Readable } from 'node:stream';
import type { Fc2Request, Fc2Response, FcHttpResult } from '@fc-async/core';

/** FC's list of request content types whose bodies arrive as plain text (fc-contract 3). */
const FC_TEXT_TYPES = [
  /^text\//,
  /^application\/json\b/,
  /^application\/ld\+json\b/,
  /^application\/xhtml\+xml\b/,
  /^application\/xml\b/,
  /^application\/atom\+xml\b/,
  /^application\/javascript\b/,
];

export interface RequestSpec {
  method?: string;
  /** Encoded path, as a client would send it. */
  path?: string;
  /** Decoded query values; arrays are repeated parameters. */
  query?: Record<string, string | string[]>;
  /** Header values; arrays are repeated headers. */
  headers?: Record<string, string | string[]>;
  body?: string | Buffer;
  sourceIp?: string;
  requestId?: string;
}

function canonical(name: string): string {
  return name
    .split('-')
    .map((part) => (part ? part[0]!.toUpperCase() + part.slice(1).toLowerCase() : part))
    .join('-');
}

let counter = 0;
export function fixtureRequestId(): string {
  counter++;
  return `1-64f6d6e7-${counter.toString(16).padStart(24, '0')}`;
}

/**
 * An FC 3.0 HTTP event in the documented shape: canonicalised header keys, repeated headers and
 * query values joined with commas, `timeEpoch` a string, the body base64-encoded unless its
 * content type is one FC passes as text. Returned as the Buffer FC hands to the handler.
 */
export function fc3Event(spec: RequestSpec = {}): Buffer {
  const method = spec.method ?? 'GET';
  const rawPath = spec.path ?? '/';
  const headers: Record<string, string> = {};
  for (const [name, value] of Object.entries(spec.headers ?? {})) {
    headers[canonical(name)] = Array.isArray(value) ? value.join(',') : value;
  }
  const queryParameters: Record<string, string> = {};
  for (const [name, value] of Object.entries(spec.query ?? {})) {
    queryParameters[name] = Array.isArray(value) ? value.join(',') : value;
  }
  const body = spec.body === undefined ? Buffer.alloc(0) : Buffer.from(spec.body);
  const contentType = (headers['Content-Type'] ?? '').toLowerCase();
  const asText = FC_TEXT_TYPES.some((r) => r.test(contentType));
  const requestId = spec.requestId ?? fixtureRequestId();
  const now = Date.now();
  return Buffer.from(
    JSON.stringify({
      version: 'v1',
      rawPath,
      body: body.length === 0 ? '' : asText ? body.toString('utf8') : body.toString('base64'),
      isBase64Encoded: body.length > 0 && !asText,
      headers,
      queryParameters,
      requestContext: {
        accountId: '1234567890123456',
        domainName: 'demo-abc.cn-hangzhou.fcapp.run',
        domainPrefix: 'demo-abc',
        http: {
          method,
          path: decodeURIComponent(rawPath),
          protocol: 'HTTP/1.1',
          sourceIp: spec.sourceIp ?? '203.0.113.7',
          userAgent: headers['User-Agent'] ?? 'fixture/1.0',
        },
        requestId,
        time: new Date(now).toISOString().replace(/\.\d+Z$/, 'Z'),
        timeEpoch: String(now),
      },
    }),
  );
}

/** FC 3.0's `context` for a fixture invocation. */
export function fcContext(requestId: string = fixtureRequestId()) {
  return {
    requestId,
    credentials: { accessKeyId: 'AKID-SECRET', accessKeySecret: 'SK-SECRET', securityToken: 'STS-SECRET' },
    function: { name: 'demo', handler: 'index.handler', memory: 512, timeout: 60 },
    service: { logProject: 'p', logStore: 's', qualifier: 'LATEST', versionId: '' },
    region: 'cn-hangzhou',
    accountId: '1234567890123456',
  };
}

/** A normalised response, whichever signature produced it. */
export interface Reply {
  status: number;
  /** Lower-cased names; every `set-cookie` case variant collected into `cookies`. */
  headers: Record<string, string>;
  cookies: string[];
  body: Buffer;
  isBase64Encoded?: boolean;
  text(): string;
  json(): unknown;
}

function reply(status: number, raw: Record<string, string>, body: Buffer, isBase64Encoded?: boolean): Reply {
  const headers: Record<string, string> = {};
  const cookies: string[] = [];
  for (const [name, value] of Object.entries(raw)) {
    if (name.toLowerCase() === 'set-cookie') cookies.push(value);
    else headers[name.toLowerCase()] = value;
  }
  return {
    status,
    headers,
    cookies,
    body,
    isBase64Encoded,
    text: () => body.toString('utf8'),
    json: () => JSON.parse(body.toString('utf8')),
  };
}

export function fromFc3Result(result: FcHttpResult): Reply {
  const body = result.isBase64Encoded ? Buffer.from(result.body, 'base64') : Buffer.from(result.body, 'utf8');
  return reply(result.statusCode, result.headers, body, result.isBase64Encoded);
}

/**
 * An FC 2.0 `(req, resp)` pair. `withBody`: the runtime sets `req.body` (newer runtimes); else the
 * body only comes through the stream.
 */
export function fc2Call(
  spec: RequestSpec = {},
  withBody = false,
): { req: Fc2Request; resp: Fc2Response; done: Promise<Reply> } {
  const body = spec.body === undefined ? Buffer.alloc(0) : Buffer.from(spec.body);
  const stream = Readable.from(
    body.length > 0 ? [body.subarray(0, Math.ceil(body.length / 2)), body.subarray(Math.ceil(body.length / 2))] : [],
  );
  const headers: Record<string, string | string[]> = {};
  for (const [name, value] of Object.entries(spec.headers ?? {})) headers[name.toLowerCase()] = value;
  const rawPath = spec.path ?? '/';
  const req = Object.assign(stream, {
    headers,
    path: decodeURIComponent(rawPath),
    queries: spec.query ?? {},
    method: spec.method ?? 'GET',
    clientIP: spec.sourceIp ?? '203.0.113.7',
    url: `https://demo.cn-hangzhou.fc.aliyuncs.com/2016-08-15/proxy/svc/demo${rawPath}`,
    ...(withBody ? { body } : {}),
  }) as unknown as Fc2Request;
  let status = 200;
  const out: Record<string, string> = {};
  let resolve!: (r: Reply) => void;
  const done = new Promise<Reply>((r) => {
    resolve = r;
  });
  const resp: Fc2Response = {
    setStatusCode(code) {
      status = code;
    },
    setHeader(name, value) {
      out[name] = value;
    },
    deleteHeader(name) {
      delete out[name];
    },
    send(data) {
      resolve(reply(status, out, Buffer.isBuffer(data) ? data : Buffer.from(String(data))));
    },
  };
  return { req, resp, done };
}
