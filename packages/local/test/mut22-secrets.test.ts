import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type AsyncTask, fcHttpEvent } from '@fc-async/core';
import { afterEach, describe, expect, it } from 'vitest';
import { signAcsRequest, startEmulator } from '../src/index.js';
import { waitFor } from './helpers.js';

// Secrets the emulator keeps out of what it shows, where no other test held it (session 22's
// secrets mutation audit): `--redact-header` names in what an entry's fc-async handler shows its
// tracing hooks (a hook copying headers into span attributes must not get them), a query string in
// the log line of an InvokeFunction call, and the control plane's key in its refusals.

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

interface HookGlobal {
  __mut22Hooks?: unknown[];
}

describe('startEmulator({ redactHeaders }) and an entry exporting an fc-async handler with tracing hooks', () => {
  it("keeps the emulator's names and the handler's own out of what requestHook and responseHook see", async () => {
    const dir = mkdtempSync(join(tmpdir(), 'fc-async-mut22-secrets-'));
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    const seen: unknown[] = [];
    (globalThis as HookGlobal).__mut22Hooks = seen;
    cleanups.push(() => delete (globalThis as HookGlobal).__mut22Hooks);
    const file = join(dir, 'traced.mjs');
    writeFileSync(
      file,
      `import { BasicTracerProvider } from ${JSON.stringify(import.meta.resolve('@opentelemetry/sdk-trace-base'))};
import { createFcHandler } from ${JSON.stringify(import.meta.resolve('@fc-async/core'))};
const push = (_span, info) => globalThis.__mut22Hooks.push({ kind: info.kind, request: info.request.headers, response: info.response?.headers });
export const handler = createFcHandler((req, res) => {
  res.setHeader('x-api-key', String(req.headers['x-api-key'] ?? 'none'));
  res.end('done');
}, { redactHeaders: ['x-own'], tracing: { tracerProvider: new BasicTracerProvider(), requestHook: push, responseHook: push } });
`,
    );
    const emulator = await startEmulator({
      entry: file,
      name: 'traced',
      port: 0,
      controlPort: 0,
      output: () => {},
      redactHeaders: ['X-Api-Key'],
    });
    cleanups.push(() => emulator.close({ timeoutMs: 1000 }));
    const headers = { 'x-api-key': 'LEAK-API-KEY', 'x-own': 'LEAK-OWN', 'x-visible': 'kept' };
    const sync = await fetch(`${emulator.triggerUrl}/`, { method: 'POST', headers });
    expect(sync.status).toBe(200);
    const accepted = await fetch(`${emulator.triggerUrl}/`, {
      method: 'POST',
      headers: { ...headers, 'x-fc-invocation-type': 'Async', 'x-fc-async-task-id': 'traced1' },
    });
    expect(accepted.status).toBe(202);
    await waitFor(async () => {
      const res = await fetch(`${emulator.controlUrl}/2023-03-30/functions/traced/async-tasks/traced1`);
      return ((await res.json()) as AsyncTask).status === 'Succeeded' ? true : undefined;
    });
    // The sync call's and the accepted call's invocation spans, and the attempt's: each with both hooks.
    await waitFor(() =>
      seen.filter((s) => (s as { kind: string }).kind === 'attempt').length >= 2 ? true : undefined,
    );
    expect(seen).toContainEqual(
      expect.objectContaining({ kind: 'invocation', request: expect.objectContaining({ 'x-visible': 'kept' }) }),
    );
    expect(JSON.stringify(seen)).not.toMatch(/LEAK-[\w-]+/);
  });
});

