import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import {
  type BridgeResponse,
  cookieHeaderName,
  createBodyClassifier,
  createFcHandler,
  detectInvocation,
  type Fc2Response,
  flattenHeaders,
  isFcRequestId,
  isValidTaskId,
  newRequestId,
  parseFcEvent,
  readFc2Request,
  toFcHttpResult,
  writeFc2Response,
} from '../src/index.js';
import { asyncEvent, context, event, fc2Response, memoryLogger } from './helpers.js';

describe('parseFcEvent', () => {
  it('accepts a Buffer, a string or an object', () => {
    const e = event({
      method: 'POST',
      path: '/a%2Fb',
      query: { x: '1,2', y: 'a b' },
      headers: { 'Content-Type': 'text/plain' },
      body: 'é',
    });
    for (const form of [Buffer.from(JSON.stringify(e)), JSON.stringify(e), e]) {
      const r = parseFcEvent(form);
      expect(r.method).toBe('POST');
      expect(r.url).toBe('/a%2Fb?x=1,2&y=a%20b');
      expect(r.headers['content-type']).toBe('text/plain');
      expect(r.headers['content-length']).toBe('2');
      expect(r.body.toString()).toBe('é');
      expect(r.remoteAddress).toBe('10.0.0.1');
    }
  });

  it('decodes base64 bodies byte-exact', () => {
    const bytes = Buffer.from([0, 255, 1, 254, 128]);
    const r = parseFcEvent({ ...event({ method: 'POST' }), body: bytes.toString('base64'), isBase64Encoded: true });
    expect(r.body.equals(bytes)).toBe(true);
  });

  it.each([
    ['not JSON', Buffer.from('{nope'), 'InvalidEvent'],
    ['a JSON array', '[]', 'InvalidEvent'],
    ['no requestContext', { rawPath: '/' }, 'InvalidEvent'],
    ['no method', { rawPath: '/', requestContext: { http: {} } }, 'InvalidEvent'],
    ['a bad method', { rawPath: '/', requestContext: { http: { method: 'GE T' } } }, 'InvalidEvent'],
    ['no path', { requestContext: { http: { method: 'GET' } } }, 'InvalidEvent'],
    [
      'headers not an object',
      { rawPath: '/', headers: 'x', requestContext: { http: { method: 'GET' } } },
      'InvalidEvent',
    ],
    [
      'a body that is not a string',
      { rawPath: '/', body: 5, requestContext: { http: { method: 'GET' } } },
      'InvalidEvent',
    ],
    [
      'invalid base64',
      { rawPath: '/', body: 'not*base64', isBase64Encoded: true, requestContext: { http: { method: 'POST' } } },
      'InvalidBody',
    ],
  ])('400 for %s', (_label, input, code) => {
    expect(() => parseFcEvent(input)).toThrow(expect.objectContaining({ code, statusCode: 400 }));
  });

  it('a malformed event reaches the caller as 400 JSON, never a crash', async () => {
    const logger = memoryLogger();
    const handler = createFcHandler((_req, res) => res.end('x'), { logger, env: {} });
    const result = await handler(Buffer.from('garbage'), {});
    expect(result.statusCode).toBe(400);
    expect(JSON.parse(result.body)).toEqual({ code: 'InvalidEvent', message: 'The event is not valid JSON' });
  });
});

