import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { bundleServer } from '../scripts/bundle.js';
import { type RunningServer, startServer } from './server.js';

let root: string;
let codeDir: string;
const servers: RunningServer[] = [];

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'custom-runtime-'));
  codeDir = await bundleServer(join(root, 'code'));
}, 60_000);

afterAll(async () => {
  for (const server of servers) if (server.child.exitCode === null) server.child.kill('SIGKILL');
  await rm(root, { recursive: true, force: true });
});

const SECRETS = { id: 'STS.akid-never-logged', secret: 'secret-never-logged', token: 'token-never-logged' };

/** FC's common headers on a request to a custom runtime, credentials included. */
function fcHeaders(requestId: string, extra: Record<string, string> = {}): Record<string, string> {
  return {
    'x-fc-request-id': requestId,
    'x-fc-function-name': 'reports',
    'x-fc-region': 'cn-hangzhou',
    'x-fc-account-id': '1234567890',
    'x-fc-access-key-id': SECRETS.id,
    'x-fc-access-key-secret': SECRETS.secret,
    'x-fc-security-token': SECRETS.token,
    'x-fc-control-path': '/http-invoke',
    ...extra,
  };
}

const json = { 'content-type': 'application/json' };
const asyncCall = (taskId: string, retryCount = 0) => ({
  'x-fc-invocation-type': 'Async',
  'x-fc-async-task-id': taskId,
  'x-fc-retry-count': String(retryCount),
  ...json,
});

