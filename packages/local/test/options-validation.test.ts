import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import {
  type EmulatorOptions,
  loadServerlessConfig,
  type ServerlessConfigOptions,
  type SignedRequest,
  signAcsRequest,
  startEmulator,
  verifyAcsSignature,
} from '../src/index.js';

// The emulator's public functions refuse a misspelt option, or one of the wrong type, when they
// are called, naming it: not ignored, not a crash deep inside (`store.startsWith is not a
// function`), and never a signature check that lets every date through.

const entry = fileURLToPath(new URL('./fixtures/echo-handler.mjs', import.meta.url));
const config = fileURLToPath(new URL('./fixtures/multi/s.yaml', import.meta.url));
const quiet = { entry, port: 0, controlPort: 0, output: () => {} };

/** The error `startEmulator` rejects with; an emulator it started anyway is closed first. */
async function refusal(options: unknown): Promise<unknown> {
  try {
    const emulator = await startEmulator(options as EmulatorOptions);
    await emulator.close({ timeoutMs: 100 });
    return undefined;
  } catch (error) {
    return error;
  }
}

describe('startEmulator options', () => {
  it.each<[string, unknown, string]>([
    ['a misspelt key', { ...quiet, contrlPort: 9 }, 'Unknown startEmulator() option `contrlPort`'],
    ['an array', Object.assign([], quiet), 'Expected `options` to be an object, got `array`'],
    ['a numeric host', { ...quiet, host: 5 }, 'Expected `host` to be a non-empty string, got `5`'],
    ['a numeric controlHost', { ...quiet, controlHost: 5 }, 'Expected `controlHost` to be a non-empty string, got `5`'],
    ['a numeric store', { ...quiet, store: 5 }, 'Expected `store` to be a non-empty string, got `5`'],
    ['a numeric cwd', { ...quiet, cwd: 5 }, 'Expected `cwd` to be a non-empty string, got `5`'],
    ['a numeric outDir', { ...quiet, outDir: 5 }, 'Expected `outDir` to be a non-empty string, got `5`'],
    ['a string output', { ...quiet, output: 'stdout' }, 'Expected `output` to be a function, got `string`'],
    [
      'a name starting with -',
      { ...quiet, name: '-fn' },
      'Expected `name` to be a function name (1 to 64 letters, digits, _ and -, starting with a letter or _), got `-fn`',
    ],
    [
      'numeric credentials',
      { ...quiet, credentials: { accessKeyId: 1, accessKeySecret: 2 } },
      'Expected `credentials` to have a non-empty accessKeyId and accessKeySecret',
    ],
  ])('refuses %s', async (_name, options, message) => {
    const error = await refusal(options);
    expect(error).toBeInstanceOf(TypeError);
    expect((error as Error).message).toBe(message);
  });
});

describe('Emulator.close options', () => {
  it.each<[string, unknown, string]>([
    ['a misspelt key', { timeout: 5 }, 'Unknown close() option `timeout`'],
    ['a timeout given as text', { timeoutMs: '5' }, 'Expected `timeoutMs` to be a number from 0 and up, got `5`'],
    ['a negative timeout', { timeoutMs: -1 }, 'Expected `timeoutMs` to be a number from 0 and up, got `-1`'],
    ['null', null, 'Expected `options` to be an object, got `null`'],
  ])('refuses %s, and leaves the emulator running until a valid close', async (_name, options, message) => {
    const emulator = await startEmulator(quiet);
    try {
      await expect(emulator.close(options as { timeoutMs?: number })).rejects.toThrow(new TypeError(message));
      const answer = await fetch(`${emulator.triggerUrl}/`);
      await answer.body?.cancel();
      expect(answer.status).toBeLessThan(500);
    } finally {
      await emulator.close({ timeoutMs: 100 });
    }
  });
});

describe('loadServerlessConfig options', () => {
  it.each<[string, unknown, string]>([
    ['a misspelt key', { regoin: 'cn-shanghai' }, 'Unknown loadServerlessConfig() option `regoin`'],
    ['null', null, 'Expected `options` to be an object, got `null`'],
    ['an env array', { env: [] }, 'Expected `env` to be an object of environment variables, got `array`'],
    ['a numeric region', { region: 5 }, 'Expected `region` to be a region id (cn-hangzhou), got `5`'],
    ['a numeric accountId', { accountId: 42 }, 'Expected `accountId` to be an account id of digits, got `42`'],
  ])('refuses %s', async (_name, options, message) => {
    await expect(loadServerlessConfig(config, options as ServerlessConfigOptions)).rejects.toThrow(
      new TypeError(message),
    );
  });
});

