import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { startEmulator } from '../src/index.js';
import { waitFor } from './helpers.js';

// A destination function of the same s.yaml gets the record of every task, as FC invokes it itself:
// a record quoting a request near the 128 KB async limit (base64) is larger than that limit, and
// was refused 400 InvalidArgument as if a client had sent it, and lost.

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

/** The emulator on the s.yaml in `dir`, its log lines kept. */
async function serve(dir: string) {
  const logged: string[] = [];
  const emulator = await startEmulator({
    config: join(dir, 's.yaml'),
    port: 0,
    controlPort: 0,
    output: (line) => logged.push(line),
  });
  cleanups.push(() => emulator.close({ timeoutMs: 1000 }));
  return { emulator, logged };
}

describe('a destination function and a large record', () => {
  it('receives the record of a task whose body is near the async limit', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'fc-async-local-dest-size-'));
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    const received = join(dir, 'received.json');
    writeFileSync(
      join(dir, 'fns.mjs'),
      `import { writeFileSync } from 'node:fs';
export const upload = async (event) => {
  const e = JSON.parse(event.toString('utf8'));
  return { statusCode: 200, headers: { 'content-type': 'text/plain' }, body: 'stored ' + Buffer.from(e.body, e.isBase64Encoded ? 'base64' : 'utf8').length };
};
export const dest = async (event) => {
  writeFileSync(${JSON.stringify(received)}, event);
};
`,
    );
    writeFileSync(
      join(dir, 's.yaml'),
      `edition: 3.0.0
name: dest-size
resources:
  upload:
    component: fc3
    props:
      functionName: upload
      code: ./
      handler: fns.upload
      triggers: [{ triggerName: http, triggerType: http }]
      asyncInvokeConfig:
        destinationConfig:
          onSuccess: { destination: 'acs:fc:cn-hangzhou:0:functions/dest' }
  dest:
    component: fc3
    props:
      functionName: dest
      code: ./
      handler: fns.dest
`,
    );
    const { emulator, logged } = await serve(dir);

    const body = Buffer.alloc(120 * 1024, 7);
    const res = await fetch(`${emulator.triggerUrl}/upload/`, {
      method: 'POST',
      headers: { 'x-fc-invocation-type': 'Async', 'content-type': 'application/octet-stream' },
      body,
    });
    expect(res.status).toBe(202);
    const record = await waitFor(() => {
      try {
        return JSON.parse(readFileSync(received, 'utf8')) as Record<string, string>;
      } catch {
        return undefined;
      }
    });
    expect(record.responsePayload).toBe('stored 122880');
    const payload = JSON.parse(record.requestPayload as string) as { body: string };
    expect(Buffer.from(payload.body, 'base64').equals(body)).toBe(true);
    expect(logged.filter((line) => /ERROR|WARN/.test(line))).toEqual([]);
  });
});

describe('a function whose destination is itself', () => {
  it('is told at start, and the chain stops once a record passes 32 MB (each quotes the one before)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'fc-async-local-dest-loop-'));
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    // Answers 4 MB: each record is the one before (as its event) plus 4 MB, so a few hops reach 32 MB.
    writeFileSync(
      join(dir, 'fns.mjs'),
      `export const loop = async () => ({ statusCode: 200, headers: { 'content-type': 'text/plain' }, body: 'x'.repeat(4 * 1024 * 1024) });\n`,
    );
    writeFileSync(
      join(dir, 's.yaml'),
      `edition: 3.0.0
name: dest-loop
resources:
  loop:
    component: fc3
    props:
      functionName: loop
      code: ./
      handler: fns.loop
      triggers: [{ triggerName: http, triggerType: http }]
      asyncInvokeConfig:
        destinationConfig:
          onSuccess: { destination: 'acs:fc:cn-hangzhou:0:functions/loop' }
`,
    );
    const { emulator, logged } = await serve(dir);
    expect(logged.join('\n')).toContain('loop onSuccess → loop itself');

    const res = await fetch(`${emulator.triggerUrl}/loop/`, {
      method: 'POST',
      headers: { 'x-fc-invocation-type': 'Async' },
    });
    expect(res.status).toBe(202);
    await waitFor(() => logged.find((line) => line.includes('above the limit of 33554432')), 30_000);
    const page = (await (
      await fetch(`${emulator.controlUrl}/2023-03-30/functions/loop/async-tasks?limit=100`)
    ).json()) as { tasks: unknown[] };
    expect(page.tasks.length).toBeLessThan(12);
  });
});

describe('an HTTP function given as a destination', () => {
  it('is told at start: FC takes event functions only', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'fc-async-local-dest-http-'));
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    writeFileSync(join(dir, 'fns.mjs'), 'export const handler = async () => "ok";\n');
    writeFileSync(
      join(dir, 's.yaml'),
      `edition: 3.0.0
name: dest-http
resources:
  orders:
    component: fc3
    props:
      functionName: orders
      code: ./
      handler: fns.handler
      asyncInvokeConfig:
        destinationConfig:
          onSuccess:
            destination: acs:fc:cn-hangzhou:0:functions/web
  web:
    component: fc3
    props:
      functionName: web
      code: ./
      handler: fns.handler
      triggers: [{ triggerName: http, triggerType: http }]
`,
    );
    const { logged } = await serve(dir);
    expect(logged.join('\n')).toContain(
      'orders onSuccess → web: an HTTP function; FC takes event functions only as destinations',
    );
  });
});
