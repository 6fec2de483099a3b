import { describe, expect, it } from 'vitest';
import { type SignedRequest, signAcsRequest, verifyAcsSignature } from '../src/index.js';
import { fuzzSeed, Gen } from './fuzz-gen.js';

/**
 * The ACS3 signature checks, fuzzed in-process: any request (odd methods, paths, queries,
 * headers, bodies) gets a verdict, never a throw, and a refusal carries a 4xx and a stable code;
 * and what `signAcsRequest` signs, `verifyAcsSignature` accepts, whatever the path, query and
 * header values. Replay a failure with `FUZZ_SEED=<seed> npx vitest run test/fuzz-signature.test.ts`.
 */

const key = { accessKeyId: 'fuzz-key', accessKeySecret: 'fuzz-secret' };
const lookup = (id: string) => (id === key.accessKeyId ? key.accessKeySecret : undefined);
const CODES = [
  'MissingRequiredHeader',
  'InvalidArgument',
  'InvalidAccessKeyID',
  'SignatureNotMatch',
  'RequestTimeTooSkewed',
  'SignatureNonceUsed',
];

/** A path segment or query part a client might send, percent-encoded or not. */
function part(g: Gen, encode = g.chance(0.8)): string {
  const raw = g.pick([
    'a',
    'job_1',
    "it's",
    'a+b',
    'a b',
    '*',
    '~x',
    '(1)',
    '!',
    '😀',
    'é',
    '中文',
    '%',
    '=',
    '&',
    g.oddValue(),
  ]);
  return encode ? encodeURIComponent(raw) : raw;
}

function anyPath(g: Gen): string {
  return `/2023-03-30/functions/${Array.from({ length: 1 + g.int(4) }, () => part(g)).join('/')}`;
}

function anyQuery(g: Gen, valid: boolean): string {
  // A valid query is percent-encoded throughout, as a client sends it.
  const side = () => part(g, valid ? true : g.chance(0.8));
  const pairs = Array.from({ length: g.int(4) }, () => `${side()}=${side()}`);
  if (!valid && g.chance(0.5)) pairs.push(g.pick(['a=%zz', '%E0%A4%A=1', 'x=%']));
  return pairs.filter(() => valid || g.chance(0.9)).join('&');
}

/** A random Authorization value: ACS3-shaped with broken fields, legacy, or junk. */
function anyAuthorization(g: Gen): string {
  const field = () =>
    g.pick([
      `Credential=${g.pick([key.accessKeyId, 'other', ''])}`,
      `SignedHeaders=${g.pick(['host', 'host;x-acs-date', '', ';;', g.oddValue()])}`,
      `Signature=${g.pick(['00', 'zz', '', 'a'.repeat(64), g.oddValue()])}`,
      g.oddValue(),
    ]);
  switch (g.int(5)) {
    case 0:
      return `acs ${key.accessKeyId}:${g.oddValue()}`;
    case 1:
      return g.oddValue();
    case 2:
      return `${g.pick(['ACS3-HMAC-SHA256', 'ACS3-HMAC-SM3', 'ACS3-HMAC-MD5', 'ACS3-'])} ${Array.from({ length: g.int(5) }, field).join(g.pick([',', ', ', ';']))}`;
    default:
      return `ACS3-HMAC-SHA256 ${field()},${field()},${field()}`;
  }
}

describe('fuzzing verifyAcsSignature', () => {
  it('gives 3000 malformed requests a verdict, never a throw: a 4xx with a known code', () => {
    const seed = fuzzSeed(20_260_306);
    const g = new Gen(seed);
    for (let i = 0; i < 3000; i++) {
      const headers: SignedRequest['headers'] = {};
      if (g.chance(0.9)) headers.authorization = anyAuthorization(g);
      for (const name of [
        'host',
        'x-acs-date',
        'x-acs-content-sha256',
        'x-acs-signature-nonce',
        'content-type',
        'x-acs-action',
      ]) {
        if (g.chance(0.6)) headers[name] = g.chance(0.3) ? [g.oddValue(), g.oddValue()] : g.oddValue();
      }
      if (g.chance(0.5)) headers['x-acs-date'] = new Date(Date.now() + g.pick([0, -1e6, 1e9])).toISOString();
      const request: SignedRequest = {
        method: g.pick(['GET', 'post', '', g.oddValue()]),
        path: g.chance(0.7) ? anyPath(g) : g.oddValue(),
        query: anyQuery(g, g.chance(0.5)),
        headers,
        body: g.chance(0.5) ? Buffer.from(g.oddValue()) : undefined,
      };
      let result: ReturnType<typeof verifyAcsSignature>;
      try {
        result = verifyAcsSignature(request, lookup, { checkNonce: () => g.chance(0.5) });
      } catch (error) {
        throw new Error(`seed ${seed}, case ${i}: threw ${String(error)} for ${JSON.stringify(request)}`);
      }
      if (result.ok) throw new Error(`seed ${seed}, case ${i}: accepted ${JSON.stringify(request)}`);
      const label = `seed ${seed}, case ${i}: ${JSON.stringify(result)}`;
      expect(result.status === 400 || result.status === 403, label).toBe(true);
      expect(CODES, label).toContain(result.code);
      expect(result.message, label).toMatch(/\S/);
    }
  });

  it('accepts 1000 requests signed by signAcsRequest, whatever their path, query and header values', () => {
    const seed = fuzzSeed(20_260_307);
    const g = new Gen(seed);
    for (let i = 0; i < 1000; i++) {
      const headers: Record<string, string> = {
        host: g.pick(['127.0.0.1:9001', 'localhost:9001', 'fc.local']),
        'x-acs-action': g.pick(['ListAsyncTasks', 'InvokeFunction']),
        'x-acs-version': '2023-03-30',
      };
      if (g.chance(0.5))
        headers['content-type'] = g.pick(['application/json', 'application/octet-stream', ' text/plain ']);
      if (g.chance(0.3)) headers['x-acs-extra'] = g.oddValue().replaceAll('\u0000', '');
      const request = {
        method: g.pick(['GET', 'PUT', 'POST', 'DELETE']),
        path: anyPath(g),
        query: anyQuery(g, true),
        headers,
        body: g.chance(0.5) ? Buffer.from(g.oddValue()) : Buffer.alloc(0),
      };
      const signed = signAcsRequest(request, key);
      const result = verifyAcsSignature({ ...request, headers: { ...headers, ...signed } }, lookup);
      expect(result, `seed ${seed}, case ${i}: ${JSON.stringify(request)}`).toMatchObject({ ok: true });
    }
  });
});
