import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { createFcHandler, parseFcEvent } from '../src/index.js';
import { event, fc2Response, memoryLogger } from './helpers.js';

const echo = () =>
  createFcHandler(
    (req, res) => {
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ method: req.method, url: req.url, headers: req.headers }));
    },
    { env: {}, logger: memoryLogger() },
  );

describe('FC 3.0 events with fields of the wrong shape', () => {
  it.each([
    ['headers that are an array', { headers: ['a', 'b'] }, 'The event headers must be an object'],
    ['queryParameters that are an array', { queryParameters: ['a'] }, 'The event queryParameters must be an object'],
  ])('refuses %s with 400 InvalidEvent', (_label, fields, message) => {
    const input = { ...event(), ...fields };
    expect(() => parseFcEvent(input)).toThrow(
      expect.objectContaining({ code: 'InvalidEvent', statusCode: 400, message }),
    );
  });

  it('takes any HTTP method token, such as M-SEARCH', () => {
    expect(parseFcEvent(event({ method: 'M-SEARCH' })).method).toBe('M-SEARCH');
  });
});

describe('FC 2.0 requests with fields of the wrong shape', () => {
  const request = (fields: Record<string, unknown>) =>
    Object.assign(Readable.from([]), { method: 'POST', path: '/', headers: {}, queries: {}, ...fields });

  it.each([
    ['a number body', { body: 5 }, 'The FC 2.0 request body must be a Buffer or a string'],
    ['an object body', { body: { a: 1 } }, 'The FC 2.0 request body must be a Buffer or a string'],
    ['headers that are a string', { headers: 'abc' }, 'The FC 2.0 request headers must be an object'],
    ['queries that are a string', { queries: 'a=1' }, 'The FC 2.0 request queries must be an object'],
    ['a method that is not an HTTP token', { method: 'G E T' }, 'The FC 2.0 request has no valid method'],
  ])('answers %s with 400 InvalidEvent, without logging an error', async (_label, fields, message) => {
    const logger = memoryLogger();
    const handler = createFcHandler((_req, res) => res.end('x'), { env: {}, logger });
    const { resp, sent } = fc2Response();
    await handler(request(fields) as never, resp, {});
    expect(sent.status).toBe(400);
    expect(JSON.parse(sent.body)).toEqual({ code: 'InvalidEvent', message });
    expect(logger.entries.filter((e) => e.level === 'error')).toEqual([]);
  });

  it('still takes a Buffer, a Uint8Array or a string body', async () => {
    const handler = createFcHandler(
      async (req, res) => {
        const chunks: Buffer[] = [];
        for await (const chunk of req) chunks.push(chunk as Buffer);
        res.end(Buffer.concat(chunks));
      },
      { env: {}, logger: memoryLogger() },
    );
    for (const body of [Buffer.from('abc'), new Uint8Array([97, 98, 99]), 'abc']) {
      const { resp, sent } = fc2Response();
      await handler(request({ body }) as never, resp, {});
      expect(sent).toMatchObject({ status: 200, body: 'abc', sends: 1 });
    }
  });

  it('still takes a lower-case method and a missing headers map', async () => {
    const { resp, sent } = fc2Response();
    await echo()(request({ method: 'get', headers: undefined }) as never, resp, {});
    expect(sent.status).toBe(200);
    expect(JSON.parse(sent.body)).toMatchObject({ method: 'GET', url: '/' });
  });
});

describe('an answer FC cannot carry: more than 512 cookies', () => {
  // FC 3.0's headers map holds one value per name, so each cookie takes a case variant of
  // `set-cookie`, of which there are 512. One more is the app's failure, answered as one.
  const cookies = (count: number, logger = memoryLogger()) =>
    createFcHandler(
      (_req, res) => {
        res.setHeader(
          'set-cookie',
          Array.from({ length: count }, (_, i) => `c${i}=1`),
        );
        res.end('ok');
      },
      { env: {}, logger },
    );
  const cookieNames = (headers: Record<string, unknown>) =>
    Object.keys(headers).filter((name) => name.toLowerCase() === 'set-cookie');

  it('FC 3.0: answers the generic 500 and logs why, rather than rejecting', async () => {
    const logger = memoryLogger();
    const result = await cookies(513, logger)(event({ path: '/login' }), { requestId: 'req-cookies' });
    expect([result.statusCode, JSON.parse(result.body), cookieNames(result.headers)]).toEqual([
      500,
      { code: 'InternalError', message: 'Internal Server Error' },
      [],
    ]);
    const errors = logger.entries.filter((e) => e.level === 'error');
    expect(
      errors.map((e) => [e.message, e.fields?.requestId, (e.fields?.error as Error | undefined)?.message]),
    ).toEqual([['invocation failed', 'req-cookies', 'More than 512 Set-Cookie headers in one response']]);
  });

  it('FC 2.0: answers the generic 500 through resp, rather than rejecting', async () => {
    const { resp, sent } = fc2Response();
    const req = Object.assign(Readable.from([]), { method: 'GET', path: '/login', headers: {}, queries: {} });
    await cookies(513)(req as never, resp, { requestId: 'req-cookies-2' });
    expect([sent.status, JSON.parse(sent.body), sent.sends, cookieNames(sent.headers)]).toEqual([
      500,
      { code: 'InternalError', message: 'Internal Server Error' },
      1,
      [],
    ]);
  });

  it('still carries 512 cookies, each under a name of its own', async () => {
    const result = await cookies(512)(event(), {});
    expect([result.statusCode, cookieNames(result.headers).length]).toEqual([200, 512]);
  });
});
