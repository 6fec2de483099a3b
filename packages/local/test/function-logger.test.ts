import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, expect, it } from 'vitest';
import { startEmulator } from '../src/index.js';
import { waitFor } from './helpers.js';

// The functions of one s.yaml share the emulator's log: what their handlers log names the function.
// The 429 notice, logged once per logger and 10 s, hid that a second function was refusing too.

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

const fn = (name: string) => `  ${name}:
    component: fc3
    props:
      functionName: ${name}
      runtime: nodejs20
      code: ./
      handler: app.handler
      triggers:
        - triggerName: http
          triggerType: http
`;

it("names the function in its handler's log lines: a full queue on each of two functions is told for each", async () => {
  const dir = mkdtempSync(join(tmpdir(), 'fc-async-function-logger-'));
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  writeFileSync(join(dir, 'app.mjs'), 'export const handler = async () => "ok";\n');
  writeFileSync(join(dir, 's.yaml'), `edition: 3.0.0\nname: logs\nresources:\n${fn('orders')}${fn('emails')}`);
  const lines: string[] = [];
  const emulator = await startEmulator({
    config: join(dir, 's.yaml'),
    port: 0,
    controlPort: 0,
    maxQueuedTasks: 1,
    output: (line) => lines.push(line),
  });
  cleanups.push(() => emulator.close({ timeoutMs: 500 }));
  const statuses: number[] = [];
  for (const name of ['orders', 'orders', 'emails', 'emails']) {
    const res = await fetch(`${emulator.triggerUrl}/${name}/`, {
      method: 'POST',
      headers: { 'x-fc-invocation-type': 'Async', 'x-fc-async-delay': '3599' },
      body: '{}',
    });
    statuses.push(res.status);
  }
  expect(statuses).toEqual([202, 429, 202, 429]);
  const refused = lines.filter((line) => line.includes('refused with 429'));
  expect(refused).toHaveLength(2);
  expect(refused[0]).toContain('function=orders');
  expect(refused[1]).toContain('function=emails');
});

/** A folder with `app.mjs` of `source`, served by an emulator with JSON logs; its parsed log lines. */
async function served(source: string, options: { timeoutSeconds?: number } = {}) {
  const dir = mkdtempSync(join(tmpdir(), 'fc-async-function-log-'));
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  writeFileSync(join(dir, 'app.mjs'), source);
  const lines: string[] = [];
  const emulator = await startEmulator({
    entry: join(dir, 'app.mjs'),
    name: 'orders',
    port: 0,
    controlPort: 0,
    logFormat: 'json',
    output: (text) => lines.push(...text.split('\n').filter(Boolean)),
    ...options,
  });
  cleanups.push(() => emulator.close({ timeoutMs: 500 }));
  const entries = () => lines.map((line) => JSON.parse(line) as Record<string, unknown>);
  return { emulator, entries };
}

it("logs a plain handler's throw with its stack, and context.logger prints an Error and the request id", async () => {
  const { emulator, entries } = await served(
    `export const handler = async (event, context) => {
  const error = new TypeError('cannot read the order');
  context.logger.error('parse failed:', error);
  throw error;
};
`,
  );
  const res = await fetch(`${emulator.triggerUrl}/`, { method: 'POST', body: '{}' });
  expect(res.status).toBe(502);
  const requestId = res.headers.get('x-fc-request-id');
  // The log is written in batches, a few milliseconds after.
  const logged = await waitFor(() => (entries().some((e) => e.message === 'function failed') ? entries() : undefined));
  // FC's runtime prints the error, its stack included, with the request id; it is not `{}`.
  const told = logged.find((e) => typeof e.message === 'string' && e.message.startsWith('parse failed:'));
  expect(told).toMatchObject({ level: 'error', function: 'orders', requestId });
  expect(told?.message).toContain('TypeError: cannot read the order');
  expect(told?.message).toContain('app.mjs');
  // The throw itself reaches the log (it reached only the caller's 502 and the task record).
  const failed = logged.find((e) => e.message === 'function failed');
  expect(failed).toMatchObject({ level: 'error', function: 'orders', requestId });
  expect(JSON.stringify(failed?.error)).toContain('cannot read the order');
});

it("logs a plain handler's fc-async error by its code and message, without fc-async's stack", async () => {
  const { emulator, entries } = await served(
    `import { FcAsyncError } from ${JSON.stringify(import.meta.resolve('@fc-async/core'))};
export const handler = async () => {
  throw new FcAsyncError('UnhandledInvocationError', 'The function answered HTTP 500', { statusCode: 500 });
};
`,
  );
  expect((await fetch(`${emulator.triggerUrl}/`, { method: 'POST', body: '{}' })).status).toBe(502);
  // The log is written in batches, a few milliseconds after.
  const failed = await waitFor(() => entries().find((e) => e.message === 'function failed'));
  expect(failed).toMatchObject({
    code: 'UnhandledInvocationError',
    reason: 'The function answered HTTP 500',
    function: 'orders',
  });
  expect(failed).not.toHaveProperty('error');
});

it("keeps a refusal's JSON log line its own message, the error's in `reason` (the error's overwrote it)", async () => {
  const { emulator, entries } = await served('export const handler = async () => "ok";\n');
  const res = await fetch(`${emulator.triggerUrl}/`, {
    method: 'POST',
    headers: { 'x-fc-invocation-type': 'Async', 'x-fc-async-delay': '0' },
    body: '{}',
  });
  expect(res.status).toBe(400);
  const rejected = await waitFor(() => entries().find((e) => e.level === 'warn'));
  expect(rejected).toMatchObject({ message: 'request rejected', code: 'InvalidArgument', function: 'orders' });
  expect(rejected.reason).toEqual(expect.stringContaining('x-fc-async-delay'));
});

it("logs a plain handler past its timeout in one line, without the stack of the emulator's timer", async () => {
  const { emulator, entries } = await served('export const handler = () => new Promise(() => {});\n', {
    timeoutSeconds: 1,
  });
  const res = await fetch(`${emulator.triggerUrl}/`, { method: 'POST', body: '{}' });
  expect(res.status).toBeGreaterThanOrEqual(500);
  const timedOut = await waitFor(() => entries().find((e) => e.message === 'function timed out'));
  expect(timedOut).toMatchObject({ level: 'warn', function: 'orders', reason: 'Function timed out after 1 s' });
  expect(entries().filter((e) => e.message === 'function failed')).toEqual([]);
  expect(JSON.stringify(entries())).not.toContain('listeners.');
});
