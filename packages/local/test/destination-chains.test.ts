import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { startEmulator } from '../src/index.js';
import { waitFor } from './helpers.js';

// Destination functions of the same s.yaml, as FC chains them: FC invokes a destination function
// asynchronously, so its own async config (retries, destinations) applies to that invocation.

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

/** A temporary project: `fns.mjs` and `s.yaml` as given; its folder is removed after the test. */
function project(fns: string, yaml: string): string {
  const dir = mkdtempSync(join(tmpdir(), 'fc-async-local-dest-chain-'));
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  writeFileSync(join(dir, 'fns.mjs'), fns);
  writeFileSync(join(dir, 's.yaml'), yaml);
  return dir;
}

/** The emulator on the s.yaml in `dir`, its log lines kept, its JSONL files in `dir/out`. */
async function serve(dir: string) {
  const logged: string[] = [];
  const emulator = await startEmulator({
    config: join(dir, 's.yaml'),
    port: 0,
    controlPort: 0,
    outDir: join(dir, 'out'),
    retryBaseMs: 10,
    output: (line) => logged.push(line),
  });
  cleanups.push(() => emulator.close({ timeoutMs: 1000 }));
  const api = (path: string, init?: RequestInit) =>
    fetch(new URL(`/2023-03-30/functions/${path}`, emulator.controlUrl), init);
  const invoke = async (fn: string, body: string) => {
    const res = await api(`${fn}/invocations`, { method: 'POST', headers: { 'x-fc-invocation-type': 'Async' }, body });
    expect(res.status).toBe(202);
    return res.headers.get('x-fc-async-task-id') as string;
  };
  const tasks = async (fn: string) =>
    (
      (await (await api(`${fn}/async-tasks?limit=100&includePayload=true`)).json()) as {
        tasks: Record<string, unknown>[];
      }
    ).tasks;
  return { emulator, logged, invoke, tasks, api };
}

describe('a destination function', () => {
  it("is run by its own async config: its retries, then its own onFailure; the first task's destinationStatus is the 202", async () => {
    const dir = project(
      `import { appendFileSync } from 'node:fs';
export const a = async () => 'a done';
export const b = async () => { throw new Error('b refuses'); };
export const c = async (event) => { appendFileSync(new URL('c.jsonl', import.meta.url), event.toString('utf8') + '\\n'); };
`,
      `edition: 3.0.0
name: dest-own-config
resources:
  a:
    component: fc3
    props:
      functionName: a
      code: ./
      handler: fns.a
      asyncInvokeConfig:
        maxAsyncRetryAttempts: 0
        destinationConfig:
          onSuccess: { destination: 'acs:fc:cn-hangzhou:0:functions/b' }
  b:
    component: fc3
    props:
      functionName: b
      code: ./
      handler: fns.b
      asyncInvokeConfig:
        maxAsyncRetryAttempts: 1
        destinationConfig:
          onFailure: { destination: 'acs:fc:cn-hangzhou:0:functions/c' }
  c:
    component: fc3
    props:
      functionName: c
      code: ./
      handler: fns.c
`,
    );
    const { invoke, tasks } = await serve(dir);
    const id = await invoke('a', '{"job":1}');
    const [line] = await waitFor(async () => {
      const file = join(dir, 'c.jsonl');
      return existsSync(file) ? readFileSync(file, 'utf8').trim().split('\n') : undefined;
    });
    const [ofA] = await tasks('a');
    // b's task records its delivery once c took the record: c may have run already.
    const ofB = await waitFor(async () => (await tasks('b')).find((t) => t.destinationStatus !== undefined));
    expect(ofA).toMatchObject({ taskId: id, status: 'Succeeded', destinationStatus: 'Succeeded' });
    expect(ofB).toMatchObject({ status: 'Failed', alreadyRetriedTimes: 1, destinationStatus: 'Succeeded' });
    const record = JSON.parse(line as string) as { requestContext: Record<string, unknown>; requestPayload: string };
    expect(record.requestContext).toMatchObject({
      requestId: ofB?.requestId,
      functionArn: 'acs:fc:cn-hangzhou:0:functions/b',
      condition: 'UnhandledInvocationError',
      approximateInvokeCount: 2,
    });
    // b's event was a's record: c's record quotes it.
    expect(JSON.parse(record.requestPayload)).toMatchObject({
      requestContext: { requestId: id },
      responsePayload: 'a done',
    });
  });
});

