import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Readable } from 'node:stream';
import * as $dara from '@darabonba/typescript';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type SignedRequest, signAcsRequest, verifyAcsSignature } from '../src/index.js';
import { $FC, sdk } from './helpers.js';

interface Captured {
  method: string;
  path: string;
  query: string;
  headers: IncomingHttpHeaders;
  body: Buffer;
}

const KEY = { accessKeyId: 'LTAI-test', accessKeySecret: 'secret-123' };
const lookup = (id: string) =>
  id === KEY.accessKeyId ? KEY.accessKeySecret : id === 'STS.temp' ? 'sts-secret' : undefined;
const captured: Captured[] = [];
let server: Server;
let endpoint: string;

/** What the official SDK sent, captured by a server that answers `{}`. */
beforeAll(async () => {
  server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const url = req.url ?? '/';
      const q = url.indexOf('?');
      captured.push({
        method: req.method ?? 'GET',
        path: q < 0 ? url : url.slice(0, q),
        query: q < 0 ? '' : url.slice(q + 1),
        headers: req.headers,
        body: Buffer.concat(chunks),
      });
      res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const client = sdk(endpoint, KEY);
  await client.listAsyncTasks(
    'jobs',
    new $FC.ListAsyncTasksRequest({ prefix: "job- a*b!c'(d)~e&f=g+h/ü", limit: 5, nextToken: 'MTIz+NCN/hYmM=' }),
  );
  await client.putAsyncInvokeConfig(
    'jobs',
    new $FC.PutAsyncInvokeConfigRequest({ body: new $FC.PutAsyncInvokeConfigInput({ maxAsyncRetryAttempts: 2 }) }),
  );
  await client.invokeFunctionWithOptions(
    'jobs',
    new $FC.InvokeFunctionRequest({ body: Readable.from([Buffer.from([0, 1, 2]), Buffer.from('tail')]) }),
    new $FC.InvokeFunctionHeaders({ xFcInvocationType: 'Async' }),
    new $dara.RuntimeOptions({}),
  );
  await client.getAsyncTask("f*u n~c!'()", 't*1~2*', new $FC.GetAsyncTaskRequest({}));
  await client.stopAsyncTask('jobs', 'job_1', new $FC.StopAsyncTaskRequest({}));
  const FC = await import('@alicloud/fc20230330');
  const { $OpenApiUtil } = await import('@alicloud/openapi-core');
  const Client = (
    typeof FC.default.default === 'function' ? FC.default.default : FC.default
  ) as typeof FC.default.default;
  const sts = new Client(
    new $OpenApiUtil.Config({
      accessKeyId: 'STS.temp',
      accessKeySecret: 'sts-secret',
      securityToken: 'token-1',
      endpoint: new URL(endpoint).host,
      protocol: 'http',
    }),
  );
  await sts.getAsyncTask('jobs', 'job_1', new $FC.GetAsyncTaskRequest({}));
});
afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

const list = () => captured[0] as Captured;
const put = () => captured[1] as Captured;

const asSigned = (c: Captured, patch: Partial<SignedRequest> = {}): SignedRequest => ({
  method: c.method,
  path: c.path,
  query: c.query,
  headers: c.headers,
  body: c.body,
  ...patch,
});

describe('verifyAcsSignature against the official SDK', () => {
  it('verifies every request the SDK sent: query escapes, JSON and binary bodies, odd paths, STS', () => {
    expect(captured).toHaveLength(6);
    for (const c of captured) {
      const result = verifyAcsSignature(asSigned(c), lookup);
      expect(result, `${c.method} ${c.path}`).toMatchObject({ ok: true });
    }
    const sts = verifyAcsSignature(asSigned(captured[5] as Captured), lookup);
    expect(sts).toEqual({ ok: true, accessKeyId: 'STS.temp', algorithm: 'ACS3-HMAC-SHA256', securityToken: 'token-1' });
  });

  it.each([
    ['a wrong secret', () => verifyAcsSignature(asSigned(list()), () => 'wrong'), 403, 'SignatureNotMatch'],
    ['an unknown key', () => verifyAcsSignature(asSigned(list()), () => undefined), 403, 'InvalidAccessKeyID'],
    [
      'a changed query',
      () => verifyAcsSignature(asSigned(list(), { query: `${list().query}&limit=6` }), lookup),
      403,
      'SignatureNotMatch',
    ],
    [
      'a changed path',
      () => verifyAcsSignature(asSigned(list(), { path: list().path.replace('jobs', 'other') }), lookup),
      403,
      'SignatureNotMatch',
    ],
    [
      'a changed method',
      () => verifyAcsSignature(asSigned(list(), { method: 'DELETE' }), lookup),
      403,
      'SignatureNotMatch',
    ],
    [
      'a changed body',
      () => verifyAcsSignature(asSigned(put(), { body: Buffer.from('{"maxAsyncRetryAttempts":8}') }), lookup),
      403,
      'SignatureNotMatch',
    ],
    [
      'an unsigned x-acs header',
      () => verifyAcsSignature(asSigned(list(), { headers: { ...list().headers, 'x-acs-extra': '1' } }), lookup),
      400,
      'InvalidArgument',
    ],
    [
      'no Authorization',
      () => verifyAcsSignature(asSigned(list(), { headers: { ...list().headers, authorization: undefined } }), lookup),
      400,
      'MissingRequiredHeader',
    ],
    [
      'the legacy acs AK:sig scheme',
      () =>
        verifyAcsSignature(
          asSigned(list(), { headers: { ...list().headers, authorization: 'acs LTAI-test:abc=' } }),
          lookup,
        ),
      400,
      'InvalidArgument',
    ],
    [
      'a date 16 minutes off',
      () => verifyAcsSignature(asSigned(list()), lookup, { now: Date.now() + 16 * 60_000 }),
      403,
      'RequestTimeTooSkewed',
    ],
    [
      'broken percent-encoding',
      () => verifyAcsSignature(asSigned(list(), { query: 'prefix=%E0%A4%A' }), lookup),
      400,
      'InvalidArgument',
    ],
  ])('refuses %s', (_label, run, status, code) => {
    expect(run()).toMatchObject({ ok: false, status, code });
  });

  it('ignores unsigned x-fc-* headers, as FC does', () => {
    const c = captured[2] as Captured;
    const headers = { ...c.headers, 'x-fc-invocation-type': 'Sync', 'x-fc-foo': 'bar' };
    expect(verifyAcsSignature(asSigned(c, { headers }), lookup)).toMatchObject({ ok: true });
  });
});

describe('signAcsRequest', () => {
  it('produces the Authorization the SDK sends for the same request, date and nonce', () => {
    const c = list();
    const headers: Record<string, string> = {};
    for (const [k, v] of Object.entries(c.headers)) {
      if (k === 'host' || (k.startsWith('x-acs-') && k !== 'x-acs-content-sha256')) headers[k] = String(v);
    }
    const signed = signAcsRequest({ method: c.method, path: c.path, query: c.query, headers, body: c.body }, KEY);
    expect(signed.authorization).toBe(c.headers.authorization);
  });

  it('signs requests that verify', () => {
    const request = {
      method: 'GET',
      path: '/2023-03-30/functions/f/async-tasks',
      query: 'limit=5&prefix=a%20b',
      body: Buffer.alloc(0),
    };
    const headers = signAcsRequest(
      { ...request, headers: { host: '127.0.0.1:9001', 'x-acs-action': 'ListAsyncTasks' } },
      KEY,
    );
    expect(verifyAcsSignature({ ...request, headers }, lookup)).toMatchObject({
      ok: true,
      accessKeyId: KEY.accessKeyId,
    });
  });
});
