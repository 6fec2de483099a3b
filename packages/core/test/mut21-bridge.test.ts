import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { type AnswerLimit, runBridged } from '../src/bridge.js';
import {
  createBodyClassifier,
  createFcHandler,
  detectInvocation,
  errorResponse,
  FcAsyncError,
  fcHttpEvent,
  fcQueryParameters,
  flattenHeaders,
  getInvocation,
  logAppError,
  parseFcEvent,
  thrownError,
  thrownText,
  toFcHttpResult,
} from '../src/index.js';
import { event, fc2Response, memoryLogger } from './helpers.js';

// Behaviour of the core bridge (FC events in, answers out) that the twenty-first session's
// hand-made mutation audit found no test holding.

/** A handler whose app answers what it saw: method, url, headers and the body's bytes (base64). */
function echo() {
  return createFcHandler(
    async (req, res) => {
      const chunks: Buffer[] = [];
      for await (const chunk of req) chunks.push(chunk as Buffer);
      res.setHeader('content-type', 'application/json');
      res.end(
        JSON.stringify({
          method: req.method,
          url: req.url,
          headers: req.headers,
          body: Buffer.concat(chunks).toString('base64'),
        }),
      );
    },
    { env: {}, logger: memoryLogger() },
  );
}

describe('fcHttpEvent: the event a test hands a handler', () => {
  it("keeps the Host a test names over an absolute URL's, and never puts the URL's user and password in it", () => {
    expect(fcHttpEvent({ url: 'http://api.example.com/x', headers: { host: 'mine.example.com' } }).headers?.Host).toBe(
      'mine.example.com',
    );
    const withUser = fcHttpEvent({ url: 'https://user:s3cret@api.example.com:8443/x?y=1' });
    expect(withUser.headers?.Host).toBe('api.example.com:8443');
    expect(JSON.stringify(withUser)).not.toContain('s3cret');
    expect(withUser).toMatchObject({ rawPath: '/x', queryParameters: { y: '1' } });
  });

  it("reads a + in the path as a +, and in a query's names and values as a space", () => {
    const e = fcHttpEvent({ url: '/a+b/c%2Bd?x+y=1+2&p%2Bq=3' });
    expect(e.rawPath).toBe('/a+b/c%2Bd');
    expect(e.requestContext?.http?.path).toBe('/a+b/c+d');
    expect(e.queryParameters).toEqual({ 'x y': '1 2', 'p+q': '3' });
    expect(fcQueryParameters('a+b=c+d')).toEqual({ 'a b': 'c d' });
  });
});

describe('parseFcEvent: what the app sees of an FC 3.0 event', () => {
  it('reads a header array holding null or undefined as the values it has, not a 400', () => {
    const headers = { 'X-Tags': ['a', null, 'b'] } as unknown as Record<string, string>;
    const value = parseFcEvent({ ...event(), headers }).headers['x-tags'] as string;
    expect(value.split(',').filter(Boolean)).toEqual(['a', 'b']);
  });

  it('gives a rawPath without its leading slash one, so the url the app routes on starts with /', () => {
    expect(parseFcEvent({ ...event(), rawPath: 'jobs/1' }).url).toBe('/jobs/1');
    expect(parseFcEvent({ ...event({ query: { a: '1' } }), rawPath: 'jobs' }).url).toBe('/jobs?a=1');
  });

  it('keeps the Host the client sent over requestContext.domainName, which stands in only without one', () => {
    const base = event();
    const context = { ...base.requestContext, domainName: 'demo.cn-hangzhou.fcapp.run' };
    const sent = parseFcEvent({ ...base, headers: { Host: 'api.example.com' }, requestContext: context });
    expect(sent.headers.host).toBe('api.example.com');
    expect(parseFcEvent({ ...base, headers: {}, requestContext: context }).headers.host).toBe(
      'demo.cn-hangzhou.fcapp.run',
    );
  });

  it('refuses a base64 body whose length is no multiple of 4 (a cut body) with 400 InvalidBody', () => {
    const cut = { ...event({ method: 'POST' }), body: 'aGVsbG8', isBase64Encoded: true };
    expect(() => parseFcEvent(cut)).toThrow(expect.objectContaining({ code: 'InvalidBody', statusCode: 400 }));
    expect(parseFcEvent({ ...cut, body: 'aGVsbG8=' }).body.toString()).toBe('hello');
  });

  it('decodes base64 only for isBase64Encoded: true; any other value leaves the body as the text it is', () => {
    const body = parseFcEvent({ ...event({ method: 'POST', body: 'abcd' }), isBase64Encoded: 'false' }).body;
    expect(body.toString('utf8')).toBe('abcd');
  });

  it("gives the app a lower-case method upper-cased, and answers a lower-case 'head' without a body", async () => {
    const handler = createFcHandler(
      (req, res) => {
        res.setHeader('content-type', 'text/plain');
        res.end(`method ${req.method}`);
      },
      { env: {}, logger: memoryLogger() },
    );
    const get = await handler(event({ method: 'get' }), {});
    expect(get.body).toBe('method GET');
    const head = await handler(event({ method: 'head' }), {});
    expect(head).toMatchObject({ statusCode: 200, body: '' });
    expect(head.headers['content-length']).toBe('11');
  });

  it('takes Transfer-Encoding off the request: the body is whole, and its Content-Length says so', async () => {
    const result = await echo()(
      {
        ...event({ method: 'POST', headers: { 'Transfer-Encoding': 'chunked', 'Content-Type': 'text/plain' } }),
        body: 'héllo',
      },
      {},
    );
    const seen = JSON.parse(result.body);
    expect(seen.headers['transfer-encoding']).toBeUndefined();
    expect(seen.headers['content-length']).toBe('6');
    expect(Buffer.from(seen.body, 'base64').toString('utf8')).toBe('héllo');
  });
});

