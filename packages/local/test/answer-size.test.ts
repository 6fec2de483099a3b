import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Emulator, startEmulator } from '../src/index.js';
import { waitFor } from './helpers.js';

// FC bounds a sync response at 32 MB, and `fc-async dev` held a custom runtime's answer to it (502
// CAResponseTooLarge), but an app or handler run in-process answered any size: a 33 MB answer went
// out whole, and a streamed one was collected to its end, however large.

const MiB = 1024 * 1024;
const LIMIT = 32 * MiB;
const url = (pkg: string) => JSON.stringify(import.meta.resolve(pkg));

const root = mkdtempSync(join(tmpdir(), 'fc-async-answer-size-'));
const received = join(root, 'received.json');
let emulator: Emulator;
const logged: string[] = [];

beforeAll(async () => {
  writeFileSync(
    join(root, 'fns.mjs'),
    `import express from ${url('express')};
import { createHandler } from ${url('@fc-async/express')};
import { Readable, pipeline } from 'node:stream';
import { writeFileSync } from 'node:fs';

const app = express();
// n bytes in one write.
app.all('/bytes', (req, res) => res.end(Buffer.alloc(Number(req.query.n), 97)));
// 40 MiB in 1 MiB chunks, piped: how far the stream got before the response closed.
let stream = { produced: 0, failed: false, ended: false };
app.get('/stream', (req, res) => {
  stream = { produced: 0, failed: false, ended: false };
  let left = 40;
  const source = new Readable({
    read() {
      if (left-- === 0) return this.push(null);
      stream.produced += ${MiB};
      this.push(Buffer.alloc(${MiB}, 98));
    },
  });
  pipeline(source, res, (error) => {
    stream.failed = error !== undefined;
    stream.ended = true;
  });
});
app.get('/stream-state', (req, res) => res.json(stream));
export const web = app;
export const own = createHandler(express().get('/bytes', (req, res) => res.end(Buffer.alloc(Number(req.query.n), 99))));

export const plain = async (event) => {
  const { queryParameters } = JSON.parse(event.toString('utf8'));
  return { statusCode: 200, headers: { 'content-type': 'text/plain' }, body: 'x'.repeat(Number(queryParameters.n)) };
};
export const dest = async (event) => {
  writeFileSync(${JSON.stringify(received)}, event);
};
`,
  );
  const fn = (name: string, extra = '') => `  ${name}:
    component: fc3
    props:
      functionName: ${name}
      code: ./
      handler: fns.${name}
      triggers: [{ triggerName: http, triggerType: http }]
${extra}`;
  writeFileSync(
    join(root, 's.yaml'),
    `edition: 3.0.0
name: answer-size
resources:
${fn(
  'web',
  `      asyncInvokeConfig:
        maxAsyncRetryAttempts: 0
        destinationConfig:
          onFailure: { destination: 'acs:fc:cn-hangzhou:0:functions/dest' }
`,
)}${fn('own')}${fn('plain')}  dest:
    component: fc3
    props:
      functionName: dest
      code: ./
      handler: fns.dest
`,
  );
  emulator = await startEmulator({
    config: join(root, 's.yaml'),
    port: 0,
    controlPort: 0,
    retryBaseMs: 10,
    output: (line) => logged.push(line),
  });
});

afterAll(async () => {
  await emulator?.close({ timeoutMs: 1000 });
  rmSync(root, { recursive: true, force: true });
});

const at = (fn: string, path: string, init?: RequestInit) => fetch(`${emulator.triggerUrl}/${fn}${path}`, init);
const tooLarge = (fn: string) => ({
  code: 'ResponseTooLarge',
  message: `The function ${fn} answered more than ${LIMIT} bytes (FC's limit of a response)`,
});

describe('an in-process answer past FC’s 32 MB', () => {
  it('an Express app: exactly 32 MiB answers whole; one byte more answers 502 ResponseTooLarge', async () => {
    const whole = await at('web', `/bytes?n=${LIMIT}`);
    expect(whole.status).toBe(200);
    expect((await whole.arrayBuffer()).byteLength).toBe(LIMIT);
    const over = await at('web', `/bytes?n=${LIMIT + 1}`);
    expect(over.status).toBe(502);
    expect(await over.json()).toEqual(tooLarge('web'));
  });

  it('a streamed answer: 502 once it passes the limit, and the stream is stopped there, not read to its end', async () => {
    const res = await at('web', '/stream');
    expect(res.status).toBe(502);
    expect(await res.json()).toEqual(tooLarge('web'));
    const state = await waitFor(async () => {
      const s = (await (await at('web', '/stream-state')).json()) as {
        produced: number;
        failed: boolean;
        ended: boolean;
      };
      return s.ended ? s : undefined;
    });
    expect(state.failed).toBe(true);
    expect(state.produced).toBeLessThan(40 * MiB);
  });

  it('an fc-async handler the entry made, and a plain FC handler, are held to it too', async () => {
    const own = await at('own', `/bytes?n=${LIMIT + 1}`);
    expect([own.status, await own.json()]).toEqual([502, tooLarge('own')]);
    const plain = await at('plain', `/?n=${LIMIT + 1}`);
    expect([plain.status, await plain.json()]).toEqual([502, tooLarge('plain')]);
    expect((await at('plain', '/?n=5')).status).toBe(200);
  });

  it('an async attempt whose answer passes it fails: its onFailure record names the error, not 32 MB of answer', async () => {
    const res = await at('web', `/bytes?n=${LIMIT + 1}`, {
      method: 'POST',
      headers: { 'x-fc-invocation-type': 'Async' },
    });
    expect(res.status).toBe(202);
    const record = await waitFor(() => {
      try {
        return JSON.parse(readFileSync(received, 'utf8')) as {
          requestContext: { condition: string };
          responsePayload: string;
        };
      } catch {
        return undefined;
      }
    });
    expect(record.requestContext.condition).toBe('UnhandledInvocationError');
    expect(JSON.parse(record.responsePayload)).toEqual({
      errorMessage: tooLarge('web').message,
      errorType: 'FcAsyncError',
    });
  });
});