describe('a destination ARN with a qualifier', () => {
  it('`functions/<name>:<qualifier>` invokes the function of the s.yaml, not a JSONL file', async () => {
    const dir = project(
      `import { appendFileSync } from 'node:fs';
export const orders = async () => 'stored';
export const audit = async (event) => { appendFileSync(new URL('received.jsonl', import.meta.url), event.toString('utf8') + '\\n'); };
`,
      `edition: 3.0.0
name: dest-qualifier
resources:
  orders:
    component: fc3
    props:
      functionName: orders
      code: ./
      handler: fns.orders
      asyncInvokeConfig:
        destinationConfig:
          onSuccess: { destination: 'acs:fc:cn-hangzhou:0:functions/audit:LATEST' }
  audit:
    component: fc3
    props:
      functionName: audit
      code: ./
      handler: fns.audit
`,
    );
    const { logged, invoke, tasks } = await serve(dir);
    const id = await invoke('orders', '{"order":7}');
    const task = await waitFor(async () => (await tasks('orders')).find((t) => t.destinationStatus !== undefined));
    expect(task.destinationStatus).toBe('Succeeded');
    expect(logged.join('\n')).not.toContain('is not served here');
    expect(existsSync(join(dir, 'out', 'orders.onSuccess.jsonl'))).toBe(false);
    const [record] = await waitFor(async () => {
      const file = join(dir, 'received.jsonl');
      return existsSync(file) ? readFileSync(file, 'utf8').trim().split('\n') : undefined;
    });
    expect(JSON.parse(record as string)).toMatchObject({
      requestContext: { requestId: id, functionArn: 'acs:fc:cn-hangzhou:0:functions/orders', condition: '' },
      requestPayload: '{"order":7}',
      responsePayload: 'stored',
    });
    expect(await tasks('audit')).toHaveLength(1);
  });

  it('refuses at start a qualifier with nothing after its colon', async () => {
    const dir = project(
      'export const f = async () => "ok";\n',
      `edition: 3.0.0
name: dest-qualifier-empty
resources:
  f:
    component: fc3
    props:
      functionName: f
      code: ./
      handler: fns.f
      asyncInvokeConfig:
        destinationConfig:
          onFailure: { destination: 'acs:fc:cn-hangzhou:0:functions/f:' }
`,
    );
    await expect(serve(dir)).rejects.toThrow(
      /onFailure\.destination is not an FC, MNS, EventBridge or RocketMQ ARN: acs:fc:cn-hangzhou:0:functions\/f:/,
    );
  });
});

describe('a cycle of destination functions', () => {
  it('is told at start, naming each function of it, and its chain ends at the async payload limit', async () => {
    // a succeeds and its record goes to b; b fails (no retry) and its record goes back to a.
    const dir = project(
      `export const a = async () => 'a done';
export const b = async () => { throw new Error('b refuses'); };
`,
      `edition: 3.0.0
name: dest-cycle
resources:
  a:
    component: fc3
    props:
      functionName: a
      code: ./
      handler: fns.a
      asyncInvokeConfig:
        destinationConfig:
          onSuccess: { destination: 'acs:fc:cn-hangzhou:0:functions/b' }
  b:
    component: fc3
    props:
      functionName: b
      code: ./
      handler: fns.b
      asyncInvokeConfig:
        maxAsyncRetryAttempts: 0
        destinationConfig:
          onFailure: { destination: 'acs:fc:cn-hangzhou:0:functions/a' }
`,
    );
    const { logged, invoke, tasks } = await serve(dir);
    const start = logged.join('\n');
    expect(start).toContain('a onSuccess → b → a: a cycle');
    expect(start).toContain('b onFailure → a → b: a cycle');

    await invoke('a', '{}');
    await waitFor(() => logged.find((line) => line.includes('above its async payload limit of 131072')), 30_000);
    const [ofA, ofB] = [await tasks('a'), await tasks('b')];
    // Each hop quotes the record before it, escaped once more: a few hops pass 128 KB.
    expect(ofA.length + ofB.length).toBeLessThan(30);
    // b's own config applies to the invocations a's records make: no retry, then its onFailure.
    expect(ofB.every((t) => t.status === 'Failed' && t.alreadyRetriedTimes === 0)).toBe(true);
    const last = [...ofA, ...ofB].find((t) => t.destinationStatus === 'Failed');
    expect(last).toBeDefined();
  });
});