describe('responses', () => {
  const classify = createBodyClassifier();
  it.each([
    ['text/html; charset=utf-8', undefined, 'text'],
    ['application/json', undefined, 'text'],
    ['application/vnd.api+json', undefined, 'text'],
    ['image/svg+xml', undefined, 'text'],
    ['text/plain; charset=latin1', undefined, 'binary'],
    ['application/json', 'gzip', 'binary'],
    ['application/json', 'identity', 'text'],
    ['image/png', undefined, 'binary'],
    [undefined, undefined, 'binary'],
  ])('%s with encoding %s is %s', (type, encoding, kind) => {
    const headers: Record<string, string> = {};
    if (type) headers['content-type'] = type;
    if (encoding) headers['content-encoding'] = encoding;
    expect(classify(headers)).toBe(kind);
  });

  it('the text list is an option', () => {
    const only = createBodyClassifier(['application/x-custom']);
    expect(only({ 'content-type': 'application/x-custom' })).toBe('text');
    expect(only({ 'content-type': 'text/plain' })).toBe('binary');
  });

  it('refuses a text list that is not an array of strings and RegExps when the handler is made', () => {
    const app = () => {};
    expect(() => createFcHandler(app, { textContentTypes: 'text/*' as never })).toThrow(
      new TypeError('Expected `textContentTypes` to be an array of content types (strings or RegExps), got `string`'),
    );
    expect(() => createFcHandler(app, { textContentTypes: ['text/*', 5] as never })).toThrow(
      new TypeError('Expected `textContentTypes[1]` to be a content type (a string or a RegExp), got `5`'),
    );
  });

  it('spreads cookies over distinct case variants and joins other repeated headers', () => {
    const flat = flattenHeaders({
      'set-cookie': ['a=1', 'b=2', 'c=3'],
      vary: ['accept', 'origin'],
      'content-length': 5,
      connection: 'close',
    });
    expect(flat).toEqual({
      'set-cookie': 'a=1',
      'Set-cookie': 'b=2',
      'sEt-cookie': 'c=3',
      vary: 'accept, origin',
      'content-length': '5',
    });
    const names = new Set(Array.from({ length: 512 }, (_, i) => cookieHeaderName(i)));
    expect(names.size).toBe(512);
    for (const n of names) expect(n.toLowerCase()).toBe('set-cookie');
    expect(() => cookieHeaderName(512)).toThrow(RangeError);
  });

  it('a text type whose bytes are not UTF-8 goes base64, byte for byte (as text each bad byte became U+FFFD)', () => {
    const bytes = Buffer.from([0xff, 0xfe, 0x41]);
    const res = { statusCode: 200, headers: { 'content-type': 'text/plain; charset=utf-8' }, body: bytes };
    const result = toFcHttpResult(res, 'GET', classify);
    expect(result.isBase64Encoded).toBe(true);
    expect(Buffer.from(result.body, 'base64')).toEqual(bytes);
    const valid = toFcHttpResult({ ...res, body: Buffer.from('héllo') }, 'GET', classify);
    expect([valid.isBase64Encoded, valid.body]).toEqual([false, 'héllo']);
  });

  it('HEAD, 204 and 304 carry no body', () => {
    const res = { statusCode: 200, headers: { 'content-type': 'text/plain' }, body: 'x' };
    expect(toFcHttpResult(res, 'HEAD', classify).body).toBe('');
    expect(toFcHttpResult({ ...res, statusCode: 204 }, 'GET', classify).body).toBe('');
    expect(toFcHttpResult({ ...res, statusCode: 304 }, 'GET', classify).body).toBe('');
  });

  it("HEAD keeps the length of the body it drops in content-length (its GET's), an app's own first", () => {
    const res = { statusCode: 200, headers: { 'content-type': 'text/plain' }, body: 'héllo' };
    expect(toFcHttpResult(res, 'HEAD', classify).headers['content-length']).toBe('6');
    expect(toFcHttpResult({ ...res, body: Buffer.from([1, 2, 3]) }, 'HEAD', classify).headers['content-length']).toBe(
      '3',
    );
    const own = { ...res, headers: { 'Content-Length': '42' }, body: '' };
    expect(toFcHttpResult(own, 'HEAD', classify).headers).toEqual({ 'Content-Length': '42' });
    // Nothing to tell: no body written, or a status that has none.
    expect(toFcHttpResult({ ...res, body: '' }, 'HEAD', classify).headers['content-length']).toBeUndefined();
    expect(toFcHttpResult({ ...res, statusCode: 204 }, 'HEAD', classify).headers['content-length']).toBeUndefined();
    expect(toFcHttpResult(res, 'GET', classify).headers['content-length']).toBeUndefined();
  });

  it("FC 2.0's resp: HEAD keeps the length of the body it drops in content-length, as FC 3.0's result does", () => {
    const res = { statusCode: 200, headers: { 'content-type': 'text/plain' }, body: 'héllo' };
    const head = (response: BridgeResponse, method = 'HEAD') => {
      const { resp, sent } = fc2Response();
      writeFc2Response(resp, response, method);
      return sent;
    };
    expect(head(res)).toMatchObject({ status: 200, body: '', sends: 1 });
    for (const response of [
      res,
      { ...res, body: Buffer.from([1, 2, 3]) },
      { ...res, headers: { 'Content-Length': '42' }, body: '' },
      { ...res, body: '' },
      { ...res, statusCode: 204 },
    ]) {
      // The same head as FC 3.0's result: an app's own length first, none for no body or a status without one.
      expect(head(response).headers).toEqual(toFcHttpResult(response, 'HEAD', classify).headers);
    }
    expect(head(res).headers['content-length']).toBe('6');
    expect(head({ ...res, headers: { 'Content-Length': '42' }, body: '' }).headers).toEqual({ 'Content-Length': '42' });
    expect(head({ ...res, body: '' }).headers['content-length']).toBeUndefined();
    expect(head({ ...res, statusCode: 204 }).headers['content-length']).toBeUndefined();
    expect(head(res, 'GET')).toMatchObject({ headers: { 'content-type': 'text/plain' }, body: 'héllo' });
    expect(head(res, 'GET').headers['content-length']).toBeUndefined();
  });
});

