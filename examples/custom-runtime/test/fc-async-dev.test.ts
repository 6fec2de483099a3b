import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type Emulator, startEmulator } from '@fc-async/local';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bundleServer } from '../scripts/bundle.js';

// The example's own s.yaml under `fc-async dev`: the emulator plays FC in front of the built
// server (its `/code/bootstrap`), so the app's fcAsync() middleware runs in platform mode.
let root: string;
let emulator: Emulator;
const lines: Record<string, unknown>[] = [];

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'custom-runtime-dev-'));
  const codeDir = await bundleServer(join(root, 'code'));
  const yaml = await readFile(new URL('../s.yaml', import.meta.url), 'utf8');
  const config = join(root, 's.yaml');
  await writeFile(config, yaml.replace('code: ./dist', `code: ${JSON.stringify(codeDir)}`));
  emulator = await startEmulator({
    config,
    port: 0,
    controlPort: 0,
    retryBaseMs: 10,
    outDir: root,
    logFormat: 'json',
    output: (text) => {
      for (const line of text.trim().split('\n')) if (line) lines.push(JSON.parse(line) as Record<string, unknown>);
    },
  });
}, 60_000);

afterAll(async () => {
  await emulator?.close();
  await rm(root, { recursive: true, force: true });
});

type Task = { status: string; alreadyRetriedTimes: number; returnPayload?: string };

async function settled(taskId: string): Promise<Task> {
  for (let i = 0; i < 250; i++) {
    const r = await fetch(`${emulator.controlUrl}/2023-03-30/functions/reports/async-tasks/${taskId}`);
    const task = (await r.json()) as Task;
    if (task.status === 'Succeeded' || task.status === 'Failed') return task;
    await new Promise((resolve) => setTimeout(resolve, 40));
  }
  throw new Error(`task ${taskId} did not finish within 10 s`);
}

const report = (body: unknown) =>
  fetch(`${emulator.triggerUrl}/reports`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-fc-invocation-type': 'Async' },
    body: JSON.stringify(body),
  });

describe('the example under fc-async dev, served from its s.yaml', () => {
  it('starts the bootstrap, initializes it once and answers a sync call', async () => {
    const r = await fetch(`${emulator.triggerUrl}/hello`);
    expect(r.status).toBe(200);
    const body = (await r.json()) as { hello: string; requestId: string; initializedAt?: string };
    expect(body).toMatchObject({ hello: 'world', requestId: r.headers.get('x-fc-request-id') });
    expect(body.initializedAt).toBeTypeOf('string');
  });

  it('runs an async report in the server, which sees the task FC made (id = request id)', async () => {
    const r = await report({ table: 'orders' });
    expect(r.status).toBe(202);
    const taskId = r.headers.get('x-fc-async-task-id') as string;
    expect(taskId).toBe(r.headers.get('x-fc-request-id'));
    const task = await settled(taskId);
    expect(task.status).toBe('Succeeded');
    expect(JSON.parse(task.returnPayload as string)).toEqual({ report: 'orders.csv', attempt: 0 });
  });

  it('retries a failed report (x-fc-status: 404 from the middleware) as s.yaml says, then fails it', async () => {
    const r = await report({ table: 'orders', fail: true });
    const task = await settled(r.headers.get('x-fc-async-task-id') as string);
    expect(task).toMatchObject({ status: 'Failed', alreadyRetriedTimes: 2 });
    expect(lines.filter((l) => l.level === 'error')).toEqual([]);
  });
});