describe('toFcHttpResult: the answer FC sees', () => {
  const classify = createBodyClassifier();

  it("keeps a HEAD answer's own content-length, whatever body the app wrote", () => {
    const res = { statusCode: 200, headers: { 'content-length': '1048576' }, body: 'first chunk' };
    expect(toFcHttpResult(res, 'HEAD', classify)).toMatchObject({ body: '', headers: { 'content-length': '1048576' } });
  });

  it('hands FC no hop-by-hop header: transfer-encoding, connection and keep-alive are the connection’s', () => {
    expect(
      flattenHeaders({
        'transfer-encoding': 'chunked',
        connection: 'keep-alive',
        'keep-alive': 'timeout=5',
        etag: '"1"',
      }),
    ).toEqual({ etag: '"1"' });
  });

  it('gives a 1xx answer no body, as a 204 or a 304', () => {
    const res = { statusCode: 101, headers: { 'content-type': 'text/plain' }, body: 'upgrade me' };
    expect(toFcHttpResult(res, 'GET', classify)).toMatchObject({ statusCode: 101, body: '', isBase64Encoded: false });
  });
});

describe('FC 2.0 (req, resp, context)', () => {
  const request = (fields: Record<string, unknown>) =>
    Object.assign(Readable.from([]), { method: 'GET', path: '/', headers: {}, queries: {}, ...fields });

  it('joins a repeated Cookie header with "; ", as a browser sends it, so cookie parsers read every cookie', async () => {
    const { resp, sent } = fc2Response();
    await echo()(
      request({ headers: { Cookie: ['a=1', 'b=2'], Accept: ['text/html', 'text/plain'] } }) as never,
      resp,
      {},
    );
    const seen = JSON.parse(sent.body);
    expect(seen.headers.cookie).toBe('a=1; b=2');
    expect(seen.headers.accept).toBe('text/html, text/plain');
  });

  it('gives a path without its leading slash one', async () => {
    const { resp, sent } = fc2Response();
    await echo()(request({ path: 'jobs/1', queries: { a: '1' } }) as never, resp, {});
    expect(JSON.parse(sent.body).url).toBe('/jobs/1?a=1');
  });

  it('sends no body for a HEAD request nor a 204 or 304, whatever the app wrote', async () => {
    const handler = createFcHandler(
      (req, res) => {
        res.statusCode = Number(req.url?.slice(1)) || 200;
        res.end('a body');
      },
      { env: {}, logger: memoryLogger() },
    );
    for (const [method, path, status] of [
      ['HEAD', '/', 200],
      ['GET', '/204', 204],
      ['GET', '/304', 304],
    ] as const) {
      const { resp, sent } = fc2Response();
      await handler(request({ method, path }) as never, resp, {});
      expect(sent).toMatchObject({ status, body: '', sends: 1 });
    }
  });
});