describe('detectInvocation', () => {
  const id = '1-64f6d6e7-e01edb1cce58240ed59b59d9';
  it.each([
    [{}, { type: 'Sync', source: 'default', attempt: 0 }],
    [{ 'x-fc-invocation-type': 'Sync' }, { type: 'Sync', source: 'invocation-type' }],
    [{ 'X-Fc-Invocation-Type': 'async' }, { type: 'Async', source: 'invocation-type' }],
    [{ 'x-fc-async-task-id': 'job_1' }, { type: 'Async', source: 'task-id', taskId: 'job_1' }],
    [{ 'x-fc-stateful-async-invocation-id': 'legacy' }, { type: 'Async', source: 'task-id', taskId: 'legacy' }],
    [{ 'x-fc-retry-count': '2' }, { type: 'Async', source: 'retry-count', attempt: 2 }],
    [{ 'x-fc-retry-count': '0' }, { type: 'Sync', source: 'default', attempt: 0 }],
    [
      { 'x-fc-invocation-type': 'Sync', 'x-fc-retry-count': '2' },
      { type: 'Sync', source: 'invocation-type', attempt: 2 },
    ],
    [{ 'x-fc-request-id': id }, { requestId: id }],
  ])('%j → %j', (headers, expected) => {
    expect(detectInvocation(headers, {})).toMatchObject(expected);
  });

  it.each([
    [{ 'x-fc-invocation-type': 'maybe' }, /must be Sync or Async/],
    [{ 'x-fc-async-task-id': '1abc' }, /X-Fc-Async-Task-Id must match .*, got "1abc"$/],
    // The same header twice (Node joins them): the message shows why a valid id is refused.
    [{ 'x-fc-async-task-id': 'job_1, job_1' }, /got "job_1, job_1"$/],
    [{ 'x-fc-retry-count': 'two' }, /whole number/],
  ])('%j → 400', (headers, message) => {
    expect(() => detectInvocation(headers, {})).toThrow(message);
  });

  it('reads a task id FC made (the request id, outside the rule for callers) on a call FC runs', () => {
    const id = '1-64f6d6e7-e01edb1cce58240ed59b59d9';
    expect(detectInvocation({ 'x-fc-async-task-id': id }, {})).toMatchObject({ type: 'Async', taskId: id });
  });

  it('refuses that id from a caller where a task is accepted, as FC does', async () => {
    const handler = createFcHandler((_req, res) => res.end(), { env: {} });
    const result = await handler(asyncEvent({ taskId: '1-64f6d6e7-e01edb1cce58240ed59b59d9' }), context);
    expect(result.statusCode).toBe(400);
    expect(JSON.parse(result.body as string)).toMatchObject({ code: 'InvalidArgument' });
    expect((await handler.tasks.list()).tasks).toEqual([]);
  });

  it('generates FC 3.0 request ids when none is given', () => {
    const a = detectInvocation({}, {}).requestId;
    expect(isFcRequestId(a)).toBe(true);
    expect(isFcRequestId(newRequestId())).toBe(true);
    expect(a).not.toBe(detectInvocation({}, {}).requestId);
  });

  it('task ids follow FC rule', () => {
    expect(isValidTaskId('_a-1')).toBe(true);
    expect(isValidTaskId('a'.repeat(128))).toBe(true);
    expect(isValidTaskId('a'.repeat(129))).toBe(false);
    expect(isValidTaskId('a.b')).toBe(false);
  });

  it('options.detect replaces it', async () => {
    const handler = createFcHandler((_req, res) => res.end(), {
      env: {},
      async: { mode: 'local' },
      logger: memoryLogger(),
      detect: (headers) => ({
        type: headers['x-queue'] ? 'Async' : 'Sync',
        requestId: newRequestId(),
        attempt: 0,
        source: 'custom',
      }),
    });
    expect((await handler(event({ headers: { 'X-Queue': '1' } }), {})).statusCode).toBe(202);
    expect((await handler(event({ headers: { 'X-Fc-Invocation-Type': 'Async' } }), {})).statusCode).toBe(200);
    await handler.drain();
  });
});

