import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { buildQuery, createFcHandler, encodePath, parseFcEvent } from '../src/index.js';
import { event, fc2Response, memoryLogger } from './helpers.js';

/** The cases the fuzz tests (fuzz-handler.test.ts) found, kept as plain tests. */

/** A handler whose app answers with what it saw, the client address included. */
function echo() {
  const logger = memoryLogger();
  const handler = createFcHandler(
    (req, res) => {
      res.setHeader('content-type', 'application/json');
      const peer = { ip: req.socket.remoteAddress, family: req.socket.remoteFamily };
      res.end(JSON.stringify({ url: req.url, headers: req.headers, peer }));
    },
    { env: {}, logger },
  );
  return { handler, logger, errors: () => logger.entries.filter((e) => e.level === 'error') };
}

/** Sends an FC 2.0 request through the handler; resolves with the status and the parsed body. */
async function fc2(handler: ReturnType<typeof echo>['handler'], fields: Record<string, unknown>) {
  const { resp, sent } = fc2Response();
  const req = Object.assign(Readable.from([]), { method: 'GET', path: '/', headers: {}, queries: {}, ...fields });
  await handler(req as never, resp, {});
  return { status: sent.status, body: JSON.parse(sent.body) as Record<string, unknown> };
}

describe('paths and query values outside ASCII', () => {
  it('encodes a path with a character outside the BMP (an emoji) instead of failing with a 500', async () => {
    expect(encodePath('/😀/x')).toBe('/%F0%9F%98%80/x');
    const { handler, errors } = echo();
    // FC 2.0 hands the path decoded.
    expect(await fc2(handler, { path: '/😀/x' })).toMatchObject({ status: 200, body: { url: '/%F0%9F%98%80/x' } });
    // An FC 3.0 event without rawPath falls back on requestContext.http.path, decoded too.
    const e = { ...event(), rawPath: undefined };
    (e.requestContext?.http as { path: string }).path = '/caf😀';
    const result = await handler(e, {});
    expect(result.statusCode).toBe(200);
    expect(JSON.parse(result.body)).toMatchObject({ url: '/caf%F0%9F%98%80' });
    expect(errors()).toEqual([]);
  });

  it('reads a lone surrogate in a path or a query value as U+FFFD, as a UTF-8 decoder would', async () => {
    expect(encodePath('/a\ud800b')).toBe('/a%EF%BF%BDb');
    expect(buildQuery({ q: 'x\udfff', '\ud800': '1' })).toBe('?q=x%EF%BF%BD&%EF%BF%BD=1');
    const { handler, errors } = echo();
    expect(await fc2(handler, { path: '/\ud800', queries: { q: '\udc00' } })).toMatchObject({
      status: 200,
      body: { url: '/%EF%BF%BD?q=%EF%BF%BD' },
    });
    const result = await handler(Buffer.from(JSON.stringify(event({ query: { q: 'a\ud800' } }))), {});
    expect(result.statusCode).toBe(200);
    expect(JSON.parse(result.body)).toMatchObject({ url: '/?q=a%EF%BF%BD' });
    expect(errors()).toEqual([]);
  });
});