describe("the answer limit (FC's 32 MB under fc-async dev)", () => {
  const request = { method: 'GET', url: '/', headers: {}, body: Buffer.alloc(0) };
  const limit: AnswerLimit = { bytes: 10, tooLarge: () => new Error('too large') };

  it('counts the UTF-8 bytes of a text answer, not its characters: 6 characters of 2 bytes are past 10', async () => {
    await expect(runBridged((_req, res) => res.end('é'.repeat(6)), request, undefined, limit)).rejects.toThrow(
      'too large',
    );
    const split = runBridged(
      (_req, res) => {
        res.write('éé');
        res.write('éééé', () => {});
      },
      request,
      undefined,
      limit,
    );
    await expect(split).rejects.toThrow('too large');
  });
});

describe('the bridge: what the app writes is what FC gets, and what it reads is what FC sent', () => {
  it('decodes the chunks an app writes with an encoding (hex, base64, latin1) to their bytes', async () => {
    const handler = createFcHandler(
      (_req, res) => {
        res.setHeader('content-type', 'application/octet-stream');
        res.write('00ff10', 'hex');
        res.write('caf\u00e9', 'latin1');
        res.end('AAE=', 'base64');
      },
      { env: {}, logger: memoryLogger() },
    );
    const result = await handler(event(), {});
    expect(result.isBase64Encoded).toBe(true);
    expect([...Buffer.from(result.body, 'base64')]).toEqual([0x00, 0xff, 0x10, 0x63, 0x61, 0x66, 0xe9, 0x00, 0x01]);
  });

  it('gives the app rawHeaders, name and value pairs, one pair per value of a repeated header', async () => {
    let raw: string[] = [];
    const handler = createFcHandler(
      (req, res) => {
        raw = req.rawHeaders;
        res.end();
      },
      { env: {}, logger: memoryLogger() },
    );
    const { resp } = fc2Response();
    const request = Object.assign(Readable.from([]), {
      method: 'GET',
      path: '/',
      headers: { Accept: 'text/html', 'X-Tag': ['a', 'b'] },
      queries: {},
    });
    await handler(request as never, resp, {});
    expect(raw).toEqual(expect.arrayContaining(['accept', 'text/html', 'x-tag', 'a, b']));
    expect(raw.length % 2).toBe(0);
    const names = raw.filter((_, i) => i % 2 === 0);
    expect(names).toContain('x-fc-request-id');
  });

  it("names the invocation by FC's context.requestId, never by an X-Fc-Request-Id the caller sent", async () => {
    const seen: unknown[] = [];
    const handler = createFcHandler(
      (req, res) => {
        seen.push(getInvocation(req)?.requestId, req.headers['x-fc-request-id']);
        res.end();
      },
      { env: {}, logger: memoryLogger() },
    );
    const spoofed = event({ headers: { 'X-Fc-Request-Id': 'chosen-by-caller' } });
    await handler(spoofed, { requestId: '1-64f6d6e7-e01edb1cce58240ed59b59d9' });
    expect(seen).toEqual(['1-64f6d6e7-e01edb1cce58240ed59b59d9', '1-64f6d6e7-e01edb1cce58240ed59b59d9']);
  });
});