describe('FC 3.0 callback style and FC 2.0 edge cases', () => {
  it('calls back when the runtime passes a callback', async () => {
    const handler = createFcHandler((_req, res) => res.end('cb'), { env: {} });
    const result = await new Promise((resolve, reject) => {
      handler(event(), {}, (error, r) => (error ? reject(error) : resolve(r)));
    });
    expect(result).toMatchObject({ statusCode: 200 });
  });

  it("FC 2.0: header names that are Object's own keep their values (`__proto__` included)", async () => {
    const headers = JSON.parse('{"__proto__":"p","Constructor":"c","Accept":"a"}');
    const req = Object.assign(Readable.from([]), { method: 'GET', headers, path: '/', queries: {} });
    const request = await readFc2Request(req as never);
    expect(Object.entries(request.headers)).toEqual([
      ['__proto__', 'p'],
      ['constructor', 'c'],
      ['accept', 'a'],
    ]);
  });

  it('FC 2.0: a request without method answers 400 through resp', async () => {
    const handler = createFcHandler((_req, res) => res.end('x'), { env: {}, logger: memoryLogger() });
    let status = 0;
    let body = '';
    const resp: Fc2Response = {
      setStatusCode: (c) => {
        status = c;
      },
      setHeader: () => {},
      send: (b) => {
        body = String(b);
      },
    };
    const req = Object.assign(Readable.from([]), { headers: {}, path: '/', queries: {} });
    await handler(req as never, resp, {});
    expect(status).toBe(400);
    expect(JSON.parse(body)).toMatchObject({ code: 'InvalidEvent' });
  });

  it.each([
    ['FC 2.0 req.path', 'fc2'],
    ['FC 3.0 requestContext.http.path (no rawPath)', 'fc3'],
  ])(
    '%s is the decoded path: a percent sign in it reaches the app encoded, never decoded twice',
    async (_label, kind) => {
      const seen: string[] = [];
      const handler = createFcHandler(
        (req, res) => {
          seen.push(req.url ?? '');
          res.end('ok');
        },
        { env: {} },
      );
      // The client sent /files/..%252F..%252Fetc%252Fpasswd and /a%2541 b: FC hands over the decoded paths.
      for (const path of ['/files/..%2F..%2Fetc%2Fpasswd', '/a%41 b']) {
        if (kind === 'fc2') {
          const resp: Fc2Response = { setStatusCode: () => {}, setHeader: () => {}, send: () => {} };
          const req = Object.assign(Readable.from([]), { method: 'GET', headers: {}, path, queries: {} });
          await handler(req as never, resp, {});
        } else {
          const { rawPath: _, ...e } = event();
          await handler({ ...e, requestContext: { ...e.requestContext, http: { method: 'GET', path } } }, {});
        }
      }
      expect(seen).toEqual(['/files/..%252F..%252Fetc%252Fpasswd', '/a%2541%20b']);
      expect(decodeURIComponent(seen[0]?.split('/')[2] ?? '')).toBe('..%2F..%2Fetc%2Fpasswd');
    },
  );
});