async function waitForTask(url: string, taskId: string, until: (status: string) => boolean) {
  const deadline = Date.now() + 20_000;
  for (;;) {
    const task = (await (await fetch(`${url}/tasks/${taskId}`)).json()) as { status: string; returnPayload?: string };
    if (until(task.status)) return task;
    if (Date.now() > deadline) throw new Error(`task ${taskId} is still ${task.status}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

describe('on FC (platform mode: FC_FUNCTION_NAME and FC_REGION set)', () => {
  let server: RunningServer;
  beforeAll(async () => {
    server = await startServer(codeDir, { FC_FUNCTION_NAME: 'reports', FC_REGION: 'cn-hangzhou' });
    servers.push(server);
  }, 30_000);

  it('answers POST /initialize, running onInitialize once before traffic', async () => {
    const init = await fetch(`${server.url}/initialize`, {
      method: 'POST',
      headers: fcHeaders('1-6b0b3825-00000000000000000000c001', { 'x-fc-control-path': '/initialize' }),
    });
    expect(init.status).toBe(200);
    const hello = await fetch(`${server.url}/hello`, { headers: fcHeaders('1-6b0b3825-00000000000000000000c002') });
    expect(hello.status).toBe(200);
    expect(await hello.json()).toEqual({
      hello: 'world',
      requestId: '1-6b0b3825-00000000000000000000c002',
      initializedAt: expect.any(String),
    });
  });

  it('runs an async invocation FC hands over and answers with the app response', async () => {
    const res = await fetch(`${server.url}/reports`, {
      method: 'POST',
      headers: fcHeaders('1-6b0b3825-00000000000000000000c003', asyncCall('report_ok')),
      body: JSON.stringify({ table: 'orders' }),
    });
    expect(res.status).toBe(200);
    expect(res.headers.get('x-fc-status')).toBeNull();
    expect(await res.json()).toEqual({ report: 'orders.csv', attempt: 0 });
  });

  it('marks a failed async invocation with x-fc-status: 404, so that FC retries it', async () => {
    const res = await fetch(`${server.url}/reports`, {
      method: 'POST',
      headers: fcHeaders('1-6b0b3825-00000000000000000000c004', asyncCall('report_fail')),
      body: JSON.stringify({ table: 'orders', fail: true }),
    });
    expect(res.status).toBe(500);
    expect(res.headers.get('x-fc-status')).toBe('404');
    expect(await res.json()).toEqual({ code: 'ReportFailed', message: 'The report of orders failed' });
  });

  it('on the last attempt (x-fc-retry-count 2) also calls onFailure', async () => {
    const requestId = '1-6b0b3825-00000000000000000000c005';
    const res = await fetch(`${server.url}/reports`, {
      method: 'POST',
      headers: fcHeaders(requestId, asyncCall('report_fail', 2)),
      body: JSON.stringify({ table: 'orders', fail: true }),
    });
    expect(res.headers.get('x-fc-status')).toBe('404');
    // The record went out before the response; its log line may reach this process just after.
    const line = await vi.waitFor(() => {
      const found = server.output.find((l) => l.includes('report failed for good'));
      if (!found) throw new Error('no onFailure line yet');
      return found;
    });
    expect(JSON.parse(line)).toMatchObject({
      requestId,
      condition: 'UnhandledInvocationError',
      approximateInvokeCount: 3,
    });
  });

  it('never marks a sync invocation: the caller reads the app answer itself', async () => {
    const res = await fetch(`${server.url}/reports`, {
      method: 'POST',
      headers: { ...fcHeaders('1-6b0b3825-00000000000000000000c006'), ...json },
      body: JSON.stringify({ table: 'orders', fail: true }),
    });
    expect(res.status).toBe(500);
    expect(res.headers.get('x-fc-status')).toBeNull();
  });

  it('has no local task API: FC keeps the tasks', async () => {
    const res = await fetch(`${server.url}/tasks/report_ok`);
    expect(res.status).toBe(400);
    expect(await res.json()).toMatchObject({ code: 'NotAvailableInPlatformMode' });
  });

  it('answers GET /pre-stop, exits 0 on SIGTERM, and never logged a credential', async () => {
    const preStop = await fetch(`${server.url}/pre-stop`, {
      headers: fcHeaders('1-6b0b3825-00000000000000000000c007', { 'x-fc-control-path': '/pre-stop' }),
    });
    expect(preStop.status).toBe(200);
    server.child.kill('SIGTERM');
    expect(await server.exited).toBe(0);
    const output = server.output.join('\n');
    for (const secret of Object.values(SECRETS)) expect(output).not.toContain(secret);
  });
});

describe('off FC (local mode: neither FC_FUNCTION_NAME nor FC_REGION)', () => {
  let server: RunningServer;
  beforeAll(async () => {
    server = await startServer(codeDir);
    servers.push(server);
  }, 30_000);

  it('answers POST /initialize and sync calls', async () => {
    expect((await fetch(`${server.url}/initialize`, { method: 'POST' })).status).toBe(200);
    const hello = await fetch(`${server.url}/hello`);
    expect(await hello.json()).toMatchObject({ hello: 'world', initializedAt: expect.any(String) });
  });

  it('answers an async call 202 at once, then runs the task to completion', async () => {
    const res = await fetch(`${server.url}/reports`, {
      method: 'POST',
      headers: { 'x-fc-invocation-type': 'Async', 'x-fc-async-task-id': 'report_local', ...json },
      body: JSON.stringify({ table: 'orders' }),
    });
    expect(res.status).toBe(202);
    expect(res.headers.get('x-fc-async-task-id')).toBe('report_local');
    expect(res.headers.get('x-fc-request-id')).toMatch(/^1-[0-9a-f]{8}-[0-9a-f]{24}$/);
    expect(await res.text()).toBe('');
    const task = await waitForTask(server.url, 'report_local', (s) => s === 'Succeeded' || s === 'Failed');
    expect(task.status).toBe('Succeeded');
    expect(JSON.parse(task.returnPayload ?? '')).toEqual({ report: 'orders.csv', attempt: 0 });
  });

  it('GET /pre-stop lets a running task finish, then refuses new async calls (503)', async () => {
    const accepted = await fetch(`${server.url}/reports`, {
      method: 'POST',
      headers: { 'x-fc-invocation-type': 'Async', 'x-fc-async-task-id': 'report_slow', ...json },
      body: JSON.stringify({ table: 'customers', ms: 400 }),
    });
    expect(accepted.status).toBe(202);
    await waitForTask(server.url, 'report_slow', (s) => s === 'Running' || s === 'Succeeded');
    expect((await fetch(`${server.url}/pre-stop`)).status).toBe(200);
    expect(await (await fetch(`${server.url}/tasks/report_slow`)).json()).toMatchObject({ status: 'Succeeded' });
    const refused = await fetch(`${server.url}/reports`, {
      method: 'POST',
      headers: { 'x-fc-invocation-type': 'Async', ...json },
      body: JSON.stringify({ table: 'orders' }),
    });
    expect(refused.status).toBe(503);
    expect(await refused.json()).toMatchObject({ code: 'ServiceUnavailable' });
  });

  it('exits 0 on SIGTERM', async () => {
    server.child.kill('SIGTERM');
    expect(await server.exited).toBe(0);
  });
});
