import { Readable } from 'node:stream';
import { runInNewContext } from 'node:vm';
import { describe, expect, it, vi } from 'vitest';
import {
  createFcHandler,
  fcHttpEvent,
  fcQueryParameters,
  isFcRequestId,
  isFcTextBody,
  parseFcEvent,
} from '../src/index.js';

describe('fcHttpEvent', () => {
  it('builds the event FC hands a built-in runtime: names canonical, path and query split, context filled', () => {
    const at = Date.UTC(2026, 0, 2, 3, 4, 5, 678);
    const event = fcHttpEvent({
      method: 'PUT',
      url: '/caf%C3%A9/jobs?tag=a&tag=b&q=hello+world',
      headers: {
        host: 'demo.cn-hangzhou.fcapp.run',
        'user-agent': 'curl/8',
        'x-trace': ['1', '2'],
        skipped: undefined,
      },
      body: 'plain',
      sourceIp: '203.0.113.7',
      requestId: 'req-1',
      accountId: '123',
      timeEpoch: at,
    });
    expect(event).toEqual({
      version: 'v1',
      rawPath: '/caf%C3%A9/jobs',
      // A string is text, as fetch sends it: a Fastify or body-parser route takes it.
      body: 'plain',
      isBase64Encoded: false,
      headers: {
        'Content-Type': 'text/plain; charset=utf-8',
        Host: 'demo.cn-hangzhou.fcapp.run',
        'User-Agent': 'curl/8',
        'X-Trace': '1,2',
      },
      queryParameters: { tag: 'a,b', q: 'hello world' },
      requestContext: {
        accountId: '123',
        domainName: 'demo.cn-hangzhou.fcapp.run',
        domainPrefix: 'demo',
        http: { method: 'PUT', path: '/café/jobs', protocol: 'HTTP/1.1', sourceIp: '203.0.113.7', userAgent: 'curl/8' },
        requestId: 'req-1',
        time: '2026-01-02T03:04:05Z',
        timeEpoch: String(at),
      },
    });
  });

  it('sends an object as JSON text with its content type, and bytes of other types as base64', () => {
    const json = fcHttpEvent({ method: 'POST', body: { video: 'a.mov' } });
    expect(json).toMatchObject({
      body: '{"video":"a.mov"}',
      isBase64Encoded: false,
      headers: { 'Content-Type': 'application/json' },
    });
    const png = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0, 255]);
    const binary = fcHttpEvent({ method: 'POST', headers: { 'content-type': 'image/png' }, body: png });
    expect(binary).toMatchObject({ body: png.toString('base64'), isBase64Encoded: true });
    const typed = fcHttpEvent({ headers: { 'Content-Type': 'text/plain' }, body: { not: 'json' } });
    expect(typed.headers).toEqual({ 'Content-Type': 'text/plain' });
    // A string with a type of its own keeps it: not one of FC's text types, so base64.
    const octets = fcHttpEvent({ headers: { 'content-type': 'application/octet-stream' }, body: 'raw' });
    expect(octets).toMatchObject({ body: Buffer.from('raw').toString('base64'), isBase64Encoded: true });
    expect(fcHttpEvent()).toMatchObject({ rawPath: '/', body: '', isBase64Encoded: false, headers: {} });
  });

  it('takes bytes of every kind, a form, an absolute URL and header names that differ only in case', () => {
    const png = Uint8Array.from([0x89, 0x50, 0x4e, 0x47, 0, 255]);
    const base64 = Buffer.from(png).toString('base64');
    const headers = { 'content-type': 'image/png' };
    for (const body of [png.buffer, new DataView(png.buffer), Uint16Array.from([0x5089, 0x474e, 0xff00])]) {
      expect(fcHttpEvent({ method: 'POST', headers, body })).toMatchObject({ body: base64, isBase64Encoded: true });
    }
    const form = fcHttpEvent({ method: 'POST', body: new URLSearchParams({ a: '1', b: 'x y' }) });
    // Not one of FC's text types: base64, as FC sends a form.
    expect([
      Buffer.from(String(form.body), 'base64').toString(),
      form.isBase64Encoded,
      form.headers?.['Content-Type'],
    ]).toEqual(['a=1&b=x+y', true, 'application/x-www-form-urlencoded']);
    const absolute = fcHttpEvent({ url: 'http://api.example.com:8080/x%20y?q=1' });
    expect([absolute.rawPath, absolute.queryParameters, absolute.headers?.Host]).toEqual([
      '/x%20y',
      { q: '1' },
      'api.example.com:8080',
    ]);
    // No dot segment resolved, an escape kept as it is, a space encoded as a client sends it.
    expect(fcHttpEvent({ url: 'https://h/a/../caf%C3%A9 x?q#frag' }).rawPath).toBe('/a/../caf%C3%A9%20x');
    // A default header overridden in another case: the last one wins, as a test means it.
    const defaults = { 'content-type': 'text/plain', authorization: 'Bearer old' };
    const overridden = fcHttpEvent({
      headers: { ...defaults, 'Content-Type': 'application/json', Authorization: 'Bearer new' },
    });
    expect(overridden.headers).toEqual({ 'Content-Type': 'application/json', Authorization: 'Bearer new' });
  });

  it('encodes the URL as a client sends it, so rawPath is what FC hands over; the fragment is dropped', async () => {
    // What fetch sends for each: the WHATWG URL's path and query (dot segments aside, which it resolves).
    const urls = [
      '/files/a b ü',
      '/files/x?q=1#top',
      '/p"<>`{}|^\'~!$&()*+,;=:@/%zz%41%c3%a9?q=a b"\'<>`{}|^ü&r=%41%zz+x?y',
      '/\u0001\u007f\ud83d\ude00?\u0001\u007f\ud83d',
      'http://h/x y#frag?z',
      'https://u@h:8/?#',
    ];
    for (const url of urls) {
      const { pathname, search } = new URL(url, 'http://h');
      const event = fcHttpEvent({ url });
      const request = parseFcEvent(event);
      expect([event.rawPath, request.url]).toEqual([
        pathname,
        parseFcEvent(fcHttpEvent({ url: pathname + search })).url,
      ]);
      expect(event.queryParameters).toEqual(fcQueryParameters(search.slice(1)));
    }
    const handler = createFcHandler((req, res) => res.setHeader('content-type', 'text/plain').end(req.url), {
      async: { mode: 'local' },
      env: {},
    });
    const seen = async (url: string) => (await handler(fcHttpEvent({ url }))).body;
    expect(await seen('/files/a b ü')).toBe('/files/a%20b%20%C3%BC');
    expect(await seen('/files/x?q=1#top')).toBe(await seen('http://h/files/x?q=1#top'));
    expect(fcHttpEvent({ url: '/files/x?q=1#top' }).queryParameters).toEqual({ q: '1' });
    await handler.close();
  });

  it('gives requestContext.time for a time in the first second of 1970 too', async () => {
    // A fresh module: the first event it builds is at 0, as under vi.setSystemTime(0).
    vi.resetModules();
    const fresh = await import('../src/fc3-event.js');
    const time = (timeEpoch: number) => fresh.fcHttpEvent({ timeEpoch }).requestContext?.time;
    expect([time(0), time(999), time(1000)]).toEqual([
      '1970-01-01T00:00:00Z',
      '1970-01-01T00:00:00Z',
      '1970-01-01T00:00:01Z',
    ]);
  });

  it('takes the last time whose request id is in FC format', () => {
    const { requestId = '', time } = fcHttpEvent({ timeEpoch: 2 ** 32 * 1000 - 1 }).requestContext ?? {};
    expect([isFcRequestId(requestId), requestId.slice(0, 11), time]).toEqual([
      true,
      '1-ffffffff-',
      '2106-02-07T06:28:15Z',
    ]);
  });

  it('refuses a body it would send as an empty object; a Map or Set with toJSON is JSON', () => {
    for (const body of [new Map([['a', 1]]), new Set([1]), new Blob(['x'])]) {
      expect(() => fcHttpEvent({ method: 'POST', body })).toThrow(/Expected `body` to be a string, bytes or an object/);
    }
    class Tags extends Set<string> {
      toJSON() {
        return [...this];
      }
    }
    expect(fcHttpEvent({ method: 'POST', body: new Tags(['a']) }).body).toBe('["a"]');
  });

  it('refuses a body that is not its bytes yet, saying how to get them: a form, a stream, a promise', async () => {
    const form = new FormData();
    form.append('file', new Blob([new Uint8Array([0, 1, 255])]), 'a.bin');
    const unread: [unknown, RegExp][] = [
      [form, /FormData: encode it first/],
      [new Blob(['x']).stream(), /a stream: read it first/],
      [Readable.from(['x']), /a stream: read it first/],
      [new Blob(['x']).arrayBuffer(), /a promise: await it first/],
    ];
    for (const [body, why] of unread) {
      expect(() => fcHttpEvent({ method: 'POST', body: body as object })).toThrow(why);
    }
    // The way the message gives works: multer and busboy get the multipart body it encodes.
    const encoded = new Response(form);
    const event = fcHttpEvent({
      method: 'POST',
      headers: { 'content-type': encoded.headers.get('content-type') ?? undefined },
      body: Buffer.from(await encoded.arrayBuffer()),
    });
    expect(event.isBase64Encoded).toBe(true);
    expect(Buffer.from(event.body ?? '', 'base64').includes(Buffer.from([0, 1, 255]))).toBe(true);
  });

  it('takes an ArrayBuffer from another realm, and a SharedArrayBuffer, as bytes', () => {
    const headers = { 'content-type': 'application/octet-stream' };
    const foreign = runInNewContext('new Uint8Array([1, 2, 3]).buffer') as ArrayBuffer;
    expect(fcHttpEvent({ method: 'POST', headers, body: foreign }).body).toBe(
      Buffer.from([1, 2, 3]).toString('base64'),
    );
    const shared = new SharedArrayBuffer(2);
    new Uint8Array(shared).set([7, 8]);
    expect(fcHttpEvent({ method: 'POST', headers, body: shared }).body).toBe(Buffer.from([7, 8]).toString('base64'));
  });

  it('is what parseFcEvent reads and a handler answers, async calls included', async () => {
    const body = Buffer.from('{"n":1}');
    const request = parseFcEvent(
      fcHttpEvent({ method: 'POST', url: '/x?a=1', headers: { 'content-type': 'application/json' }, body }),
    );
    expect(request).toMatchObject({ method: 'POST', url: '/x?a=1', body });
    expect(request.headers['content-type']).toBe('application/json');
    const handler = createFcHandler(
      (req, res) => res.setHeader('content-type', 'text/plain').end(`${req.method} ${req.url}`),
      {
        async: { mode: 'local' },
        env: {},
      },
    );
    expect(await handler(fcHttpEvent({ url: '/hello' }))).toMatchObject({ statusCode: 200, body: 'GET /hello' });
    const accepted = await handler(
      fcHttpEvent({
        method: 'POST',
        url: '/job',
        headers: { 'x-fc-invocation-type': 'Async', 'x-fc-async-task-id': 'job_1' },
      }),
    );
    expect(accepted).toMatchObject({ statusCode: 202, headers: { 'x-fc-async-task-id': 'job_1' } });
    await handler.drain();
    expect((await handler.tasks.get('job_1'))?.status).toBe('Succeeded');
  });
});