const credentials = { accessKeyId: 'dev', accessKeySecret: 'dev-secret' };
const request: SignedRequest = { method: 'GET', path: '/2023-03-30/functions', headers: { host: '127.0.0.1:9001' } };
const lookup = (id: string) => (id === credentials.accessKeyId ? credentials.accessKeySecret : undefined);

describe('signAcsRequest', () => {
  it.each<[string, () => unknown, string]>([
    [
      'null credentials',
      () => signAcsRequest(request, null as never),
      'Expected `credentials` to have a non-empty accessKeyId and accessKeySecret',
    ],
    [
      'a misspelt option',
      () => signAcsRequest(request, credentials, { data: new Date() } as never),
      'Unknown signAcsRequest() option `data`',
    ],
    [
      'a date string',
      () => signAcsRequest(request, credentials, { date: '2024-01-01' } as never),
      'Expected `date` to be a valid Date, got `string`',
    ],
    [
      'an invalid Date',
      () => signAcsRequest(request, credentials, { date: new Date(Number.NaN) }),
      'Expected `date` to be a valid Date, got `Invalid Date`',
    ],
    [
      'a null request',
      () => signAcsRequest(null as never, credentials),
      'Expected `request` to be an object, got `null`',
    ],
  ])('refuses %s', (_name, call, message) => {
    expect(call).toThrow(new TypeError(message));
  });
});

describe('verifyAcsSignature', () => {
  // Signed an hour ago: outside the default 900 s window.
  const stale = {
    ...request,
    headers: {
      ...request.headers,
      ...signAcsRequest(request, credentials, { date: new Date(Date.now() - 3_600_000) }),
    },
  };

  it('refuses a maxSkewSeconds or now that would let a stale signature through', () => {
    expect(verifyAcsSignature(stale, lookup)).toMatchObject({ ok: false, code: 'RequestTimeTooSkewed' });
    expect(() => verifyAcsSignature(stale, lookup, { maxSkewSeconds: Number.NaN })).toThrow(
      new TypeError('Expected `maxSkewSeconds` to be a number from 0 and up, got `NaN`'),
    );
    expect(() => verifyAcsSignature(stale, lookup, { now: 'now' as never })).toThrow(
      new TypeError('Expected `now` to be epoch milliseconds, got `now`'),
    );
  });

  it.each<[string, () => unknown, string]>([
    [
      'a misspelt option',
      () => verifyAcsSignature(stale, lookup, { maxSkew: 5 } as never),
      'Unknown verifyAcsSignature() option `maxSkew`',
    ],
    [
      'a skew given as text',
      () => verifyAcsSignature(stale, lookup, { maxSkewSeconds: '10' as never }),
      'Expected `maxSkewSeconds` to be a number from 0 and up, got `10`',
    ],
    [
      'a negative skew',
      () => verifyAcsSignature(stale, lookup, { maxSkewSeconds: -1 }),
      'Expected `maxSkewSeconds` to be a number from 0 and up, got `-1`',
    ],
    [
      'a checkNonce that is not a function',
      () => verifyAcsSignature(stale, lookup, { checkNonce: true as never }),
      'Expected `checkNonce` to be a function, got `boolean`',
    ],
    [
      'null options',
      () => verifyAcsSignature(stale, lookup, null as never),
      'Expected `options` to be an object, got `null`',
    ],
    [
      'a lookupSecret that is not a function',
      () => verifyAcsSignature(stale, {} as never),
      'Expected `lookupSecret` to be a function, got `object`',
    ],
  ])('refuses %s', (_name, call, message) => {
    expect(call).toThrow(new TypeError(message));
  });

  it('still accepts a fresh signature, and a body given as a Uint8Array', () => {
    const body = new TextEncoder().encode('{"a":1}');
    const post = { method: 'POST', path: '/x', headers: { host: 'h', 'content-type': 'application/json' } };
    const signed = {
      ...post,
      headers: { ...post.headers, ...signAcsRequest({ ...post, body: body as Buffer }, credentials) },
    };
    expect(verifyAcsSignature({ ...signed, body: body as Buffer }, lookup)).toMatchObject({
      ok: true,
      accessKeyId: 'dev',
    });
  });
});
