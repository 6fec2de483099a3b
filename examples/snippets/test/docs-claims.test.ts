import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import {
  type AsyncTask,
  createFcHandler,
  DEFAULT_REDACTED_HEADERS,
  type DestinationRecord,
  deliverRecord,
  detectInvocation,
  type FcHandler,
  type FcHttpResult,
  fcHttpEvent,
  functionDestination,
  resolveAsyncOptions,
  silentLogger,
} from '@fc-async/core';
import { afterEach, describe, expect, it, vi } from 'vitest';

// Claims of README.md and docs/*.md that a user relies on and that no other suite pins: each
// test names the page and the claim it keeps true.

const root = resolve(import.meta.dirname, '../../..');
const page = (name: string) => readFileSync(join(root, name), 'utf8');

/** The `| \`name\` | default | meaning |` rows of the README's options table, by option name. */
function readmeOptions(): Map<string, string> {
  const rows = new Map<string, string>();
  for (const m of page('README.md').matchAll(/^\| `([\w.]+)`\s*\| (.+?)\s*\|.*\|$/gm)) {
    rows.set(m[1] as string, m[2] as string);
  }
  return rows;
}

const event = (method: string, path: string, headers: Record<string, string> = {}, body = '') =>
  fcHttpEvent({ method, url: path, headers, body, sourceIp: '203.0.113.7' });

const asyncCall = (taskId: string, extra: Record<string, string> = {}) => ({
  'X-Fc-Invocation-Type': 'Async',
  'X-Fc-Async-Task-Id': taskId,
  ...extra,
});

afterEach(() => {
  vi.useRealTimers();
  vi.restoreAllMocks();
  vi.unstubAllEnvs();
});

