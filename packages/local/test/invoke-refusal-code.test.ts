import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import * as $dara from '@darabonba/typescript';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { type Emulator, startEmulator } from '../src/index.js';
import { $FC, fixture, sdk, sdkError } from './helpers.js';

// InvokeFunction answered FC's API code for an async payload past the limit, EntityTooLarge, only
// when the engine's refusal read "The async request body is N bytes": it matched the engine's
// message. Here the core words that refusal otherwise, as any release may: the API's code must not
// change with it.
vi.mock('../../core/dist/errors.js', async (importOriginal) => {
  const original = await importOriginal<typeof import('../../core/dist/errors.js')>();
  return {
    ...original,
    asyncBodyTooLarge: (size: string, limit: number) =>
      original.badRequest('InvalidArgument', `Reworded: an async payload of ${size} is over ${limit} bytes`),
  };
});

const LIMIT = 128 * 1024;
const root = mkdtempSync(join(tmpdir(), 'fc-async-invoke-code-'));
let emulator: Emulator;

beforeAll(async () => {
  writeFileSync(join(root, 'fns.mjs'), 'export const evt = async (event) => ({ bytes: event.length });\n');
  writeFileSync(
    join(root, 's.yaml'),
    `resources:
  web:
    component: fc3
    props:
      functionName: web
      code: ${fixture('')}
      handler: echo-handler.handler
      triggers: [{ triggerName: http, triggerType: http }]
  evt:
    component: fc3
    props:
      functionName: evt
      code: ./
      handler: fns.evt
`,
  );
  emulator = await startEmulator({ config: join(root, 's.yaml'), port: 0, controlPort: 0, output: () => {} });
});

afterAll(async () => {
  await emulator?.close({ timeoutMs: 1000 });
  rmSync(root, { recursive: true, force: true });
});

const api = (fn: string, init: RequestInit) =>
  fetch(`${emulator.controlUrl}/2023-03-30/functions/${fn}/invocations`, { method: 'POST', ...init });

describe('InvokeFunction’s EntityTooLarge, whatever the words of the engine’s refusal', () => {
  it('an HTTP function called with the official client: 400 EntityTooLarge, in the core’s words', async () => {
    const client = sdk(emulator.controlUrl);
    const error = await sdkError(
      client.invokeFunctionWithOptions(
        'web',
        new $FC.InvokeFunctionRequest({ body: Readable.from([Buffer.alloc(LIMIT + 1, 97)]) }),
        new $FC.InvokeFunctionHeaders({ xFcInvocationType: 'Async' }),
        new $dara.RuntimeOptions({}),
      ),
    );
    expect(error).toMatchObject({ code: 'EntityTooLarge', statusCode: 400 });
    expect(error.message).toContain(`Reworded: an async payload of ${LIMIT + 1} bytes is over ${LIMIT} bytes`);
  });

  it('a payload sent chunked, its size known only once read: 400 EntityTooLarge', async () => {
    const res = await api('evt', {
      headers: { 'x-fc-invocation-type': 'Async', 'content-type': 'application/octet-stream' },
      body: Readable.toWeb(Readable.from([Buffer.alloc(LIMIT), Buffer.alloc(1)])) as ReadableStream,
      duplex: 'half',
    } as RequestInit);
    expect(res.status).toBe(400);
    expect(await res.json()).toMatchObject({
      Code: 'EntityTooLarge',
      Message: `Reworded: an async payload of ${LIMIT + 1} bytes is over ${LIMIT} bytes`,
    });
  });

  it('an FC event that asks for an async call itself, through a sync call of the API: 400 EntityTooLarge', async () => {
    const event = {
      version: 'v1',
      rawPath: '/',
      body: 'a'.repeat(LIMIT + 1),
      isBase64Encoded: false,
      headers: { 'x-fc-invocation-type': 'Async' },
      queryParameters: {},
      requestContext: { http: { method: 'POST', path: '/' } },
    };
    const payload = JSON.stringify(event);
    const res = await api('web', { headers: { 'content-type': 'application/json' }, body: payload });
    expect(res.status).toBe(400);
    expect(await res.json()).toMatchObject({
      Code: 'EntityTooLarge',
      Message: `Reworded: an async payload of ${Buffer.byteLength(payload)} bytes is over ${LIMIT} bytes`,
    });
  });
});
