import { parseFcEvent } from '@fc-async/core';
import { describe, expect, it } from 'vitest';
import { buildFcEvent, type FunctionIdentity, type IncomingCall, requestFromCall } from '../src/event.js';

const fn: FunctionIdentity = {
  name: 'jobs',
  handler: 'index.handler',
  region: 'cn-hangzhou',
  accountId: '1234',
  qualifier: 'LATEST',
  memorySize: 512,
  timeout: 60,
};
const requestId = '1-64f6d6e7-e01edb1cce58240ed59b59d9';
const now = 1_700_000_000_123;

const call = (overrides: Partial<IncomingCall>): IncomingCall => ({
  method: 'POST',
  url: '/jobs',
  headers: { host: '127.0.0.1:9000', 'content-type': 'application/json', 'content-length': '7' },
  body: Buffer.from('{"a":1}'),
  sourceIp: '10.0.0.2',
  ...overrides,
});

// The trigger hands an fc-async handler the request its FC 3.0 event would parse into, without
// the event: the app must see exactly what it would see through the event.
const cases: [string, IncomingCall, boolean?][] = [
  ['a JSON POST', call({})],
  [
    'a GET without a body',
    call({ method: 'GET', url: '/', headers: { host: 'localhost:9000' }, body: Buffer.alloc(0) }),
  ],
  [
    'a query with repeated, encoded and plus-encoded values',
    call({ method: 'GET', url: '/a%20b/c?x=1&x=2&y=%C3%BC&z=a+b&flag&=v&w=%zz', body: Buffer.alloc(0) }),
  ],
  ['a URL that is not a path', call({ method: 'OPTIONS', url: '*', body: Buffer.alloc(0) })],
  [
    "FC's own headers from a client dropped, its async controls kept",
    call({
      headers: {
        host: 'h',
        'content-type': 'application/json',
        'x-fc-access-key-secret': 'stolen',
        'x-fc-retry-count': '5',
        'x-fc-request-id': 'forged',
        'x-fc-invocation-type': 'Async',
        'x-fc-async-task-id': 't1',
        'x-fc-async-delay': '10',
        'set-cookie': ['a=1', 'b=2'],
        cookie: 'sid=1; theme=dark',
      },
    }),
  ],
  [
    'a trusted replay keeps every x-fc- header',
    call({ headers: { host: 'h', 'x-fc-retry-count': '2', 'x-fc-request-id': 'old' } }),
    true,
  ],
  ['no host header', call({ headers: { 'content-type': 'text/plain' }, body: Buffer.from('hi') })],
  ['a binary body', call({ headers: { host: 'h', 'content-type': 'image/png' }, body: Buffer.from([0, 255, 1, 2]) })],
  [
    'a text body that is not valid UTF-8',
    call({
      headers: { host: 'h', 'content-type': 'text/plain; charset=utf-8' },
      body: Buffer.from([0x61, 0xc3, 0x28]),
    }),
  ],
  [
    'chunked, without a length',
    call({ headers: { host: 'h', 'content-type': 'application/json', 'transfer-encoding': 'chunked' } }),
  ],
  ['no source address', call({ sourceIp: undefined })],
];

describe('requestFromCall', () => {
  it.each(cases)('gives what parseFcEvent makes of buildFcEvent: %s', (_name, incoming, trusted = false) => {
    const direct = requestFromCall(incoming, fn, requestId, { trusted, now });
    const parsed = parseFcEvent(buildFcEvent(incoming, fn, requestId, trusted, now));
    expect(direct).toStrictEqual(parsed);
    // Same header order too: the app's rawHeaders and a task record's headers follow it.
    expect(Object.keys(direct?.headers ?? {})).toEqual(Object.keys(parsed.headers));
  });

  it('leaves a method the event parser would refuse to the event path', () => {
    expect(requestFromCall(call({ method: 'M-SEARCH' }), fn, requestId)).toBeUndefined();
  });
});

describe('body encoding by content type', () => {
  it('decides text or base64 for each request, whatever the type of the one before', () => {
    const types = ['application/json', 'application/octet-stream', 'application/json', 'TEXT/plain; charset=utf-8'];
    const encoded = [...types, ...types].map(
      (type) => buildFcEvent(call({ headers: { 'content-type': type } }), fn, requestId).isBase64Encoded,
    );
    expect(encoded).toEqual([false, true, false, false, false, true, false, false]);
  });
});
