import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Emulator, type EmulatorOptions, signAcsRequest } from '../src/index.js';
import { type Answer, exchange, jsonOf } from './fuzz-gen.js';
import { startEcho } from './helpers.js';

/** The cases the emulator's fuzz tests (fuzz-trigger, fuzz-control) found, kept as plain tests. */

const outDir = mkdtempSync(join(tmpdir(), 'fc-async-fuzz-regressions-'));
afterAll(() => rmSync(outDir, { recursive: true, force: true }));

const startEchoHere = (options: EmulatorOptions = {}) => startEcho({ outDir, ...options });

/** Sends a raw request (lines joined with CRLF, the head ended for it) and reads the answer. */
async function send(url: string, lines: string[], body = ''): Promise<Answer> {
  const answer = await exchange(url, Buffer.from(`${lines.join('\r\n')}\r\n\r\n${body}`), false);
  if (typeof answer === 'string') throw new Error(answer);
  return answer;
}

describe('requests Node answers itself with a bare status line', () => {
  let emulator: Emulator;
  beforeAll(async () => {
    emulator = await startEchoHere();
  });
  afterAll(() => emulator.close());

  it('answers an HTTP/1.1 request without Host on the trigger with 400 { code, message }, not an empty 400', async () => {
    const answer = await send(emulator.triggerUrl, ['GET /jobs HTTP/1.1', 'Connection: close']);
    expect(answer.status).toBe(400);
    expect(answer.headers['content-type']).toMatch(/^application\/json/);
    expect(jsonOf(answer)).toEqual({
      code: 'InvalidArgument',
      message: 'An HTTP/1.1 request must carry a Host header',
    });
    // HTTP/1.0 has no Host requirement: served as before.
    expect((await send(emulator.triggerUrl, ['GET /jobs HTTP/1.0'])).status).toBe(200);
  });

  it('answers an HTTP/1.1 request without Host on the control plane with { Code, Message, RequestId }', async () => {
    const answer = await send(emulator.controlUrl, [
      'GET /2023-03-30/functions/echo/async-tasks HTTP/1.1',
      'Connection: close',
    ]);
    expect(answer.status).toBe(403);
    expect(jsonOf(answer)).toEqual({
      Code: 'AccessDenied',
      Message: 'Host  is not a loopback name',
      RequestId: answer.headers['x-fc-request-id'],
    });
  });

  it('answers an Expect other than 100-continue with 417 and a JSON error on both ports, not an empty 417', async () => {
    const request = (path: string) => [
      `POST ${path} HTTP/1.1`,
      'Host: localhost',
      'Expect: something-else',
      'Content-Length: 2',
      'Connection: close',
    ];
    const trigger = await send(emulator.triggerUrl, request('/jobs'), '{}');
    expect(trigger.status).toBe(417);
    expect(jsonOf(trigger)).toEqual({
      code: 'ExpectationFailed',
      message: 'Expect: something-else is not supported; only 100-continue is',
    });
    const control = await send(emulator.controlUrl, request('/2023-03-30/functions/echo/invocations'), '{}');
    expect(control.status).toBe(417);
    expect(jsonOf(control)).toEqual({
      Code: 'ExpectationFailed',
      Message: 'Expect: something-else is not supported; only 100-continue is',
      RequestId: control.headers['x-fc-request-id'],
    });
    // 100-continue still works.
    const go = await send(
      emulator.triggerUrl,
      [...request('/jobs').slice(0, 2), 'Expect: 100-continue', 'Content-Length: 2', 'Connection: close'],
      '{}',
    );
    expect(go.status).toBe(200);
  });
});

describe('a signed control plane', () => {
  const key = { accessKeyId: 'fuzz-key', accessKeySecret: 'fuzz-secret' };
  let emulator: Emulator;
  beforeAll(async () => {
    emulator = await startEchoHere({ credentials: key, requireSignatures: true });
  });
  afterAll(() => emulator.close());

  it('answers a signed request that lost its Host header with 400 MissingRequiredHeader, not an empty 400', async () => {
    const path = '/2023-03-30/functions/echo/async-tasks';
    const host = new URL(emulator.controlUrl).host;
    const signed = signAcsRequest({ method: 'GET', path, headers: { host, 'x-acs-action': 'ListAsyncTasks' } }, key);
    const lines = Object.entries(signed)
      .filter(([name]) => name !== 'host')
      .map(([name, value]) => `${name}: ${value}`);
    const answer = await send(emulator.controlUrl, [`GET ${path} HTTP/1.1`, ...lines, 'Connection: close']);
    expect(answer.status).toBe(400);
    expect(jsonOf(answer)).toEqual({
      Code: 'MissingRequiredHeader',
      Message: 'The request has no host header',
      RequestId: answer.headers['x-fc-request-id'],
    });
  });
});

describe('InvokeFunction with an HTTP event the core used to fail on with a 500', () => {
  let emulator: Emulator;
  beforeAll(async () => {
    emulator = await startEchoHere();
  });
  afterAll(() => emulator.close());

  const invoke = (event: unknown) =>
    fetch(`${emulator.controlUrl}/2023-03-30/functions/echo/invocations`, {
      method: 'POST',
      body: JSON.stringify(event),
    });

  it('refuses an event header whose value is an object with 400 InvalidArgument', async () => {
    const res = await invoke({
      rawPath: '/',
      headers: { 'X-Odd': { toString: 'x' } },
      requestContext: { http: { method: 'GET' } },
    });
    expect(res.status).toBe(400);
    expect(await res.json()).toMatchObject({
      Code: 'InvalidArgument',
      Message: 'The header "X-Odd" must be a string, got an object',
    });
  });

  it('serves an event whose requestContext.http.path holds an emoji (no rawPath)', async () => {
    const res = await invoke({ requestContext: { http: { method: 'GET', path: '/😀' } } });
    expect(res.status).toBe(200);
    expect(res.headers.get('x-fc-http-status')).toBe('200');
    expect(JSON.parse(await res.text())).toMatchObject({ event: { rawPath: '/%F0%9F%98%80' } });
  });
});