function folder(): string {
  const dir = mkdtempSync(join(tmpdir(), 'fc-async-mut22-secrets-'));
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** An s.yaml serving `web`, an HTTP function answering `ok`. */
function webConfig(dir: string): string {
  writeFileSync(join(dir, 'web.mjs'), "export const handler = async () => ({ statusCode: 200, body: 'ok' });\n");
  writeFileSync(
    join(dir, 's.yaml'),
    `resources:
  web:
    component: fc3
    props:
      functionName: web
      code: ./
      handler: web.handler
      runtime: nodejs20
      triggers: [{ triggerName: http, triggerType: http }]
`,
  );
  return join(dir, 's.yaml');
}

describe('the log line of an InvokeFunction call', () => {
  it.each(['text', 'json'] as const)(
    'shows the path of an HTTP event without its query string (%s)',
    async (logFormat) => {
      const lines: string[] = [];
      const emulator = await startEmulator({
        config: webConfig(folder()),
        port: 0,
        controlPort: 0,
        logFormat,
        output: (text) => lines.push(text),
      });
      cleanups.push(() => emulator.close({ timeoutMs: 1000 }));
      const event = fcHttpEvent({ method: 'GET', url: '/report?token=LEAK-QUERY' });
      const res = await fetch(`${emulator.controlUrl}/2023-03-30/functions/web/invocations`, {
        method: 'POST',
        body: JSON.stringify(event),
      });
      expect(res.status).toBe(200);
      expect(await res.text()).toBe('ok');
      await waitFor(() => (lines.join('').includes('/report') ? true : undefined));
      expect(lines.join('')).not.toContain('LEAK-QUERY');
    },
  );
});

describe("the control plane's refusals", () => {
  const key = { accessKeyId: 'cp-real-id', accessKeySecret: 'cp-real-secret' };

  it('never carry its key, nor what a caller sent as the secret, in the answer or a log line', async () => {
    const lines: string[] = [];
    const emulator = await startEmulator({
      config: webConfig(folder()),
      port: 0,
      controlPort: 0,
      output: (text) => lines.push(text),
      requireSignatures: true,
      credentials: key,
    });
    cleanups.push(() => emulator.close({ timeoutMs: 1000 }));
    const url = new URL('/2023-03-30/functions/web/async-tasks', emulator.controlUrl);
    const basic = (id: string, secret: string) => `Basic ${Buffer.from(`${id}:${secret}`).toString('base64')}`;
    const signed = (credentials: typeof key) =>
      signAcsRequest(
        { method: 'GET', path: url.pathname, query: '', headers: { host: url.host }, body: Buffer.alloc(0) },
        credentials,
      );
    const refusals = [
      { authorization: basic(key.accessKeyId, 'LEAK-SENT-SECRET') },
      { authorization: basic('LEAK-SENT-ID', key.accessKeySecret) },
      signed({ accessKeyId: 'stranger', accessKeySecret: 'LEAK-SENT-SECRET' }),
      signed({ accessKeyId: key.accessKeyId, accessKeySecret: 'LEAK-SENT-SECRET' }),
    ];
    const answers: unknown[] = [];
    for (const headers of refusals) {
      const res = await fetch(url, { headers });
      answers.push({ status: res.status, body: (await res.json()) as Record<string, unknown> });
    }
    expect(answers).toEqual([
      {
        status: 401,
        body: expect.objectContaining({ Code: 'InvalidAccessKeyID', Message: 'Wrong access key id or secret' }),
      },
      {
        status: 401,
        body: expect.objectContaining({ Code: 'InvalidAccessKeyID', Message: 'Wrong access key id or secret' }),
      },
      {
        status: 403,
        body: expect.objectContaining({ Code: 'InvalidAccessKeyID', Message: 'The access key id is not known' }),
      },
      {
        status: 403,
        body: expect.objectContaining({
          Code: 'SignatureNotMatch',
          Message: 'The request signature does not match; check the access key secret and the signing method',
        }),
      },
    ]);
    // The right key still works: the refusals were for what was sent.
    expect((await fetch(url, { headers: signed(key) })).status).toBe(200);
    const text = JSON.stringify(answers) + lines.join('');
    expect(text).not.toMatch(/LEAK-SENT-[A-Z]+|cp-real-/);
  });
});