describe('header and query values that are objects', () => {
  it.each([
    ['an object with a toString field, whose String() throws', { toString: 'x' }, 'an object'],
    ['a plain object, which used to reach the app as "[object Object]"', { a: 1 }, 'an object'],
    ['an array holding an object', ['a', { toString: 1 }], 'an array of other values'],
  ])('refuses an FC 3.0 header value that is %s with 400 InvalidEvent', async (_label, value, got) => {
    const { handler, errors } = echo();
    for (const headers of [{ 'X-Odd': value }, { 'x-odd': 'a', 'X-Odd': value }]) {
      // JSON, as FC passes the event: the value arrives exactly as a parsed event holds it.
      const text = JSON.stringify({ ...event(), headers });
      const result = await handler(Buffer.from(text), {});
      expect(result.statusCode).toBe(400);
      expect(JSON.parse(result.body)).toEqual({
        code: 'InvalidEvent',
        message: `The header "X-Odd" must be a string, got ${got}`,
      });
    }
    expect(errors()).toEqual([]);
  });

  it('still takes numbers, booleans and arrays of them as header values, and leaves null out', () => {
    const request = parseFcEvent({ ...event(), headers: { 'X-N': 3, 'X-B': true, 'X-L': ['a', 2], 'X-Null': null } });
    expect(request.headers).toMatchObject({ 'x-n': '3', 'x-b': 'true', 'x-l': 'a,2' });
    expect(request.headers).not.toHaveProperty('x-null');
  });

  it('refuses an FC 3.0 query value that is an object with 400 InvalidEvent', async () => {
    const { handler, errors } = echo();
    const result = await handler(JSON.stringify({ ...event(), queryParameters: { q: { toString: 'x' } } }), {});
    expect(result.statusCode).toBe(400);
    expect(JSON.parse(result.body)).toEqual({
      code: 'InvalidEvent',
      message: 'The query parameter "q" must be a string, got an object',
    });
    expect(errors()).toEqual([]);
  });

  it('refuses FC 2.0 headers and queries holding objects with 400 InvalidEvent', async () => {
    const { handler, errors } = echo();
    expect(await fc2(handler, { headers: { 'x-odd': { toString: true } } })).toEqual({
      status: 400,
      body: { code: 'InvalidEvent', message: 'The header "x-odd" must be a string, got an object' },
    });
    expect(await fc2(handler, { queries: { list: ['a', { toString: true }] } })).toEqual({
      status: 400,
      body: { code: 'InvalidEvent', message: 'The query parameter "list" must be a string, got an object' },
    });
    expect(await fc2(handler, { headers: { 'x-null': null, 'x-n': 1 }, queries: { a: ['1', null, 2] } })).toMatchObject(
      {
        status: 200,
        body: { url: '/?a=1&a=2', headers: { 'x-n': '1' } },
      },
    );
    expect(errors()).toEqual([]);
  });
});

describe('fields the handler reads on the side', () => {
  it('ignores a requestContext.timeEpoch that is an object instead of failing with a 500', async () => {
    const { handler, errors } = echo();
    const e = event();
    (e.requestContext as unknown as Record<string, unknown>).timeEpoch = { toString: 'x' };
    expect((await handler(JSON.stringify(e), {})).statusCode).toBe(200);
    expect(errors()).toEqual([]);
  });

  it('gives the app no client address for an FC 2.0 clientIP that is not a string, instead of a crash', async () => {
    const { handler, errors } = echo();
    expect(await fc2(handler, { clientIP: 12345 })).toMatchObject({ status: 200, body: { peer: { family: 'IPv4' } } });
    expect(await fc2(handler, { clientIP: '::1' })).toMatchObject({ body: { peer: { ip: '::1', family: 'IPv6' } } });
    expect(errors()).toEqual([]);
  });
});

describe('task queries holding values whose String() throws', () => {
  it('refuses each with 400 InvalidArgument instead of a TypeError', async () => {
    const handler = createFcHandler((_req, res) => res.end(), { logger: memoryLogger(), env: {} });
    const hostile = [{ toString: 1 }, Object.create(null), [{ toString: 1 }]];
    for (const key of ['status', 'limit', 'sortOrderByTime', 'startedTimeBegin', 'startedTimeEnd', 'prefix']) {
      for (const value of hostile) {
        await expect(handler.tasks.list({ [key]: value })).rejects.toMatchObject({
          code: 'InvalidArgument',
          statusCode: 400,
          message: expect.stringContaining(key),
        });
      }
    }
    await expect(handler.tasks.list({ includePayload: Object.create(null) })).rejects.toMatchObject({
      code: 'InvalidArgument',
    });
  });
});
