import { createHmac } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { createServer, type IncomingHttpHeaders, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import type * as FcSdk from '@alicloud/fc20230330';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { SHUTTING_DOWN } from '../src/destinations/deliver.js';
import {
  checkDestinationSignature,
  type Destination,
  DestinationError,
  deliverRecord,
  type FcInvokeClient,
  fcFunctionDestination,
  functionDestination,
  httpDestination,
  isDestinationError,
  jsonlDestination,
  parseFunctionTarget,
  signDestinationPayload,
  verifyDestinationSignature,
} from '../src/destinations/index.js';
import type { DestinationContext } from '../src/destinations/types.js';
import type { DestinationRecord } from '../src/fc-types.js';
import type { Logger } from '../src/logger.js';

// ---------------------------------------------------------------- helpers

const PAYLOAD_SENTINEL = 'payload-sentinel-must-not-be-logged';

function makeRecord(
  requestId = '1-64f6d6e7-e01edb1cce58240ed59b59d9',
  condition: DestinationRecord['requestContext']['condition'] = '',
): DestinationRecord {
  return {
    timestamp: 1660120276975,
    requestContext: {
      requestId,
      functionArn: 'acs:fc:cn-hangzhou:123:functions/transcode',
      condition,
      approximateInvokeCount: 1,
    },
    requestPayload: JSON.stringify({ bucket: 'b', note: PAYLOAD_SENTINEL }),
    responseContext: { statusCode: 200, functionError: '' },
    responsePayload: `done ${PAYLOAD_SENTINEL} — ünïcødé`,
  };
}

interface Captured {
  method: string;
  url: string;
  headers: IncomingHttpHeaders;
  body: string;
}

interface TestServer {
  url: string;
  port: number;
  requests: Captured[];
  close(): Promise<void>;
}

const servers: TestServer[] = [];

async function startServer(
  respond: (req: Captured, res: ServerResponse, index: number) => void = (_req, res) => res.end(),
): Promise<TestServer> {
  const requests: Captured[] = [];
  const server = createServer((req: IncomingMessage, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const captured = {
        method: req.method ?? '',
        url: req.url ?? '',
        headers: req.headers,
        body: Buffer.concat(chunks).toString('utf8'),
      };
      requests.push(captured);
      respond(captured, res, requests.length - 1);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  const handle: TestServer = {
    url: `http://127.0.0.1:${port}`,
    port,
    requests,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
  servers.push(handle);
  return handle;
}

/** A port nothing listens on: bound once, then released. */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

interface Entry {
  level: string;
  message: string;
  fields?: Record<string, unknown>;
}

function memoryLogger(): Logger & { entries: Entry[] } {
  const entries: Entry[] = [];
  const at = (level: string) => (message: string, fields?: Record<string, unknown>) => {
    entries.push({ level, message, ...(fields ? { fields } : {}) });
  };
  return { entries, debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') };
}

/** A clock that only moves when the injected sleep is called; the sleeps it took in `delays`. */
function fakeTime(start = 1_700_000_000_000) {
  let now = start;
  const delays: number[] = [];
  const clock = {
    now: () => now,
    sleep: async (ms: number) => {
      delays.push(ms);
      now += ms;
    },
  };
  // Not an option of deliverRecord: kept out of `{ ...time }`.
  Object.defineProperty(clock, 'delays', { value: delays, enumerable: false });
  return clock as typeof clock & { readonly delays: number[] };
}

afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => s.close()));
});

// ---------------------------------------------------------------- signatures

describe('signatures', () => {
  const secret = 'whsec_test';
  const body = JSON.stringify(makeRecord());
  const nowMs = 1_700_000_000_000;
  const t = nowMs / 1000;

  it('produces `t=<seconds>,v1=<hex HMAC-SHA256(secret, t + "." + body)>`', () => {
    const header = signDestinationPayload(body, secret, { timestamp: t });
    const expected = createHmac('sha256', secret).update(`${t}.${body}`, 'utf8').digest('hex');
    expect(header).toBe(`t=${t},v1=${expected}`);
    expect(verifyDestinationSignature(body, header, secret, { now: nowMs })).toBe(true);
    expect(verifyDestinationSignature(Buffer.from(body, 'utf8'), header, secret, { now: nowMs })).toBe(true);
    expect(checkDestinationSignature(body, header, secret, { now: nowMs })).toEqual({ ok: true, timestamp: t });
  });

  it.each([
    ['tampered body', `${body} `, secret, 'signature_mismatch'],
    ['wrong secret', body, 'whsec_other', 'signature_mismatch'],
  ])('rejects a %s', (_name, rawBody, key, reason) => {
    const header = signDestinationPayload(body, secret, { timestamp: t });
    expect(checkDestinationSignature(rawBody, header, key, { now: nowMs })).toEqual({ ok: false, reason });
    expect(verifyDestinationSignature(rawBody, header, key, { now: nowMs })).toBe(false);
  });

  it('rejects stale and future timestamps beyond the tolerance, accepts within', () => {
    const stale = signDestinationPayload(body, secret, { timestamp: t - 301 });
    const future = signDestinationPayload(body, secret, { timestamp: t + 301 });
    const edge = signDestinationPayload(body, secret, { timestamp: t - 300 });
    expect(checkDestinationSignature(body, stale, secret, { now: nowMs })).toEqual({
      ok: false,
      reason: 'timestamp_out_of_tolerance',
    });
    expect(verifyDestinationSignature(body, future, secret, { now: nowMs })).toBe(false);
    expect(verifyDestinationSignature(body, edge, secret, { now: nowMs })).toBe(true);
    expect(verifyDestinationSignature(body, stale, secret, { now: nowMs, toleranceSeconds: 600 })).toBe(true);
    expect(verifyDestinationSignature(body, stale, secret, { now: nowMs, toleranceSeconds: Infinity })).toBe(true);
  });

  const v1 = 'a'.repeat(64);
  it.each([
    [undefined, 'missing_header'],
    ['', 'missing_header'],
    [[], 'missing_header'],
    ['garbage', 'malformed_header'],
    [`v1=${v1}`, 'malformed_header'],
    [`t=abc,v1=${v1}`, 'malformed_header'],
    [`t=1,t=2,v1=${v1}`, 'malformed_header'],
    [`t=${t},=x`, 'malformed_header'],
    [[`t=${t},v1=${v1}`, `t=${t},v1=${v1}`], 'malformed_header'],
    [`t=${t}`, 'no_signature'],
    [`t=${t},v1=zz`, 'no_signature'],
    [`t=${t},v0=${v1}`, 'no_signature'],
    [`t=${t},v1=${v1}`, 'signature_mismatch'],
  ] as const)('rejects header %j as %s', (header, reason) => {
    expect(checkDestinationSignature(body, header, secret, { now: nowMs })).toEqual({ ok: false, reason });
  });

  it('passes when any of several v1 values matches any secret (rotation)', () => {
    const both = signDestinationPayload(body, ['whsec_old', 'whsec_new'], { timestamp: t });
    expect(both.split(',')).toHaveLength(3);
    expect(verifyDestinationSignature(body, both, 'whsec_new', { now: nowMs })).toBe(true);
    expect(verifyDestinationSignature(body, both, 'whsec_old', { now: nowMs })).toBe(true);
    const single = signDestinationPayload(body, 'whsec_new', { timestamp: t });
    expect(verifyDestinationSignature(body, single, ['whsec_old', 'whsec_new'], { now: nowMs })).toBe(true);
    expect(
      verifyDestinationSignature(body, ` ${single.replace(',', ' , ')} ,v2=ignored`, 'whsec_new', { now: nowMs }),
    ).toBe(true);
  });

  it('throws TypeError for receiver misconfiguration', () => {
    expect(() => verifyDestinationSignature(body, 't=1,v1=x', '')).toThrow(
      new TypeError('Expected `secret` to be a non-empty string or an array of them, got `string`'),
    );
    expect(() => verifyDestinationSignature(body, 't=1,v1=x', secret, { toleranceSeconds: -1 })).toThrow(
      new TypeError('Expected `toleranceSeconds` to be a number from 0 and up, got `-1`'),
    );
  });
});

// ---------------------------------------------------------------- http

describe('httpDestination', () => {
  it('posts the exact JSON with content-type, custom headers and a verifiable signature', async () => {
    const server = await startServer((_req, res) => {
      res.statusCode = 204;
      res.end();
    });
    const record = makeRecord();
    const destination = httpDestination(`${server.url}/hooks/fc?x=1`, {
      secret: 'whsec_http',
      headers: { authorization: 'Bearer header-sentinel', 'Content-Type': 'text/plain' },
    });
    expect(destination.name).toBe('httpDestination');
    expect(destination.maxRetries).toBe(3);
    expect(destination.label).toBe(`http:${server.url}`);

    await destination(record);

    expect(server.requests).toHaveLength(1);
    const [req] = server.requests;
    expect(req?.method).toBe('POST');
    expect(req?.url).toBe('/hooks/fc?x=1');
    expect(req?.body).toBe(JSON.stringify(record));
    expect(JSON.parse(req?.body ?? '')).toEqual(record);
    expect(req?.headers['content-type']).toBe('application/json');
    expect(req?.headers.authorization).toBe('Bearer header-sentinel');
    const signature = req?.headers['fc-async-signature'];
    expect(signature).toMatch(/^t=\d+,v1=[0-9a-f]{64}$/);
    expect(verifyDestinationSignature(req?.body ?? '', signature, 'whsec_http')).toBe(true);
    expect(verifyDestinationSignature(`${req?.body}x`, signature, 'whsec_http')).toBe(false);
  });

  it('sends no signature without a secret', async () => {
    const server = await startServer();
    await httpDestination(server.url)(makeRecord());
    expect(server.requests[0]?.headers['fc-async-signature']).toBeUndefined();
  });

  it('does not retry a 4xx', async () => {
    const server = await startServer((_req, res) => {
      res.statusCode = 404;
      res.end('not here');
    });
    const time = fakeTime();
    const logger = memoryLogger();
    const result = await deliverRecord(httpDestination(server.url), makeRecord(), { logger, ...time });
    expect(result).toMatchObject({ status: 'Failed', attempts: 1 });
    expect(result.errors).toEqual([`http:${server.url}: DestinationHttpError: HTTP 404 from ${server.url}`]);
    expect(server.requests).toHaveLength(1);
    expect(time.delays).toEqual([]);
    await expect(httpDestination(server.url)(makeRecord())).rejects.toMatchObject({
      code: 'DestinationHttpError',
      retryable: false,
      status: 404,
    });
  });

  it('retries a 5xx with backoff, then succeeds', async () => {
    const server = await startServer((_req, res, index) => {
      res.statusCode = index < 2 ? 503 : 200;
      res.end();
    });
    const time = fakeTime();
    const result = await deliverRecord(httpDestination(server.url), makeRecord(), {
      logger: memoryLogger(),
      ...time,
      random: () => 0.5,
    });
    expect(result).toEqual({
      status: 'Succeeded',
      attempts: 3,
      errors: [],
      destinations: [{ label: `http:${server.url}`, status: 'Succeeded', attempts: 3 }],
    });
    expect(server.requests).toHaveLength(3);
    expect(time.delays).toEqual([250, 500]); // full jitter: 0.5 × 500, 0.5 × 1000
  });

  it('retries a network error (closed port) and ends Failed with every attempt counted', async () => {
    const port = await closedPort();
    const time = fakeTime();
    const logger = memoryLogger();
    const result = await deliverRecord(httpDestination(`http://127.0.0.1:${port}/x`, { retries: 2 }), makeRecord(), {
      logger,
      ...time,
    });
    expect(result.status).toBe('Failed');
    expect(result.attempts).toBe(3);
    expect(result.errors[0]).toContain('DestinationNetworkError');
    expect(result.errors[0]).toContain('ECONNREFUSED');
    expect(time.delays).toHaveLength(2);
    expect(logger.entries.map((e) => e.level)).toEqual(['warn', 'warn', 'error']);
  });

  it('honours timeoutMs', async () => {
    const server = await startServer(() => {
      // never answers
    });
    const destination = httpDestination(server.url, { timeoutMs: 150 });
    const error = await Promise.resolve(destination(makeRecord())).catch((e: unknown) => e);
    expect(isDestinationError(error)).toBe(true);
    // Its own bound, not the attempt's 60 s: the message names it.
    expect(error).toMatchObject({ code: 'DestinationTimeout', retryable: true });
    expect((error as Error).message).toContain('within 150 ms');

    const result = await deliverRecord(httpDestination(server.url, { timeoutMs: 100, retries: 1 }), makeRecord(), {
      logger: memoryLogger(),
      ...fakeTime(),
    });
    expect(result).toMatchObject({ status: 'Failed', attempts: 2 });
    expect(result.errors[0]).toContain('DestinationTimeout');
  });

  it('validates options eagerly with precise messages', () => {
    expect(() => httpDestination('http://x', { timeoutMs: -5 })).toThrow(
      new TypeError('Expected `timeoutMs` to be a positive number, got `-5`'),
    );
    expect(() => httpDestination('ftp://x')).toThrow(
      new TypeError('Expected `url` to be an absolute http(s) URL, got `ftp://x`'),
    );
    expect(() => httpDestination('/relative')).toThrow(TypeError);
    // A token in a mistyped URL's query is not written out in the message.
    expect(() => httpDestination('hooks.example.com/cb?token=S3CRET-TOKEN')).toThrow(
      new TypeError('Expected `url` to be an absolute http(s) URL, got `hooks.example.com/cb***`'),
    );
    expect(() => httpDestination('http://u:p@x')).toThrow(/without credentials/);
    expect(() => httpDestination('http://x', { retries: 1.5 })).toThrow(
      new TypeError('Expected `retries` to be an integer from 0 to 100, got `1.5` (number)'),
    );
    expect(() => httpDestination('http://x', { secret: '' })).toThrow(/Expected `secret`/);
    expect(() => httpDestination('http://x', { headers: { a: 1 as unknown as string } })).toThrow(
      new TypeError('Expected `headers.a` to be a string, got `number`'),
    );
    expect(() => httpDestination('http://x', { headers: { 'bad name': 'v' } })).toThrow(
      new TypeError('Expected `headers` to hold valid HTTP header names, got "bad name"'),
    );
    // A token read from a file with a stray line break: named, never quoted.
    const refused = () => httpDestination('http://x', { headers: { authorization: 'Bearer SECRET_abc\r\ndef' } });
    expect(refused).toThrow(
      new TypeError(
        'Expected `headers.authorization` to be a valid HTTP header value (no CR, LF or NUL); the value is not shown',
      ),
    );
    expect(() => httpDestination('http://x', { headers: { 'x-token': 'SECRET\u0000' } })).toThrow(
      new TypeError(
        'Expected `headers.x-token` to be a valid HTTP header value (no CR, LF or NUL); the value is not shown',
      ),
    );
    // Latin-1 passes (fetch sends it as is); a wider character is named by its code point, not quoted.
    expect(() => httpDestination('http://x', { headers: { 'x-team': 'équipe' } })).not.toThrow();
    for (const [value, wide] of [
      ['杭州团队', 'U+676D at character 1'],
      ['team 😀', 'U+1F600 at character 6'],
    ] as const) {
      expect(() => httpDestination('http://x', { headers: { 'x-team': value } })).toThrow(
        new TypeError(
          `Expected \`headers.x-team\` to be Latin-1 (ISO-8859-1) only, got ${wide}; encode the value (e.g. encodeURIComponent) and decode it in the receiver; the value is not shown`,
        ),
      );
    }
  });
});

// ---------------------------------------------------------------- jsonl

describe('jsonlDestination', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'fc-async-jsonl-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('writes exactly one parseable line per record under 200 concurrent deliveries', async () => {
    const file = join(dir, 'nested', 'deeper', 'records.jsonl');
    // Two instances, one by a relative path: they share the per-path queue.
    const a = jsonlDestination(file);
    const b = jsonlDestination(relative(process.cwd(), file));
    expect(a.label).toBe(b.label);
    const results = await Promise.all(
      Array.from({ length: 200 }, (_, i) =>
        deliverRecord(i % 2 ? a : b, makeRecord(`req-${i}`), { logger: memoryLogger(), ...fakeTime() }),
      ),
    );
    expect(results.every((r) => r.status === 'Succeeded' && r.attempts === 1)).toBe(true);
    const text = await readFile(file, 'utf8');
    expect(text.endsWith('\n')).toBe(true);
    const lines = text.slice(0, -1).split('\n');
    expect(lines).toHaveLength(200);
    const records = lines.map((line) => JSON.parse(line) as DestinationRecord);
    expect(new Set(records.map((r) => r.requestContext.requestId)).size).toBe(200);
    expect(records[0]).toEqual(makeRecord(records[0]?.requestContext.requestId));
  });

  it('fails a delivery to a folder that cannot be made (below /proc) with ENOENT, and does not hang', async () => {
    const destination = jsonlDestination('/proc/fc-async-missing/records.jsonl', { retries: 0 });
    const result = await deliverRecord(destination, makeRecord('req-proc'), { logger: memoryLogger(), ...fakeTime() });
    expect(result).toMatchObject({ status: 'Failed', attempts: 1 });
    expect(result.errors.join(' ')).toContain('ENOENT');
  });

  it('validates the path', () => {
    expect(() => jsonlDestination('')).toThrow(new TypeError('Expected `path` to be a non-empty string, got ``'));
  });
});

