import type { IncomingMessage } from 'node:http';
import { Readable } from 'node:stream';
import { describe, expect, it, vi } from 'vitest';
import {
  checkDestinationSignature,
  createConsoleLogger,
  type FcClientConfig,
  type FcListenOptions,
  fcFunctionDestination,
  fcHttpEvent,
  functionDestination,
  httpDestination,
  integerOption,
  jsonlDestination,
  listenFc,
  readNodeRequest,
  resolveRetentionOptions,
  signDestinationPayload,
  type TaskQuery,
  verifyDestinationSignature,
} from '../src/index.js';
import { ok, setup } from './helpers.js';

// Every public function that takes options refuses a misspelt key, a value of the wrong type or
// out of range when it is called, naming the option, instead of ignoring it or failing later (at
// the first delivery, or never).

const URL = 'http://127.0.0.1:8080/hook';
const noop = () => undefined;
const creds = { accessKeyId: 'id', accessKeySecret: 'secret', region: 'cn-hangzhou', accountId: '123' };

describe('destination helpers', () => {
  it.each<[string, () => unknown, string]>([
    [
      'httpDestination misspelt',
      () => httpDestination(URL, { timeoutMS: 5 } as never),
      'Unknown httpDestination() option `timeoutMS`',
    ],
    [
      'httpDestination array',
      () => httpDestination(URL, [] as never),
      'Expected `options` to be an object, got `array`',
    ],
    [
      'jsonlDestination misspelt',
      () => jsonlDestination('/tmp/x.jsonl', { retry: 1 } as never),
      'Unknown jsonlDestination() option `retry`',
    ],
    [
      'jsonlDestination array',
      () => jsonlDestination('/tmp/x.jsonl', [] as never),
      'Expected `options` to be an object, got `array`',
    ],
    [
      'functionDestination misspelt',
      () => functionDestination(noop, { timeout: 5 } as never),
      'Unknown functionDestination() option `timeout`',
    ],
    [
      'functionDestination array',
      () => functionDestination(noop, [] as never),
      'Expected `options` to be an object, got `array`',
    ],
    [
      'fcFunctionDestination misspelt',
      () => fcFunctionDestination('f', creds, { timout: 5 } as never),
      'Unknown fcFunctionDestination() option `timout`',
    ],
    [
      'fcFunctionDestination array',
      () => fcFunctionDestination('f', creds, [] as never),
      'Expected `options` to be an object, got `array`',
    ],
  ])('%s', (_name, make, message) => {
    expect(make).toThrow(new TypeError(message));
  });

  // A timer given more than 2^31 - 1 ms fires at once (AbortSignal.timeout too): every delivery
  // would time out at once, or throw a RangeError at the first one.
  it.each<[string, (timeoutMs: number) => unknown]>([
    ['httpDestination', (timeoutMs) => httpDestination(URL, { timeoutMs })],
    ['functionDestination', (timeoutMs) => functionDestination(noop, { timeoutMs })],
    ['fcFunctionDestination', (timeoutMs) => fcFunctionDestination('f', creds, { timeoutMs })],
  ])('%s refuses a timeoutMs no timer can wait', (_name, make) => {
    const message = 'Expected `timeoutMs` to be a number of milliseconds up to 2147483647, got `2147483648`';
    expect(() => make(2 ** 31)).toThrow(new TypeError(message));
    expect(() => make(2 ** 31 - 1)).not.toThrow();
  });

  it.each<[string, unknown, string]>([
    [
      'a misspelt key',
      { ...creds, regoin: 'cn-shanghai' },
      'Unknown fcFunctionDestination() option `clientConfig.regoin`',
    ],
    ['an array', [], 'Expected `clientConfig` to be an FC client or an object with credentials, got `array`'],
    ['a numeric region', { ...creds, region: 5 }, 'Expected `clientConfig.region` to be a non-empty string, got `5`'],
    [
      'a numeric accountId',
      { ...creds, accountId: 5 },
      'Expected `clientConfig.accountId` to be a non-empty string, got `5`',
    ],
  ])('fcFunctionDestination refuses a client config with %s', (_name, client, message) => {
    expect(() => fcFunctionDestination('f', client as FcClientConfig)).toThrow(new TypeError(message));
  });
});

