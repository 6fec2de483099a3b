import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { type Emulator, startEmulator } from '../src/index.js';
import { fixture, startEcho } from './helpers.js';

// InvokeFunction refusing an async call says when to try again, as the HTTP trigger does: its
// answer used to carry FC's code but drop the engine's Retry-After.

let emulator: Emulator;

beforeAll(async () => {
  emulator = await startEcho({ maxQueuedTasks: 1 });
});

afterAll(async () => {
  await emulator?.close({ timeoutMs: 100 });
});

const invokeAsync = () =>
  fetch(`${emulator.controlUrl}/2023-03-30/functions/echo/invocations`, {
    method: 'POST',
    headers: { 'x-fc-invocation-type': 'Async', 'x-fc-async-delay': '3599', 'content-type': 'application/json' },
    body: '{}',
  });

describe('InvokeFunction, async, with the queue full', () => {
  it('answers 429 ResourceThrottled with Retry-After: 1, like the trigger', async () => {
    expect((await invokeAsync()).status).toBe(202);
    const refused = await invokeAsync();
    expect([refused.status, refused.headers.get('retry-after')]).toEqual([429, '1']);
    expect(await refused.json()).toMatchObject({ Code: 'ResourceThrottled' });
    const viaTrigger = await fetch(`${emulator.triggerUrl}/`, {
      method: 'POST',
      headers: { 'x-fc-invocation-type': 'Async', 'x-fc-async-delay': '3599' },
      body: '{}',
    });
    expect([viaTrigger.status, viaTrigger.headers.get('retry-after')]).toEqual([429, '1']);
  });
});

// An async InvokeFunction whose Content-Length is past the limit is refused from its head, before
// `100 Continue`: the client used to be invited to upload it only to be refused.
describe('InvokeFunction with a payload its Content-Length puts past a limit', () => {
  const root = mkdtempSync(join(tmpdir(), 'fc-async-invoke-limit-'));
  let limited: Emulator;
  beforeAll(async () => {
    // An event function whose fc-async handler sets async.maxAsyncPayloadBytes: 1000.
    writeFileSync(
      join(root, 's.yaml'),
      `resources:
  small:
    component: fc3
    props:
      functionName: small
      code: ${fixture('')}
      handler: small-async-limit.handler
      runtime: nodejs20
  smallweb:
    component: fc3
    props:
      functionName: smallweb
      code: ${fixture('')}
      handler: small-async-limit.handler
      runtime: nodejs20
      triggers: [{ triggerName: http, triggerType: http }]
`,
    );
    limited = await startEmulator({ config: join(root, 's.yaml'), port: 0, controlPort: 0, output: () => {} });
  });
  afterAll(async () => {
    await limited?.close({ timeoutMs: 1000 });
    rmSync(root, { recursive: true, force: true });
  });

  /** Sends `request` on a fresh connection; what comes back until the server closes it. */
  async function raw(request: string): Promise<string> {
    const url = new URL(limited.controlUrl);
    const socket = connect(Number(url.port), url.hostname);
    const state = { answer: '', closed: false };
    socket.setEncoding('utf8').on('data', (chunk: string) => {
      state.answer += chunk;
    });
    socket.on('error', () => {});
    socket.on('close', () => {
      state.closed = true;
    });
    socket.write(request.replace('HOST', url.host));
    await vi.waitFor(() => expect(state.closed).toBe(true), { timeout: 10_000 });
    return state.answer;
  }
  const invocation = (extra: string, fn = 'small') =>
    `POST /2023-03-30/functions/${fn}/invocations HTTP/1.1\r\nHost: HOST\r\nContent-Type: application/octet-stream\r\n${extra}\r\n`;
  const apiError = (answer: string) => JSON.parse(answer.slice(answer.indexOf('\r\n\r\n') + 4));

  it('async past the function’s async limit: 400 EntityTooLarge naming it, before `100 Continue`', async () => {
    const answer = await raw(
      invocation('X-Fc-Invocation-Type: Async\r\nContent-Length: 2000\r\nExpect: 100-continue\r\n'),
    );
    expect(answer).not.toContain('100 Continue');
    expect(answer).toMatch(/^HTTP\/1\.1 400 /);
    expect(apiError(answer)).toMatchObject({
      Code: 'EntityTooLarge',
      Message: 'The async request body is 2000 bytes, above the limit of 1000',
    });
  });

  // It used to read an HTTP function's payload first (it may be an FC event whose body is smaller):
  // FC holds the payload itself to the limit.
  it('an HTTP function’s too: 400 EntityTooLarge naming the limit, before `100 Continue`', async () => {
    const answer = await raw(
      invocation('X-Fc-Invocation-Type: Async\r\nContent-Length: 2000\r\nExpect: 100-continue\r\n', 'smallweb'),
    );
    expect(answer).not.toContain('100 Continue');
    expect(answer).toMatch(/^HTTP\/1\.1 400 /);
    expect(apiError(answer)).toMatchObject({
      Code: 'EntityTooLarge',
      Message: 'The async request body is 2000 bytes, above the limit of 1000',
    });
  });

  it('says what the engine says of the same payload once read (sent chunked)', async () => {
    const early = await raw(
      invocation('X-Fc-Invocation-Type: Async\r\nContent-Length: 2000\r\nExpect: 100-continue\r\n'),
    );
    const body = 'a'.repeat(2000);
    const read = await raw(
      invocation(
        `X-Fc-Invocation-Type: Async\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n${body.length.toString(16)}\r\n${body}\r\n0\r\n`,
      ),
    );
    const { RequestId: _a, ...earlyError } = apiError(early);
    const { RequestId: _b, ...readError } = apiError(read);
    expect(readError).toMatchObject({ Code: 'EntityTooLarge' });
    expect(earlyError).toEqual(readError);
  });

  it('sync past 32 MB: refused before `100 Continue` too', async () => {
    const answer = await raw(invocation('Content-Length: 33554433\r\nExpect: 100-continue\r\n'));
    expect(answer).not.toContain('100 Continue');
    expect(apiError(answer)).toMatchObject({ Code: 'EntityTooLarge' });
  });

  it('a sync payload past the async limit still runs', async () => {
    const res = await fetch(`${limited.controlUrl}/2023-03-30/functions/small/invocations`, {
      method: 'POST',
      body: 'a'.repeat(2000),
    });
    expect(res.status).toBe(200);
  });
});
