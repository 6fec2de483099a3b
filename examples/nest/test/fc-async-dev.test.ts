import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { createRequire } from 'node:module';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { until, within } from '@fc-async/test-kit/wait';
import { afterEach, describe, expect, it } from 'vitest';

// `npx fc-async dev <entry>` as a user runs it in this folder: the built command under plain node,
// which loads the TypeScript entry through tsx (no decorator metadata: the example's @Inject()).
const EXAMPLE = fileURLToPath(new URL('..', import.meta.url));
const BIN = createRequire(import.meta.url)
  .resolve('@fc-async/local/package.json')
  .replace(/package\.json$/, 'bin/fc-async.js');

interface Dev {
  child: ChildProcess;
  trigger: string;
  control: string;
  name: string;
  stderr: string[];
}
const running: Dev[] = [];
afterEach(async () => {
  for (const { child } of running.splice(0)) {
    if (child.exitCode !== null) continue;
    child.kill('SIGTERM');
    if ((await within(once(child, 'exit'), 20_000)) === 'still waiting') child.kill('SIGKILL');
  }
});

/** Starts `fc-async dev entry` on free ports; resolves with its URLs once it says it is ready. */
async function dev(entry: string): Promise<Dev> {
  const args = [BIN, 'dev', entry, '--port', '0', '--control-port', '0', '--log-format', 'json', '--retry-delay', '10'];
  const child = spawn(process.execPath, args, { cwd: EXAMPLE, stdio: ['ignore', 'pipe', 'pipe'] });
  const stderr: string[] = [];
  child.stderr?.on('data', (chunk: Buffer) => stderr.push(String(chunk)));
  const dev = { child, stderr } as Dev;
  running.push(dev);
  const ready = (async () => {
    for await (const line of createInterface({ input: child.stdout as NodeJS.ReadableStream })) {
      const entry = JSON.parse(line) as {
        kind?: string;
        trigger?: string;
        control?: string;
        functions?: { name: string }[];
      };
      if (entry.kind === 'ready') return entry;
    }
    throw new Error(`fc-async dev ${entry} exited before it was ready: ${stderr.join('')}`);
  })();
  const entryLine = await within(ready, 60_000);
  if (entryLine === 'still waiting')
    throw new Error(`fc-async dev ${entry} was not ready within 60 s: ${stderr.join('')}`);
  return Object.assign(dev, {
    trigger: entryLine.trigger as string,
    control: entryLine.control as string,
    name: entryLine.functions?.[0]?.name as string,
  });
}

/** GetAsyncTask until the task has ended, for at most 20 s. */
async function settled({ control, name }: Dev, taskId: string) {
  const deadline = Date.now() + 20_000;
  for (;;) {
    const res = await fetch(new URL(`/2023-03-30/functions/${name}/async-tasks/${taskId}`, control));
    const task = (await res.json()) as { status?: string; returnPayload?: string };
    if (task.status === 'Succeeded' || task.status === 'Failed') return task;
    if (Date.now() > deadline) throw new Error(`task ${taskId} is still ${task.status} after 20 s`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

describe.each([
  ['src/express.ts', 'the exported handler of Nest on Express'],
  ['src/fastify.ts', 'the exported handler of Nest on Fastify'],
  ['src/app.ts', 'the Nest app itself, which the emulator initializes'],
])('fc-async dev %s (%s)', (entry) => {
  it('answers a sync call, with the injected service, runs an async one to Succeeded, logs a crash with its request id', async () => {
    const server = await dev(entry);
    const got = await fetch(`${server.trigger}/orders/1`);
    expect({ status: got.status, body: await got.json() }).toEqual({ status: 200, body: { id: '1', item: 'tea' } });
    const accepted = await fetch(`${server.trigger}/thumbnails`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-fc-invocation-type': 'Async' },
      body: JSON.stringify({ image: 'cat.jpg' }),
    });
    expect(accepted.status).toBe(202);
    const task = await settled(server, accepted.headers.get('x-fc-async-task-id') as string);
    expect(task.status).toBe('Succeeded');
    expect(JSON.parse(task.returnPayload as string)).toMatchObject({ made: 'cat.jpg.thumb.png', type: 'Async' });
    const crashed = await fetch(`${server.trigger}/crash`);
    expect({ status: crashed.status, body: await crashed.json() }).toEqual({
      status: 500,
      body: { statusCode: 500, message: 'Internal server error' },
    });
    // The app's exception filter logs the crash through Nest's Logger with the call's request id.
    const logged = `requestId=${crashed.headers.get('x-fc-request-id')} database password is hunter2`;
    await until(() => server.stderr.join('').includes(logged) || undefined, `"${logged}" on stderr`, 10_000);
  });
});