describe('destination signatures', () => {
  it.each<[string, () => unknown, string]>([
    [
      'sign: null options',
      () => signDestinationPayload('{}', 's', null as never),
      'Expected `options` to be an object, got `null`',
    ],
    [
      'sign: misspelt',
      () => signDestinationPayload('{}', 's', { timeStamp: 5 } as never),
      'Unknown signDestinationPayload() option `timeStamp`',
    ],
    [
      'sign: body of the wrong type',
      () => signDestinationPayload({} as never, 's'),
      'Expected `rawBody` to be a string or a Buffer, got `object`',
    ],
    [
      'verify: misspelt',
      () => verifyDestinationSignature('{}', 't=1', 's', { tolerance: 5 } as never),
      'Unknown checkDestinationSignature() option `tolerance`',
    ],
    [
      'verify: array',
      () => verifyDestinationSignature('{}', 't=1', 's', [] as never),
      'Expected `options` to be an object, got `array`',
    ],
    [
      'check: parsed body',
      () => checkDestinationSignature({ a: 1 } as never, signDestinationPayload('{"a":1}', 's'), 's'),
      'Expected `rawBody` to be a string or a Buffer, got `object`',
    ],
  ])('%s', (_name, call, message) => {
    expect(call).toThrow(new TypeError(message));
  });

  it('still signs and verifies bytes given as a Uint8Array', () => {
    const body = new TextEncoder().encode('{"a":1}');
    const header = signDestinationPayload(body as Buffer, 's');
    expect(verifyDestinationSignature(body as Buffer, header, 's')).toBe(true);
  });
});

describe('createConsoleLogger', () => {
  it.each<[unknown, string]>([
    [{ levle: 'debug' }, 'Unknown createConsoleLogger() option `levle`'],
    [{ level: 'verbose' }, "Expected `level` to be 'debug', 'info', 'warn' or 'error', got `verbose`"],
    [null, 'Expected `options` to be an object, got `null`'],
    [[], 'Expected `options` to be an object, got `array`'],
  ])('refuses %j', (options, message) => {
    expect(() => createConsoleLogger(options as never)).toThrow(new TypeError(message));
  });

  it('logs fields JSON cannot hold (a BigInt code, a circular object) as their inspection, never throwing', () => {
    const lines: string[] = [];
    const spy = vi.spyOn(process.stderr, 'write').mockImplementation((chunk) => lines.push(String(chunk)) > 0);
    try {
      const loop: Record<string, unknown> = { kind: 'loop' };
      loop.self = loop;
      const error = Object.assign(new Error('db down'), { code: 10n });
      expect(() => createConsoleLogger().error('app failed', { error, loop, requestId: 'r-1' })).not.toThrow();
    } finally {
      spy.mockRestore();
    }
    const line = JSON.parse(lines.join('')) as Record<string, unknown>;
    expect(line).toMatchObject({ level: 'error', message: 'app failed', requestId: 'r-1' });
    expect(String(line.error)).toContain('10n');
    expect(String(line.loop)).toContain('Circular');
  });
});

describe('fcHttpEvent', () => {
  const TIME_EPOCH = 'Expected `timeEpoch` to be epoch milliseconds (a whole number from 0 to 4294967295999)';
  it.each<[unknown, string]>([
    [{ methdo: 'POST' }, 'Unknown fcHttpEvent() option `methdo`'],
    [null, 'Expected `init` to be an object, got `null`'],
    [[], 'Expected `init` to be an object, got `array`'],
    [{ method: 5 }, 'Expected `method` to be a string, got `number`'],
    [{ url: 5 }, 'Expected `url` to be a string, got `number`'],
    [{ headers: ['a'] }, 'Expected `headers` to be an object of header values, got `array`'],
    [{ headers: { 'x-n': 5 } }, 'Expected `headers.x-n` to be a string or an array of strings, got `number`'],
    [{ body: 5 }, 'Expected `body` to be a string, bytes or an object to send as JSON, got `number`'],
    [{ timeEpoch: Number.NaN }, `${TIME_EPOCH}, got \`NaN\``],
    [{ timeEpoch: -1 }, `${TIME_EPOCH}, got \`-1\``],
    [{ timeEpoch: 1764536400000.5 }, `${TIME_EPOCH}, got \`1764536400000.5\``],
    [{ timeEpoch: 2 ** 32 * 1000 }, `${TIME_EPOCH}, got \`4294967296000\``],
    [{ timeEpoch: 1e16 }, `${TIME_EPOCH}, got \`10000000000000000\``],
    [
      { timeEpoch: '1764536400000' },
      `${TIME_EPOCH}, got the string '1764536400000': pass a number (\`Number(timeEpoch)\`)`,
    ],
    [{ timeEpoch: 'soon' }, `${TIME_EPOCH}, got \`string\``],
    [{ requestId: 5 }, 'Expected `requestId` to be a string, got `number`'],
  ])('refuses %j', (init, message) => {
    expect(() => fcHttpEvent(init as never)).toThrow(new TypeError(message));
  });

  it('keeps valid input as it was: repeated header values joined, an array body sent as JSON', () => {
    const event = fcHttpEvent({ headers: { 'x-tag': ['a', 'b'] }, body: [1, 2], timeEpoch: 0 });
    expect(event.headers).toEqual({ 'X-Tag': 'a,b', 'Content-Type': 'application/json' });
    expect(event.body).toBe('[1,2]');
  });
});