describe('parseFcEvent headers', () => {
  it('keeps header names that are Object property names as the values sent, first seen or not', () => {
    const event = { version: 'v1', rawPath: '/', requestContext: { http: { method: 'GET' } }, body: '' };
    for (let round = 0; round < 2; round++) {
      const joined = parseFcEvent({
        ...event,
        headers: { Constructor: 'y', 'X-A': '1', 'x-a': '2' },
      }).headers;
      expect({ ...joined }).toEqual({ constructor: 'y', 'x-a': '1,2' });
      // A header named `__proto__` (JSON.parse makes it an own key, as FC's event JSON does).
      const proto = parseFcEvent({ ...event, headers: JSON.parse('{"__proto__":"p","Accept":"a"}') }).headers;
      expect([Object.keys(proto), Object.getOwnPropertyDescriptor(proto, '__proto__')?.value, proto.accept]).toEqual([
        ['__proto__', 'accept'],
        'p',
        'a',
      ]);
    }
  });
});

describe('fcQueryParameters and isFcTextBody', () => {
  it('decode a query as FC does and tell FC text types', () => {
    expect(fcQueryParameters('a=%2F&a=2&flag&=x&&b=c%ZZ')).toEqual({ a: '/,2', flag: '', '': 'x', b: 'c%ZZ' });
    // Names that are Object's own are names like any other.
    const odd = fcQueryParameters('constructor=z&toString=1&__proto__=p&__proto__=q');
    expect([{ ...odd }, Object.getOwnPropertyDescriptor(odd, '__proto__')?.value]).toEqual([
      { constructor: 'z', toString: '1', ['__proto__']: 'p,q' },
      'p,q',
    ]);
    expect(
      ['text/csv', 'application/json; charset=utf-8', 'APPLICATION/XML', 'image/png', undefined].map(isFcTextBody),
    ).toEqual([true, true, true, false, false]);
  });
});
