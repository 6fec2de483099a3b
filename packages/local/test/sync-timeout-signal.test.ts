import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { startEmulator } from '../src/index.js';
import { waitFor } from './helpers.js';

// A sync call past its function's timeout is answered 504 and, as FC ends the invocation, its
// signal aborts: the app's own work (an ffmpeg child, a query) stops instead of running on.

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

describe('a sync call past the function timeout', () => {
  it('aborts the invocation signal when it answers 504', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'fc-async-local-sync-signal-'));
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    const aborted = join(dir, 'aborted.txt');
    const express = JSON.stringify(import.meta.resolve('express'));
    const express0 = JSON.stringify(import.meta.resolve('@fc-async/express'));
    writeFileSync(
      join(dir, 'app.mjs'),
      `import express from ${express};
import { getInvocation } from ${express0};
import { writeFileSync } from 'node:fs';
const app = express();
app.get('/slow', (req, res) => {
  const { signal } = getInvocation(req);
  signal.addEventListener('abort', () => writeFileSync(${JSON.stringify(aborted)}, String(signal.reason?.code)));
  // Never answers on its own: a transcode longer than the timeout.
});
export default app;
`,
    );
    const emulator = await startEmulator({
      entry: join(dir, 'app.mjs'),
      name: 'slow',
      timeoutSeconds: 1,
      port: 0,
      controlPort: 0,
      output: () => {},
    });
    cleanups.push(() => emulator.close({ timeoutMs: 1000 }));
    const res = await fetch(`${emulator.triggerUrl}/slow`);
    expect(res.status).toBe(504);
    const code = await waitFor(() => {
      try {
        return readFileSync(aborted, 'utf8');
      } catch {
        return undefined;
      }
    }, 5000);
    expect(code).toBe('FunctionTimeout');
  });
});

describe('a sync call still running when the emulator shuts down', () => {
  it('aborts its invocation signal (ShuttingDown) and lets the app clean up before answering 503', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'fc-async-local-sync-shutdown-'));
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    const started = join(dir, 'started.txt');
    const aborted = join(dir, 'aborted.txt');
    const cleaned = join(dir, 'cleaned.txt');
    const express = JSON.stringify(import.meta.resolve('express'));
    const express0 = JSON.stringify(import.meta.resolve('@fc-async/express'));
    writeFileSync(
      join(dir, 'app.mjs'),
      `import express from ${express};
import { getInvocation } from ${express0};
import { writeFileSync } from 'node:fs';
const app = express();
app.get('/slow', (req, res) => {
  const { signal } = getInvocation(req);
  writeFileSync(${JSON.stringify(started)}, 'yes');
  signal.addEventListener('abort', () => {
    writeFileSync(${JSON.stringify(aborted)}, String(signal.reason?.code));
    // The app's clean-up takes a while (a child process ending, a work folder removed).
    setTimeout(() => {
      writeFileSync(${JSON.stringify(cleaned)}, 'done');
      res.status(500).json({ code: 'Stopped' });
    }, 200);
  });
});
export default app;
`,
    );
    const emulator = await startEmulator({
      entry: join(dir, 'app.mjs'),
      name: 'slow',
      timeoutSeconds: 60,
      port: 0,
      controlPort: 0,
      output: () => {},
    });
    const answer = fetch(`${emulator.triggerUrl}/slow`);
    // Still running when the shutdown comes: its handler has started (not a moment has passed).
    await waitFor(() => existsSync(started) || undefined);
    await emulator.close({ timeoutMs: 1000 });
    // The app ended its work before the emulator finished closing.
    expect(readFileSync(cleaned, 'utf8')).toBe('done');
    expect(readFileSync(aborted, 'utf8')).toBe('ShuttingDown');
    const res = await answer;
    expect(res.status).toBe(503);
    expect(await res.json()).toMatchObject({ code: 'ShuttingDown' });
  });
});