describe('listen options', () => {
  const base = { port: 0, host: '127.0.0.1', signals: [] } as const;
  /** The error `listenFc` rejects with; a server it started anyway is closed first. */
  async function refusal(options: unknown): Promise<unknown> {
    try {
      const server = await listenFc(ok, options as FcListenOptions);
      await server.close();
      return undefined;
    } catch (error) {
      return error;
    }
  }

  it.each<[unknown, string]>([
    [{ ...base, prestopTimeoutMs: 5 }, 'Unknown listen() option `prestopTimeoutMs`'],
    [null, 'Expected `options` to be an object, got `null`'],
    [[], 'Expected `options` to be an object, got `array`'],
    [
      { ...base, logger: 'console' },
      'Expected `logger` to be an object with debug, info, warn and error methods, got `string`',
    ],
    [{ ...base, logger: { info() {} } }, 'got `object` without debug, warn, error'],
    [{ ...base, env: null }, 'Expected `env` to be an object of environment variables, got `null`'],
    [{ ...base, env: [] }, 'Expected `env` to be an object of environment variables, got `array`'],
    // `port` is a number or its digits in a string (process.env.PORT): nothing else.
    [{ ...base, port: '94 30' }, 'Expected `port` to be a port number from 0 to 65535, got the string "94 30"'],
    [{ ...base, port: '70000' }, 'Expected `port` to be a port number from 0 to 65535, got the string "70000"'],
    [{ ...base, port: 9430.5 }, 'Expected `port` to be a port number from 0 to 65535, got `9430.5`'],
  ])('refuses %j before listening', async (options, message) => {
    const error = await refusal(options);
    expect(error).toBeInstanceOf(TypeError);
    expect((error as Error).message).toContain(message);
  });
});

describe('retention options (sqlite, bullmq)', () => {
  it('refuses a prune interval no timer can keep (setInterval would run every millisecond)', () => {
    expect(() => resolveRetentionOptions({ pruneIntervalMs: 2 ** 31 })).toThrow(
      new TypeError('Expected `pruneIntervalMs` to be an integer from 1 to 2147483647, got `2147483648`'),
    );
    expect(resolveRetentionOptions({ pruneIntervalMs: 2 ** 31 - 1 }).pruneIntervalMs).toBe(2 ** 31 - 1);
  });

  it('integerOption takes an upper bound, and keeps its message without one', () => {
    expect(() => integerOption('x', 11, 1, 5, 10)).toThrow(
      new TypeError('Expected `x` to be an integer from 1 to 10, got `11`'),
    );
    expect(() => integerOption('x', 0, 1, 5)).toThrow(
      new TypeError('Expected `x` to be an integer from 1 and up, got `0`'),
    );
    expect(integerOption('x', 10, 1, 5, 10)).toBe(10);
  });
});

describe('tasks.list(query)', () => {
  it('refuses a misspelt filter instead of listing every task', async () => {
    const { handler } = setup(ok);
    const query = { staus: 'Failed' } as TaskQuery;
    await expect(handler.tasks.list(query)).rejects.toMatchObject({
      code: 'InvalidArgument',
      statusCode: 400,
      message: expect.stringContaining('staus is not a query field'),
    });
    await expect(handler.tasks.list({ status: 'Failed', limit: 5 })).resolves.toEqual({
      tasks: [],
      nextToken: undefined,
    });
  });
});

describe('readNodeRequest options', () => {
  const request = () =>
    Object.assign(Readable.from([Buffer.from('a body of 19 bytes.')]), {
      method: 'POST',
      url: '/x',
      headers: { 'content-length': '19' },
    }) as unknown as IncomingMessage;

  it.each<[unknown, string]>([
    [{ limit: '16' }, 'Expected `limit` to be a number of bytes from 0 and up, got `16`'],
    [{ limit: Number.NaN }, 'Expected `limit` to be a number of bytes from 0 and up, got `NaN`'],
    [{}, 'Expected `limit` to be a number of bytes from 0 and up, got `undefined`'],
    [{ limit: 16, url: 5 }, 'Expected `url` to be a string, got `number`'],
  ])('refuses %j rather than reading a body of any size', async (options, message) => {
    await expect(readNodeRequest(request(), options as { limit: number })).rejects.toThrow(new TypeError(message));
  });

  it('still refuses a body over a numeric limit, and reads one within it', async () => {
    await expect(readNodeRequest(request(), { limit: 16 })).rejects.toMatchObject({ code: 'InvalidArgument' });
    expect((await readNodeRequest(request(), { limit: 19 })).body.toString()).toBe('a body of 19 bytes.');
  });
});