describe('README: the options table gives the defaults the code applies', () => {
  const rows = readmeOptions();
  const resolved = resolveAsyncOptions({});
  // What each async row says, and the value it stands for once resolved.
  const cases: [string, string, unknown][] = [
    ['async.mode', "`'auto'`", resolved.mode],
    ['async.concurrency', '`10`', resolved.concurrency],
    ['async.maxQueuedTasks', '`10000`', resolved.maxQueuedTasks],
    ['async.maxAsyncPayloadBytes', '`131072`', resolved.maxAsyncPayloadBytes],
    ['async.maxAsyncRetryAttempts', '`3`', resolved.maxAsyncRetryAttempts],
    ['async.maxAsyncEventAgeInSeconds', '`86400`', resolved.maxAsyncEventAgeInSeconds],
    ['async.timeoutSeconds', '`60`', resolved.timeoutSeconds],
    ['async.backoff', "`{ baseMs: 1000, maxMs: 60000, jitter: 'equal' }`", resolved.backoff],
    ['async.stopGraceMs', '`10000`', resolved.stopGraceMs],
    ['async.functionName', "`'fc-async-local'`", resolved.functionName],
  ];

  it.each(cases)('%s: the row says %s, and so does resolveAsyncOptions({})', (name, shown, value) => {
    expect(rows.get(name)).toBe(shown);
    const literal = shown
      .slice(1, -1)
      .replace(/(\w+):/g, '"$1":')
      .replace(/'/g, '"');
    expect(value).toEqual(JSON.parse(literal));
  });

  it('async.isFailure: status ≥ 500 by default', () => {
    expect(rows.get('async.isFailure')).toBe('status ≥ 500');
    const failed = (statusCode: number) => resolved.isFailure({ statusCode, headers: {}, body: '' });
    expect([failed(499), failed(500), failed(503)]).toEqual([false, true, true]);
  });

  it('every async option the README names is one the code accepts (unknown ones throw)', () => {
    const names = [...rows.keys()].filter((n) => n.startsWith('async.')).map((n) => n.slice('async.'.length));
    expect(names.length).toBeGreaterThanOrEqual(12);
    for (const name of names) {
      expect(() => resolveAsyncOptions({ [name]: undefined })).not.toThrow();
    }
  });

  it('redactHeaders: FC credentials, authorization, proxy-authorization, x-acs-security-token and cookies are always redacted', () => {
    expect(rows.get('redactHeaders')).toBe('`[]`');
    expect([...DEFAULT_REDACTED_HEADERS].sort()).toEqual(
      [
        'x-fc-access-key-id',
        'x-fc-access-key-secret',
        'x-fc-security-token',
        'authorization',
        'proxy-authorization',
        'x-acs-security-token',
        'cookie',
        'set-cookie',
      ].sort(),
    );
  });
});

describe('docs/async.md: detection', () => {
  it('an explicit X-Fc-Invocation-Type: Sync wins over a task id and a retry count', () => {
    expect(
      detectInvocation({ 'x-fc-invocation-type': 'Sync', 'x-fc-async-task-id': 'job_1', 'x-fc-retry-count': '1' }),
    ).toMatchObject({ type: 'Sync', source: 'invocation-type', taskId: 'job_1', attempt: 1 });
  });

  it.each([
    ['an invocation type other than Sync or Async', { 'x-fc-invocation-type': 'Later' }],
    ['a task id breaking FC’s rule', { 'x-fc-async-task-id': '9lives' }],
    ['a task id over 128 characters', { 'x-fc-async-task-id': `t${'x'.repeat(128)}` }],
    ['a retry count that is not a whole number', { 'x-fc-retry-count': '1.5' }],
  ])('%s answers 400 InvalidArgument', async (_label, headers) => {
    const handler = createFcHandler((_req, res) => res.end('ran'), { env: {}, logger: silentLogger });
    const result = await handler(event('POST', '/', headers));
    expect(result.statusCode).toBe(400);
    expect(JSON.parse(result.body)).toMatchObject({ code: 'InvalidArgument' });
    await handler.close();
  });
});

describe('docs/async.md: task records', () => {
  let handler: FcHandler;
  afterEach(() => handler?.close());

  it('returnPayload is the successful response body, cut at 1 MiB; a failed task has none', async () => {
    const big = 'ab'.repeat(1024 * 1024);
    handler = createFcHandler(
      (req, res) => {
        res.setHeader('content-type', 'text/plain');
        res.statusCode = req.url === '/fail' ? 500 : 200;
        res.end(req.url === '/fail' ? 'the error page' : big);
      },
      { env: {}, logger: silentLogger, async: { mode: 'local', maxAsyncRetryAttempts: 0 } },
    );
    await handler(event('POST', '/big', asyncCall('big')));
    await handler(event('POST', '/fail', asyncCall('fail')));
    await handler.drain();
    const succeeded = (await handler.tasks.get('big')) as AsyncTask;
    expect(succeeded.status).toBe('Succeeded');
    expect(succeeded.returnPayload).toBe(big.slice(0, 1024 * 1024));
    const failed = (await handler.tasks.get('fail')) as AsyncTask;
    expect(failed.status).toBe('Failed');
    expect(failed.returnPayload).toBeUndefined();
  });

  it('destinationStatus is absent when the side that fired has no destination', async () => {
    const delivered: DestinationRecord[] = [];
    handler = createFcHandler(
      (req, res) => {
        res.statusCode = req.url === '/fail' ? 500 : 200;
        res.end();
      },
      {
        env: {},
        logger: silentLogger,
        async: { mode: 'local', maxAsyncRetryAttempts: 0 },
        destinations: { onFailure: (record) => void delivered.push(record) },
      },
    );
    await handler(event('POST', '/ok', asyncCall('ok')));
    await handler(event('POST', '/fail', asyncCall('fail')));
    await handler.drain();
    expect(await handler.tasks.get('ok')).not.toHaveProperty('destinationStatus');
    expect((await handler.tasks.get('fail'))?.destinationStatus).toBe('Succeeded');
    expect(delivered.map((r) => r.requestContext.condition)).toEqual(['UnhandledInvocationError']);
  });

  it('the captured request (requestPayload) leaves out FC’s gateway headers as well as the redacted ones', async () => {
    const records: DestinationRecord[] = [];
    handler = createFcHandler((_req, res) => res.end('done'), {
      env: {},
      logger: silentLogger,
      async: { mode: 'local' },
      destinations: { onSuccess: (record) => void records.push(record) },
    });
    await handler(
      event(
        'POST',
        '/jobs',
        asyncCall('captured', { 'X-Fc-Async-Delay': '1', 'X-Fc-Log-Type': 'Tail', Cookie: 'sid=1', 'X-Kept': 'yes' }),
      ),
    );
    await vi.waitFor(() => expect(records).toHaveLength(1), { timeout: 10_000 });
    const headers = JSON.parse(records[0]?.requestPayload as string).headers as Record<string, string>;
    expect(headers['x-kept']).toBe('yes');
    for (const name of ['x-fc-invocation-type', 'x-fc-async-delay', 'x-fc-log-type', 'x-fc-retry-count', 'cookie']) {
      expect(headers).not.toHaveProperty(name);
    }
  });
});

describe('docs/destinations.md: how a failing destination is retried', () => {
  /** A clock and a sleep that only move when the delivery waits. */
  function fakeTime() {
    let now = 0;
    const delays: number[] = [];
    return {
      delays,
      now: () => now,
      sleep: async (ms: number) => {
        delays.push(ms);
        now += ms;
      },
    };
  }
  const failing = (retries?: number) =>
    functionDestination(
      () => {
        throw new Error('down');
      },
      retries === undefined ? undefined : { retries },
    );
  const record = { requestContext: { requestId: 'r' } } as DestinationRecord;

  it('full jitter from 500 ms, doubling, up to 3 retries by default', async () => {
    const time = fakeTime();
    const result = await deliverRecord(failing(), record, { logger: silentLogger, ...time, random: () => 0.999 });
    expect(result.attempts).toBe(4);
    expect(time.delays).toEqual([499, 999, 1998]);
  });

  it('waits at most 30 s, and starts no retry past 30 minutes', async () => {
    const time = fakeTime();
    const result = await deliverRecord(failing(100), record, { logger: silentLogger, ...time, random: () => 0.999 });
    expect(Math.max(...time.delays)).toBe(29_970);
    expect(time.delays.reduce((a, b) => a + b, 0)).toBeLessThanOrEqual(30 * 60_000);
    expect(result.attempts).toBeLessThan(101);
    expect(result.status).toBe('Failed');
  });

  it('in platform mode the handler waits for delivery, so retries stop after 10 s', async () => {
    vi.useFakeTimers({ now: 1_700_000_000_000 });
    vi.spyOn(Math, 'random').mockReturnValue(0.999);
    let calls = 0;
    const handler = createFcHandler((_req, res) => res.end('done'), {
      env: { FC_FUNCTION_NAME: 'render', FC_REGION: 'cn-hangzhou' },
      logger: silentLogger,
      destinations: {
        onSuccess: functionDestination(
          () => {
            calls++;
            throw new Error('down');
          },
          { retries: 100 },
        ),
      },
    });
    expect(handler.mode).toBe('platform');
    const started = Date.now();
    let result: FcHttpResult | undefined;
    let answeredAfterMs = Number.NaN;
    void handler(event('POST', '/render', { 'X-Fc-Invocation-Type': 'Async' })).then((r) => {
      result = r;
      answeredAfterMs = Date.now() - started;
    });
    await vi.advanceTimersByTimeAsync(60_000);
    expect(result?.statusCode).toBe(200);
    // Waits of 499, 999, 1998 and 3996 ms; the next (7992 ms) would end past 10 s.
    expect(calls).toBe(5);
    expect(answeredAfterMs).toBe(499 + 999 + 1998 + 3996);
  });
});

describe('docs/destinations.md: the signed-webhook receiver', () => {
  it('the sender and the receiver refuse to start without WEBHOOK_SECRET (no key anyone can read here)', async () => {
    vi.stubEnv('WEBHOOK_SECRET', '');
    vi.resetModules();
    await expect(import('../src/verify-webhook.js')).rejects.toThrow('WEBHOOK_SECRET is not set');
    await expect(import('../src/destinations.js')).rejects.toThrow('WEBHOOK_SECRET is not set');
  });

  it('takes a record of a large answer (over express.raw’s 100 KB default) and refuses a bad signature', async () => {
    vi.stubEnv('WEBHOOK_SECRET', 'test-secret');
    vi.resetModules();
    const { default: receiver } = await import('../src/verify-webhook.js');
    const { httpDestination } = await import('@fc-async/core');
    const server = receiver.listen(0, '127.0.0.1');
    await new Promise((resolve) => server.once('listening', resolve));
    try {
      const url = `http://127.0.0.1:${(server.address() as { port: number }).port}/fc-async`;
      vi.spyOn(console, 'log').mockImplementation(() => undefined);
      const big = 'x'.repeat(300_000);
      const handler = createFcHandler((_req, res) => res.end(big), {
        env: {},
        logger: silentLogger,
        async: { mode: 'local' },
        destinations: { onSuccess: httpDestination(url, { secret: 'test-secret', retries: 0 }) },
      });
      await handler(event('POST', '/', asyncCall('big_answer')));
      await handler.drain();
      expect((await handler.tasks.get('big_answer'))?.destinationStatus).toBe('Succeeded');
      await handler.close();
      const forged = await fetch(url, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'fc-async-signature': 't=1,v1=00' },
        body: '{}',
      });
      expect(forged.status).toBe(401);
      // A forged header needs no secret: with another content type, or no body, it is refused all the
      // same (the snippet once left req.body unset and answered 500 with the TypeError's stack).
      const zeros = `t=${Math.floor(Date.now() / 1000)},v1=${'0'.repeat(64)}`;
      for (const init of <RequestInit[]>[
        { headers: { 'content-type': 'text/plain', 'fc-async-signature': zeros }, body: 'x' },
        { headers: { 'fc-async-signature': zeros } },
      ]) {
        const refused = await fetch(url, { method: 'POST', ...init });
        expect([refused.status, await refused.text()]).toEqual([401, '']);
      }
    } finally {
      server.close();
    }
  });
});