// ---------------------------------------------------------------- function

describe('functionDestination', () => {
  it('calls fn with the record and retries plain errors', async () => {
    const seen: DestinationRecord[] = [];
    async function notify(record: DestinationRecord) {
      seen.push(record);
      if (seen.length < 3) throw new Error('flaky');
    }
    const destination = functionDestination(notify);
    expect(destination.name).toBe('functionDestination');
    expect(destination.label).toBe('function:notify');
    const record = makeRecord();
    const result = await deliverRecord(destination, record, { logger: memoryLogger(), ...fakeTime() });
    expect(result).toMatchObject({ status: 'Succeeded', attempts: 3 });
    expect(seen).toEqual([record, record, record]);
  });

  it('does not retry a non-retryable DestinationError', async () => {
    let calls = 0;
    const reject = () => {
      calls += 1;
      throw new DestinationError('DestinationHttpError', 'rejected', { retryable: false });
    };
    const result = await deliverRecord(functionDestination(reject), makeRecord(), {
      logger: memoryLogger(),
      ...fakeTime(),
    });
    expect(result).toMatchObject({
      status: 'Failed',
      attempts: 1,
      errors: ['function:reject: DestinationHttpError: rejected'],
    });
    expect(calls).toBe(1);
  });

  it('with timeoutMs, fails a call that takes longer as a retryable DestinationTimeout and aborts its signal', async () => {
    const signals: AbortSignal[] = [];
    let calls = 0;
    async function slow(_record: DestinationRecord, context?: DestinationContext) {
      calls += 1;
      if (context) signals.push(context.signal);
      // The second call answers at once: the first one's timeout made it a retry.
      if (calls === 1) await new Promise(() => {});
    }
    const result = await deliverRecord(functionDestination(slow, { timeoutMs: 20 }), makeRecord(), {
      logger: memoryLogger(),
      sleep: async () => {},
    });
    expect(result).toMatchObject({ status: 'Succeeded', attempts: 2 });
    expect(signals.map((s) => s.aborted)).toEqual([true, false]);
    expect(signals[0]?.reason).toMatchObject({ code: 'DestinationTimeout', retryable: true });
    const never = functionDestination(() => new Promise(() => {}), { timeoutMs: 20, retries: 0 });
    expect(await deliverRecord(never, makeRecord(), { logger: memoryLogger() })).toMatchObject({
      status: 'Failed',
      attempts: 1,
      errors: ['function:anonymous: DestinationTimeout: function:anonymous took longer than 20 ms'],
    });
  });

  it('validates fn, retries and timeoutMs', () => {
    expect(() => functionDestination(() => {}, { timeoutMs: 0 })).toThrow(
      new TypeError('Expected `timeoutMs` to be a positive number, got `0`'),
    );
    expect(() => functionDestination('nope' as unknown as () => void)).toThrow(
      new TypeError('Expected `fn` to be a function, got `string`'),
    );
    expect(() => functionDestination(() => {}, { retries: -1 })).toThrow(
      new TypeError('Expected `retries` to be an integer from 0 to 100, got `-1` (number)'),
    );
  });
});