describe('errors: what the caller and the log are told', () => {
  it('answers an app that throws with a generic 500: neither its message nor its stack, which go to the log', async () => {
    const logger = memoryLogger();
    const failure = new Error('connect to postgres://admin:hunter2@db failed');
    const app = () => {
      throw failure;
    };
    const result = await createFcHandler(app, { env: {}, logger })(event(), { requestId: 'req-throws' });
    expect(result.statusCode).toBe(500);
    expect(JSON.parse(result.body)).toEqual({ code: 'InternalError', message: 'Internal Server Error' });
    const { resp, sent } = fc2Response();
    const fc2 = Object.assign(Readable.from([]), { method: 'GET', path: '/', headers: {}, queries: {} });
    await createFcHandler(app, { env: {}, logger })(fc2 as never, resp, {});
    expect(sent.status).toBe(500);
    expect(JSON.parse(sent.body)).toEqual({ code: 'InternalError', message: 'Internal Server Error' });
    expect(logger.entries.map((e) => [e.level, e.fields?.error])).toEqual([
      ['error', failure],
      ['error', failure],
    ]);
  });

  it('logs an error an app already logged with logAppError, then destroyed its response with, once', async () => {
    const logger = memoryLogger();
    const failure = new Error('upstream reset');
    const handler = createFcHandler(
      (req, res) => {
        logAppError(logger, 'raw', failure, getInvocation(req));
        res.destroy(failure);
      },
      { env: {}, logger },
    );
    const result = await handler(event(), { requestId: 'req-once' });
    expect(result.statusCode).toBe(500);
    expect(logger.entries.filter((e) => e.level === 'error')).toEqual([
      { level: 'error', message: 'raw app failed', fields: { error: failure, requestId: 'req-once' } },
    ]);
  });

  it('logs a 503 whose cause is a failure under fc-async (a store away) as an error, a bare one (closing) as a refusal', () => {
    const logger = memoryLogger();
    const cause = new Error('connect ECONNREFUSED 127.0.0.1:6379');
    const away = new FcAsyncError('ServiceUnavailable', 'The task store is away', { statusCode: 503, cause });
    expect(errorResponse(away, logger, 'req-away').statusCode).toBe(503);
    const closing = new FcAsyncError('ServiceUnavailable', 'The function is shutting down', { statusCode: 503 });
    expect(errorResponse(closing, logger, 'req-closing').statusCode).toBe(503);
    expect(logger.entries.map((e) => [e.level, e.message])).toEqual([
      ['error', 'requests refused with 503 ServiceUnavailable'],
      ['warn', 'requests refused with 503: the function is shutting down'],
    ]);
    expect(logger.entries[0]?.fields?.error).toBe(away);
  });

  it("reads a thrown plain object's message, as a task's error message says it", () => {
    expect(thrownError({ status: 409, message: 'order already paid' }).message).toBe('order already paid');
    expect(thrownText({ message: 'order already paid' })).toEqual({ message: 'order already paid', name: 'Error' });
    expect(thrownError({ message: 42 }).message).toBe('[object Object]');
  });

  it('logs an FcAsyncError of status 500 an app throws as a failure, with the error, and answers its { code, message }', async () => {
    const logger = memoryLogger();
    const failure = new FcAsyncError('TranscodeFailed', 'ffmpeg exited with 1');
    const handler = createFcHandler(
      () => {
        throw failure;
      },
      { env: {}, logger },
    );
    const result = await handler(event(), { requestId: 'req-500' });
    expect(result.statusCode).toBe(500);
    expect(JSON.parse(result.body)).toEqual({ code: 'TranscodeFailed', message: 'ffmpeg exited with 1' });
    expect(logger.entries).toEqual([
      { level: 'error', message: 'invocation failed', fields: { requestId: 'req-500', error: failure } },
    ]);
  });

  it("logs a malformed event's refusal under FC's request id, so the 400 can be found in the logs", async () => {
    const logger = memoryLogger();
    const handler = createFcHandler((_req, res) => res.end('x'), { env: {}, logger });
    const result = await handler(Buffer.from('{not json'), { requestId: 'req-bad-event' });
    expect(result.statusCode).toBe(400);
    expect(logger.entries).toEqual([
      expect.objectContaining({
        level: 'warn',
        fields: expect.objectContaining({ requestId: 'req-bad-event', code: 'InvalidEvent' }),
      }),
    ]);
  });
});