describe('a destination the emulator writes to a JSONL file', () => {
  it("holds each record to that destination's payload limit on FC, and says so at start", async () => {
    // The answer's size is the event's `n`: the record quotes it whole.
    const dir = project(
      `export const jobs = async (event) => 'x'.repeat(JSON.parse(event.toString('utf8')).n);
export const other = async (event) => { throw new Error('x'.repeat(JSON.parse(event.toString('utf8')).n)); };
`,
      `edition: 3.0.0
name: dest-jsonl-limits
resources:
  jobs:
    component: fc3
    props:
      functionName: jobs
      code: ./
      handler: fns.jobs
      asyncInvokeConfig:
        destinationConfig:
          onSuccess: { destination: 'acs:mns:cn-hangzhou:0:/queues/done/messages' }
  other:
    component: fc3
    props:
      functionName: other
      code: ./
      handler: fns.other
      asyncInvokeConfig:
        maxAsyncRetryAttempts: 0
        destinationConfig:
          onFailure: { destination: 'acs:fc:cn-hangzhou:0:functions/elsewhere' }
`,
    );
    const { logged, invoke, tasks } = await serve(dir);
    const settled = (fn: string, id: string) =>
      waitFor(async () => (await tasks(fn)).find((t) => t.taskId === id && t.destinationStatus !== undefined));

    // MNS takes 64 KB: a 60 KB answer's record is within it, a 70 KB one's is not.
    expect((await settled('jobs', await invoke('jobs', '{"n":61440}'))).destinationStatus).toBe('Succeeded');
    expect((await settled('jobs', await invoke('jobs', '{"n":71680}'))).destinationStatus).toBe('Failed');
    // A function takes 128 KB: a record quoting a 4,000-character error is within it; one quoting
    // an event of 126 KB as well (within the async limit) is not.
    expect((await settled('other', await invoke('other', '{"n":4000}'))).destinationStatus).toBe('Succeeded');
    const big = `{"n":4000,"pad":"${'p'.repeat(126 * 1024)}"}`;
    expect((await settled('other', await invoke('other', big))).destinationStatus).toBe('Failed');

    const lines = (file: string) =>
      readFileSync(join(dir, 'out', file), 'utf8')
        .trim()
        .split('\n');
    expect(
      lines('jobs.onSuccess.jsonl').map((l) => (JSON.parse(l) as { responsePayload: string }).responsePayload.length),
    ).toEqual([61440]);
    expect(lines('other.onFailure.jsonl')).toHaveLength(1);
    const refusals = logged.filter((line) => line.includes('(EntityTooLarge): not appended'));
    expect(refusals).toHaveLength(2);
    expect(refusals[0]).toMatch(
      /the record is \d+ bytes, above the payload limit of MNS as a destination on FC, 65536/,
    );
    expect(refusals[1]).toMatch(
      /the record is \d+ bytes, above the payload limit of an FC function as a destination on FC, 131072/,
    );
    const start = logged.join('\n');
    expect(start).toContain("jobs.onSuccess.jsonl, up to MNS's payload limit on FC (65536 bytes)");
    expect(start).toContain("up to an FC function's payload limit on FC (131072 bytes)");
  });
});