// ---------------------------------------------------------------- deliverRecord

describe('deliverRecord', () => {
  it("answers 'None' without destinations", async () => {
    const logger = memoryLogger();
    await expect(deliverRecord(undefined, makeRecord(), { logger })).resolves.toEqual({
      status: 'None',
      attempts: 0,
      errors: [],
      destinations: [],
    });
    await expect(deliverRecord([], makeRecord(), { logger })).resolves.toMatchObject({ status: 'None' });
  });

  it('never rejects: sync throws, rejections, non-errors, non-functions, throwing getters and loggers', async () => {
    const syncThrow: Destination = () => {
      throw new Error('sync boom');
    };
    const rejects: Destination = () => Promise.reject(new Error('async boom'));
    const throwsString: Destination = () => {
      throw 'a string';
    };
    const badGetter = Object.defineProperty(() => {}, 'maxRetries', {
      get() {
        throw new Error('getter boom');
      },
    }) as Destination;
    const throwingLogger: Logger = {
      debug() {
        throw new Error('log');
      },
      info() {
        throw new Error('log');
      },
      warn() {
        throw new Error('log');
      },
      error() {
        throw new Error('log');
      },
    };
    const time = fakeTime();
    const result = await deliverRecord(
      [syncThrow, rejects, throwsString, 42 as unknown as Destination, badGetter],
      makeRecord(),
      { logger: throwingLogger, ...time },
    );
    expect(result.status).toBe('Failed');
    expect(result.destinations.map((d) => [d.label, d.status, d.attempts])).toEqual([
      ['function:syncThrow', 'Failed', 4],
      ['function:rejects', 'Failed', 4],
      ['function:throwsString', 'Failed', 4],
      ['destination#3', 'Failed', 0],
      ['destination#4', 'Failed', 0],
    ]);
    expect(result.attempts).toBe(12);
    expect(result.errors).toContain('function:syncThrow: Error: sync boom');
    expect(result.errors).toContain('destination#3: DestinationInvalid: Expected a destination function, got number');

    // Broken options and a throwing clock still resolve.
    await expect(
      deliverRecord(syncThrow, makeRecord(), {
        logger: memoryLogger(),
        now: () => {
          throw new Error('clock');
        },
      }),
    ).resolves.toMatchObject({ status: 'Failed' });
    const once = Object.assign(() => Promise.reject(new Error('x')), { maxRetries: 0 });
    await expect(deliverRecord(once, makeRecord(), undefined as unknown as { logger: Logger })).resolves.toMatchObject({
      status: 'Failed',
      attempts: 1,
    });
  });

  it('times out a hung attempt and aborts its signal', async () => {
    const signals: AbortSignal[] = [];
    const hang: Destination = (_record, context) => {
      if (context) signals.push(context.signal);
      return new Promise(() => {});
    };
    const result = await deliverRecord(Object.assign(hang, { maxRetries: 1 }), makeRecord(), {
      logger: memoryLogger(),
      attemptTimeoutMs: 30,
      ...fakeTime(),
    });
    expect(result).toMatchObject({ status: 'Failed', attempts: 2 });
    expect(result.errors[0]).toContain('DestinationTimeout');
    expect(signals.map((s) => s.aborted)).toEqual([true, true]);
  });

  it('stops retrying when the signal aborts during a wait or an attempt', async () => {
    const controller = new AbortController();
    const fail: Destination = () => Promise.reject(new Error('down'));
    const result = await deliverRecord(fail, makeRecord(), {
      logger: memoryLogger(),
      signal: controller.signal,
      sleep: async () => controller.abort(),
    });
    expect(result).toMatchObject({ status: 'Failed', attempts: 1 });

    const inflight = new AbortController();
    setTimeout(() => inflight.abort(), 20);
    const hung = await deliverRecord(() => new Promise(() => {}), makeRecord(), {
      logger: memoryLogger(),
      signal: inflight.signal,
    });
    // Ended by the abort (DestinationAborted), not by the attempt's 60 s bound (DestinationTimeout).
    expect(hung).toMatchObject({ status: 'Failed', attempts: 1 });
    expect(hung.errors[0]).toContain('DestinationAborted');

    const already = new AbortController();
    already.abort();
    const none = await deliverRecord(fail, makeRecord(), { logger: memoryLogger(), signal: already.signal });
    expect(none).toMatchObject({ status: 'Failed', attempts: 0 });
  });

  it("logs a delivery the engine's shutdown ended as cut short (a warning), not as a failure given up on", async () => {
    for (const when of ['during a wait', 'during an attempt', 'before it starts'] as const) {
      const logger = memoryLogger();
      const controller = new AbortController();
      if (when === 'before it starts') controller.abort(SHUTTING_DOWN);
      if (when === 'during an attempt') setTimeout(() => controller.abort(SHUTTING_DOWN), 20);
      const destination: Destination =
        when === 'during an attempt' ? () => new Promise(() => {}) : () => Promise.reject(new Error('down'));
      await deliverRecord(destination, makeRecord(), {
        logger,
        signal: controller.signal,
        sleep: async () => controller.abort(SHUTTING_DOWN),
      });
      expect(logger.entries.filter((e) => e.level === 'error')).toEqual([]);
      expect(logger.entries.at(-1)).toMatchObject({
        level: 'warn',
        message: 'fc-async: destination delivery cut short by shutdown',
      });
    }
    // Any other abort (platform mode's 10 s bound, a caller's own signal) is the delivery failing.
    const logger = memoryLogger();
    const bound = new AbortController();
    setTimeout(() => bound.abort(), 20);
    await deliverRecord(() => new Promise(() => {}), makeRecord(), { logger, signal: bound.signal });
    expect(logger.entries.at(-1)).toMatchObject({
      level: 'error',
      message: 'fc-async: destination delivery failed, giving up',
    });
  });

  it('stops retrying within maxElapsedMs, with delays capped by maxDelayMs', async () => {
    const time = fakeTime();
    const fail = Object.assign(() => Promise.reject(new Error('down')), { maxRetries: 50 });
    const result = await deliverRecord(fail, makeRecord(), {
      logger: memoryLogger(),
      ...time,
      random: () => 0.999,
      baseDelayMs: 1000,
      maxDelayMs: 4000,
      maxElapsedMs: 20_000,
    });
    expect(result.status).toBe('Failed');
    expect(time.delays).toEqual([999, 1998, 3996, 3996, 3996, 3996]);
    expect(result.attempts).toBe(7);
  });

  it('delivers to several destinations in parallel and reports each', async () => {
    let inFlight = 0;
    let peak = 0;
    const slow = (fail: boolean): Destination =>
      functionDestination(
        async () => {
          inFlight += 1;
          peak = Math.max(peak, inFlight);
          await new Promise((r) => setTimeout(r, 20));
          inFlight -= 1;
          if (fail) throw new DestinationError('DestinationInvokeError', 'no', { retryable: false });
        },
        { retries: 0 },
      );
    const result = await deliverRecord([slow(false), slow(true)], makeRecord(), { logger: memoryLogger() });
    expect(peak).toBe(2);
    expect(result.status).toBe('Failed');
    expect(result.destinations.map((d) => d.status)).toEqual(['Succeeded', 'Failed']);
  });

  it('logs failures with label, attempt and code, never payloads or header values', async () => {
    const server = await startServer((_req, res) => {
      res.statusCode = 500;
      res.end(PAYLOAD_SENTINEL);
    });
    const logger = memoryLogger();
    await deliverRecord(
      httpDestination(server.url, {
        secret: 'secret-sentinel',
        headers: { authorization: 'Bearer header-sentinel' },
        retries: 1,
      }),
      makeRecord(),
      { logger, ...fakeTime() },
    );
    expect(logger.entries).toHaveLength(2);
    expect(logger.entries[0]).toMatchObject({
      level: 'warn',
      fields: {
        destination: `http:${server.url}`,
        attempt: 1,
        code: 'DestinationHttpError',
        error: `HTTP 500 from ${server.url}`,
        requestId: '1-64f6d6e7-e01edb1cce58240ed59b59d9',
      },
    });
    expect(logger.entries[1]).toMatchObject({ level: 'error', fields: { attempt: 2, code: 'DestinationHttpError' } });
    const text = JSON.stringify(logger.entries);
    for (const secret of [PAYLOAD_SENTINEL, 'secret-sentinel', 'header-sentinel', 'fc-async-signature']) {
      expect(text).not.toContain(secret);
    }
  });

  it('logs invalid options and falls back to defaults', async () => {
    const logger = memoryLogger();
    const result = await deliverRecord(() => {}, makeRecord(), { logger, baseDelayMs: -1 });
    expect(result.status).toBe('Succeeded');
    expect(logger.entries[0]).toMatchObject({
      level: 'error',
      fields: { error: 'Expected `baseDelayMs` to be a number from 0 and up, got `-1`' },
    });
  });

  it('logs a misspelt option rather than ignoring it silently, and still delivers', async () => {
    const logger = memoryLogger();
    const result = await deliverRecord(() => {}, makeRecord(), { logger, retry: 5 } as never);
    expect(result.status).toBe('Succeeded');
    expect(logger.entries).toContainEqual(
      expect.objectContaining({ level: 'error', fields: { error: 'Unknown deliverRecord() option `retry`' } }),
    );
  });
});

