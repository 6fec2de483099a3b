import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Emulator, startEmulator } from '../src/index.js';

// The dashboard's live stream with an entry whose fc-async handler comes from a copy of the core
// older than AsyncEngine.watchStore (an app with its own, pinned @fc-async packages): the emulator
// serves such handlers, so its stream must too, with this process's events as before.

const url = (pkg: string) => JSON.stringify(import.meta.resolve(pkg));

/** An fc-async handler whose engine has no `watchStore`, as one of a core from before it. */
const entry = `import express from ${url('express')};
import { createHandler } from ${url('@fc-async/express')};
const app = express();
app.post('/job', (_req, res) => res.json({ ok: true }));
export const handler = createHandler(app);
handler.engine.watchStore = undefined;
`;

let emulator: Emulator;
let dir: string;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'fc-async-dash-compat-'));
  writeFileSync(join(dir, 'app.mjs'), entry);
  emulator = await startEmulator({
    entry: join(dir, 'app.mjs'),
    name: 'old',
    port: 0,
    controlPort: 0,
    maxEventStreams: 1,
    output: () => {},
  });
});

afterAll(async () => {
  await emulator?.close({ timeoutMs: 1000 });
  rmSync(dir, { recursive: true, force: true });
});

/** Opens the event stream; resolves its status and what it has received so far, and closes it. */
function openStream(): Promise<{ status: number; received: () => string; close: () => void }> {
  return new Promise((resolve, reject) => {
    const req = request(`${emulator.controlUrl}/api/events`, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        text += chunk;
      });
      res.on('error', () => {});
      resolve({ status: res.statusCode ?? 0, received: () => text, close: () => req.destroy() });
    });
    req.on('error', reject);
    req.end();
  });
}

describe('dashboard stream: an engine without watchStore (an older copy of the core)', () => {
  it("streams this process's task events, and frees its slot when it closes", async () => {
    const first = await openStream();
    expect(first.status).toBe(200);
    const res = await fetch(`${emulator.triggerUrl}/job`, {
      method: 'POST',
      headers: { 'x-fc-invocation-type': 'Async', 'x-fc-async-task-id': 'compat_1' },
    });
    expect(res.status).toBe(202);
    const finished = () =>
      first
        .received()
        .split('\n')
        .filter((line) => line.startsWith('data: '))
        .map((line) => JSON.parse(line.slice(6)) as { function: string; type: string; taskId?: string })
        .some((m) => m.function === 'old' && m.type === 'finished' && m.taskId === 'compat_1');
    await expect.poll(finished, { timeout: 10_000, interval: 25 }).toBe(true);
    first.close();
    // The one stream allowed (maxEventStreams: 1) is free again for the next tab.
    await expect
      .poll(
        async () => {
          const next = await openStream();
          next.close();
          return next.status;
        },
        { timeout: 10_000, interval: 50 },
      )
      .toBe(200);
  });
});