describe("sync or async, by FC's headers", () => {
  it.each([
    ['1.5', /whole number/],
    ['2abc', /whole number/],
    ['-1', /whole number/],
  ])('refuses x-fc-retry-count %j with 400 InvalidArgument', (retry, message) => {
    expect(() => detectInvocation({ 'x-fc-retry-count': retry })).toThrow(
      expect.objectContaining({ statusCode: 400, code: 'InvalidArgument', message: expect.stringMatching(message) }),
    );
  });

  it('reads an invocation type and a retry count with spaces around them', () => {
    expect(detectInvocation({ 'x-fc-invocation-type': ' Async ' })).toMatchObject({ type: 'Async' });
    expect(detectInvocation({ 'x-fc-retry-count': ' 2 ' })).toMatchObject({ type: 'Async', attempt: 2 });
  });

  it('keeps a sync call with a task id sync: X-Fc-Invocation-Type: Sync outranks the task id', () => {
    expect(detectInvocation({ 'x-fc-invocation-type': 'Sync', 'x-fc-async-task-id': 'job_1' })).toMatchObject({
      type: 'Sync',
      taskId: 'job_1',
      source: 'invocation-type',
    });
  });

  it('platform mode: answers a refused first sync call (retry count 0) with its 400, not a failure FC retries', async () => {
    const handler = createFcHandler((_req, res) => res.end('x'), {
      env: {},
      logger: memoryLogger(),
      async: { mode: 'platform' },
    });
    const refused = event({ headers: { 'X-Fc-Async-Task-Id': 'not valid', 'X-Fc-Retry-Count': '0' } });
    const result = await handler(refused, { requestId: '1-64f6d6e7-e01edb1cce58240ed59b59d9' });
    expect(result.statusCode).toBe(400);
    expect(JSON.parse(result.body)).toMatchObject({ code: 'InvalidArgument' });
  });

  it('local mode under a queue in front (context.retryCount): a refused async attempt fails, so the queue counts it', async () => {
    const runs: string[] = [];
    const handler = createFcHandler(
      (req, res) => {
        runs.push(String(req.url));
        res.end('x');
      },
      { env: {}, logger: memoryLogger() },
    );
    const refused = event({ headers: { 'X-Fc-Invocation-Type': 'Async', 'X-Fc-Async-Task-Id': 'not valid' } });
    await expect(handler(refused, { requestId: '1-64f6d6e7-e01edb1cce58240ed59b59d9', retryCount: 0 })).rejects.toThrow(
      expect.objectContaining({ code: 'UnhandledInvocationError' }),
    );
    expect(runs).toEqual([]);
  });
});

describe('getInvocation: what the app is told of its invocation', () => {
  /** The invocation the app saw for an FC 3.0 event and context. */
  async function invocationOf(headers: Record<string, string>, context: Record<string, unknown>) {
    let seen: ReturnType<typeof getInvocation>;
    const handler = createFcHandler(
      (req, res) => {
        seen = getInvocation(req);
        res.end();
      },
      { env: {}, logger: memoryLogger() },
    );
    await handler(event({ headers }), { requestId: '1-64f6d6e7-e01edb1cce58240ed59b59d9', ...context });
    return seen;
  }

  it("never carries FC's credentials, from the runtime's context or from the x-fc-* headers", async () => {
    const inv = await invocationOf(
      {
        'X-Fc-Access-Key-Id': 'AKID-HEADER',
        'X-Fc-Access-Key-Secret': 'SECRET-HEADER',
        'X-Fc-Security-Token': 'TOKEN-HEADER',
      },
      { credentials: { accessKeyId: 'AKID-CTX', accessKeySecret: 'SECRET-CTX', securityToken: 'TOKEN-CTX' } },
    );
    expect(inv?.requestId).toBe('1-64f6d6e7-e01edb1cce58240ed59b59d9');
    const text = JSON.stringify(inv);
    for (const secret of ['AKID', 'SECRET', 'TOKEN']) expect(text).not.toContain(secret);
    expect(Object.keys(inv ?? {}).filter((k) => /cred|key|secret|token/i.test(k))).toEqual([]);
  });

  it('gives timeoutSeconds only for a positive, finite timeout FC said', async () => {
    expect((await invocationOf({}, { function: { name: 'f', timeout: 30 } }))?.timeoutSeconds).toBe(30);
    expect((await invocationOf({ 'X-Fc-Function-Timeout': '60' }, {}))?.timeoutSeconds).toBe(60);
    expect((await invocationOf({}, { function: { name: 'f', timeout: 0 } }))?.timeoutSeconds).toBeUndefined();
    expect((await invocationOf({ 'X-Fc-Function-Timeout': 'Infinity' }, {}))?.timeoutSeconds).toBeUndefined();
    expect((await invocationOf({ 'X-Fc-Function-Timeout': '-5' }, {}))?.timeoutSeconds).toBeUndefined();
  });
});