// ---------------------------------------------------------------- FC function

describe('fcFunctionDestination', () => {
  const credentials = { accessKeyId: 'test-ak', accessKeySecret: 'test-sk-sentinel' };

  it('invokes the function asynchronously through the official SDK', async () => {
    const server = await startServer((_req, res) => {
      res.writeHead(202, { 'x-fc-request-id': '1-aaaa' });
      res.end();
    });
    const record = makeRecord();
    const config = { ...credentials, endpoint: `127.0.0.1:${server.port}`, protocol: 'http' as const };

    const byArn = fcFunctionDestination('acs:fc:cn-hangzhou:123456:functions/dest-fail/prod', config);
    expect(byArn.name).toBe('fcFunctionDestination');
    expect(byArn.label).toBe('fc:dest-fail:prod');
    await byArn(record);
    await fcFunctionDestination('dest-succ:LATEST', config)(record);
    await fcFunctionDestination('dest-succ', { ...credentials, endpoint: server.url })(record);

    expect(server.requests.map((r) => [r.method, r.url])).toEqual([
      ['POST', '/2023-03-30/functions/dest-fail/invocations?qualifier=prod'],
      ['POST', '/2023-03-30/functions/dest-succ/invocations?qualifier=LATEST'],
      ['POST', '/2023-03-30/functions/dest-succ/invocations'],
    ]);
    for (const req of server.requests) {
      expect(req.headers['x-fc-invocation-type']).toBe('Async');
      expect(req.body).toBe(JSON.stringify(record));
      expect(req.headers.authorization).toMatch(/^ACS3-HMAC-SHA256 Credential=test-ak,/);
    }
  });

  it('maps FC errors: 4xx not retried, 5xx retried', async () => {
    const server = await startServer((req, res, index) => {
      const notFound = req.url.includes('/missing/');
      res.writeHead(notFound ? 404 : index === 1 ? 503 : 202, {
        'content-type': 'application/json',
        'x-fc-request-id': 'r-1',
      });
      res.end(
        notFound
          ? JSON.stringify({ Code: 'FunctionNotFound', Message: 'nope', RequestId: 'r-1' })
          : index === 1
            ? '{}'
            : '',
      );
    });
    const config = { ...credentials, endpoint: `127.0.0.1:${server.port}`, protocol: 'http' as const };
    const logger = memoryLogger();

    const missing = await deliverRecord(fcFunctionDestination('missing', config), makeRecord(), {
      logger,
      ...fakeTime(),
    });
    expect(missing).toMatchObject({ status: 'Failed', attempts: 1 });
    expect(missing.errors[0]).toBe(
      'fc:missing: DestinationInvokeError: InvokeFunction fc:missing failed: FunctionNotFound (HTTP 404, request id r-1)',
    );

    const flaky = await deliverRecord(fcFunctionDestination('flaky', config), makeRecord(), { logger, ...fakeTime() });
    expect(flaky).toMatchObject({ status: 'Succeeded', attempts: 2 });
    expect(JSON.stringify(logger.entries)).not.toContain('test-sk-sentinel');

    const port = await closedPort();
    const down = fcFunctionDestination('f', { ...credentials, endpoint: `127.0.0.1:${port}`, protocol: 'http' });
    await expect(Promise.resolve(down(makeRecord()))).rejects.toMatchObject({
      code: 'DestinationNetworkError',
      retryable: true,
    });
  });

  it("does not send a record past FC's async payload limit: fails at once, not retried, naming the limit", async () => {
    // FC answers a larger async payload 400 EntityTooLarge: sending it would only spend the
    // delivery budget on a refusal.
    const server = await startServer((_req, res) => {
      res.writeHead(202, { 'x-fc-request-id': '1-aaaa' });
      res.end();
    });
    const config = { ...credentials, endpoint: `127.0.0.1:${server.port}`, protocol: 'http' as const };
    const sized = (bytes: number) => {
      const record = makeRecord();
      record.responsePayload = '';
      record.responsePayload = 'x'.repeat(bytes - Buffer.byteLength(JSON.stringify(record)));
      expect(Buffer.byteLength(JSON.stringify(record))).toBe(bytes);
      return record;
    };
    const logger = memoryLogger();

    const atLimit = await deliverRecord(fcFunctionDestination('dest', config), sized(131072), {
      logger,
      ...fakeTime(),
    });
    expect(atLimit).toMatchObject({ status: 'Succeeded', attempts: 1 });
    const over = await deliverRecord(fcFunctionDestination('dest', config), sized(131073), { logger, ...fakeTime() });
    expect(over).toMatchObject({ status: 'Failed', attempts: 1 });
    expect(over.errors[0]).toBe(
      "fc:dest: DestinationInvokeError: InvokeFunction fc:dest not sent: the record is 131073 bytes, above FC's async payload limit of 131072 (EntityTooLarge; maxPayloadBytes)",
    );
    expect(server.requests).toHaveLength(1);
    // An account whose limit was raised to 256 KB says so.
    const raised = fcFunctionDestination('dest', config, { maxPayloadBytes: 256 * 1024 });
    await raised(sized(200 * 1024));
    expect(server.requests.map((r) => r.body.length)).toEqual([131072, 200 * 1024]);
    expect(() => fcFunctionDestination('dest', config, { maxPayloadBytes: 0 })).toThrow(
      'Expected `maxPayloadBytes` to be an integer from 1 and up, got `0`',
    );
  });

  it("says an error answer that is not FC's JSON (an endpoint that is no FC API) is an answer, not the network", async () => {
    const server = await startServer((_req, res) => {
      res.writeHead(404, { 'content-type': 'text/html' });
      res.end('<html>not here</html>');
    });
    const config = { ...credentials, endpoint: `127.0.0.1:${server.port}`, protocol: 'http' as const };
    await expect(Promise.resolve(fcFunctionDestination('f', config)(makeRecord()))).rejects.toMatchObject({
      code: 'DestinationInvokeError',
      message: expect.stringMatching(
        /^InvokeFunction fc:f failed: the endpoint answered an error that is not FC's JSON \(.+\); is the endpoint an FC API\?$/,
      ),
    });
  });

  it('accepts a prebuilt client', async () => {
    const calls: unknown[][] = [];
    const client: FcInvokeClient = {
      async invokeFunctionWithOptions(...args) {
        calls.push(args);
        return { statusCode: 202 };
      },
    };
    await fcFunctionDestination('f:v1', client)(makeRecord());
    expect(calls).toHaveLength(1);
    expect(calls[0]?.[0]).toBe('f');
    expect(calls[0]?.[1]).toMatchObject({ qualifier: 'v1' });
    expect(calls[0]?.[2]).toMatchObject({ xFcInvocationType: 'Async' });
    // The official client fits the structural type.
    const fits = (c: FcSdk.default): FcInvokeClient => c;
    expect(typeof fits).toBe('function');
  });

  it.each([
    ['f', { functionName: 'f' }],
    ['dest-fail:prod', { functionName: 'dest-fail', qualifier: 'prod' }],
    ['acs:fc:cn-hangzhou:123:functions/f', { functionName: 'f', region: 'cn-hangzhou', accountId: '123' }],
    [
      'acs:fc:cn-shanghai:9:functions/f_1/LATEST',
      { functionName: 'f_1', qualifier: 'LATEST', region: 'cn-shanghai', accountId: '9' },
    ],
  ])('parses target %s', (target, expected) => {
    expect(parseFunctionTarget(target)).toEqual(expected);
  });

  it.each([
    ['', /non-empty string/],
    ['1abc', /function name/],
    ['f:', /qualifier/],
    ['acs:fc:cn-hangzhou:123:services/s.LATEST/functions/f', /FC 2.0 service ARNs/],
    ['acs:mns:cn-hangzhou:123:/queues/q/messages', /Expected `target` to be an ARN/],
  ])('rejects target %j', (target, message) => {
    expect(() => parseFunctionTarget(target)).toThrow(message);
  });

  it('names a URL given as a target masked: its password and token are not in the message', () => {
    const url = 'https://hook-user:HOOKPASSWORD@hooks.example.com/fc?token=SECRET';
    expect(() => fcFunctionDestination(url, credentials)).toThrow(
      new TypeError(
        'Expected `target` to be a function name or an FC ARN, got the URL `https://***@hooks.example.com/fc?***` (a webhook takes httpDestination)',
      ),
    );
  });

  it('validates the client config eagerly', () => {
    expect(() => fcFunctionDestination('f', credentials)).toThrow(/`clientConfig.endpoint`, or `clientConfig.region`/);
    expect(() => fcFunctionDestination('acs:fc:cn-hangzhou:123:functions/f', credentials)).not.toThrow();
    expect(() => fcFunctionDestination('f', { ...credentials, region: 'cn-hangzhou', accountId: '1' })).not.toThrow();
    expect(() => fcFunctionDestination('f', { accessKeyId: 'a', accessKeySecret: '', endpoint: 'x' })).toThrow(
      'Expected `clientConfig.accessKeyId` and `clientConfig.accessKeySecret` to be non-empty strings',
    );
    expect(() => fcFunctionDestination('f', { ...credentials, endpoint: 'x', protocol: 'ftp' as 'http' })).toThrow(
      /protocol/,
    );
    expect(() => fcFunctionDestination('f', { ...credentials, endpoint: 'x' }, { timeoutMs: 0 })).toThrow(
      new TypeError('Expected `timeoutMs` to be a positive number, got `0`'),
    );
  });

  it('fails without retry, with a clear message, when the SDK is missing', async () => {
    vi.doMock('@alicloud/fc20230330', () => {
      throw Object.assign(new Error("Cannot find package '@alicloud/fc20230330'"), { code: 'ERR_MODULE_NOT_FOUND' });
    });
    try {
      const destination = fcFunctionDestination('f', { ...credentials, endpoint: '127.0.0.1:1', protocol: 'http' });
      const error = await Promise.resolve(destination(makeRecord())).catch((e: unknown) => e);
      expect(error).toMatchObject({ code: 'DestinationSdkMissing', retryable: false });
      expect((error as Error).message).toContain('@alicloud/fc20230330');
    } finally {
      vi.doUnmock('@alicloud/fc20230330');
    }
  });
});

describe('httpDestination() on a runtime without fetch (Node.js 16)', () => {
  it('refuses at creation, naming what it needs, rather than failing every delivery', () => {
    vi.stubGlobal('fetch', undefined);
    vi.stubGlobal('Headers', undefined);
    try {
      expect(() => httpDestination('https://hooks.example.com/fc')).toThrow(
        'httpDestination() needs the fetch API: run on Node.js 20.11 or newer',
      );
    } finally {
      vi.unstubAllGlobals();
    }
    expect(() => httpDestination('https://hooks.example.com/fc')).not.toThrow();
  });
});
