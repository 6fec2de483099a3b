import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { startEmulator } from '../src/index.js';
import { waitFor } from './helpers.js';

// A destination function of the same s.yaml gets the record of every task, as FC invokes it itself.
// FC's destinations page lists 128 KB for a function destination: a record quoting a request near
// the 128 KB async limit (base64) is larger than that, and used to be delivered here all the same
// (the emulator held it to 32 MB only), so a pipeline that works under `fc-async dev` lost its
// records on FC. Past the target's async limit, the record is refused (ours: not cut to fit), the
// delivery fails at once and is not retried, and the task says so.

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
  it("receives a record within the target's async limit whole, and refuses one past it without retrying", async () => {
    const dir = mkdtempSync(join(tmpdir(), 'fc-async-local-dest-size-'));
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    const received = join(dir, 'received.jsonl');
    writeFileSync(
      join(dir, 'fns.mjs'),
      `import { appendFileSync } from 'node:fs';
export const upload = async (event) => {
  const e = JSON.parse(event.toString('utf8'));
  return { statusCode: 200, headers: { 'content-type': 'text/plain' }, body: 'stored ' + Buffer.from(e.body, e.isBase64Encoded ? 'base64' : 'utf8').length };
};
export const dest = async (event) => {
  appendFileSync(${JSON.stringify(received)}, event.toString('utf8') + '\\n');
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
    const upload = async (bytes: number) => {
      const res = await fetch(`${emulator.triggerUrl}/upload/`, {
        method: 'POST',
        headers: { 'x-fc-invocation-type': 'Async', 'content-type': 'application/octet-stream' },
        body: Buffer.alloc(bytes, 7),
      });
      expect(res.status).toBe(202);
      return res.headers.get('x-fc-async-task-id') as string;
    };
    const task = (id: string) =>
      waitFor(async () => {
        const res = await fetch(`${emulator.controlUrl}/2023-03-30/functions/upload/async-tasks/${id}`);
        const t = (await res.json()) as { status?: string; destinationStatus?: string };
        return t.destinationStatus ? t : undefined;
      });

    // 60 KB in base64 is 80 KB: the record is within 128 KB.
    const small = await upload(60 * 1024);
    expect(await task(small)).toMatchObject({ status: 'Succeeded', destinationStatus: 'Succeeded' });
    // 120 KB in base64 is 160 KB: the record is past it.
    const large = await upload(120 * 1024);
    expect(await task(large)).toMatchObject({ status: 'Succeeded', destinationStatus: 'Failed' });

    const records = readFileSync(received, 'utf8')
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line) as Record<string, string>);
    expect(records.map((r) => r.responsePayload)).toEqual(['stored 61440']);
    const payload = JSON.parse(records[0]?.requestPayload as string) as { body: string };
    expect(Buffer.from(payload.body, 'base64').equals(Buffer.alloc(60 * 1024, 7))).toBe(true);
    // One failed attempt, named by its size and the limit: a 4xx of FC's is not retried.
    const refusals = logged.filter((line) => line.includes('dest was not invoked'));
    expect(refusals).toHaveLength(1);
    expect(refusals[0]).toMatch(/the record is \d+ bytes, above its async payload limit of 131072 \(EntityTooLarge\)/);
    expect(refusals[0]).toContain('DestinationInvokeError');
  });
});

describe('a function whose destination is itself', () => {
  it('is told at start, and the chain stops once a record passes the async limit (each quotes the one before)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'fc-async-local-dest-loop-'));
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    // Answers 40 KB: each record is the one before (as its event) plus 40 KB, so a few hops pass 128 KB.
    writeFileSync(
      join(dir, 'fns.mjs'),
      `export const loop = async () => ({ statusCode: 200, headers: { 'content-type': 'text/plain' }, body: 'x'.repeat(40 * 1024) });\n`,
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
    await waitFor(() => logged.find((line) => line.includes('above its async payload limit of 131072')), 30_000);
    const page = (await (
      await fetch(`${emulator.controlUrl}/2023-03-30/functions/loop/async-tasks?limit=100`)
    ).json()) as { tasks: unknown[] };
    // The first call and the hops whose record was within the limit (40, 80, 120 KB and quoting).
    expect(page.tasks.length).toBeLessThan(6);
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
