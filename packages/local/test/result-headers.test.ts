import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { type Emulator, startEmulator } from '../src/index.js';

// The headers of an answer under `fc-async dev` are those FC lets through from a built-in runtime's
// result (fc-contract section 3): every Set-Cookie, and no Content-Disposition, Date or Server set by
// the function, whichever kind of entry made the answer.

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function serve(file: string, source: string): Promise<Emulator> {
  const dir = mkdtempSync(join(tmpdir(), 'fc-async-local-result-headers-'));
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  writeFileSync(join(dir, file), source);
  const emulator = await startEmulator({
    entry: join(dir, file),
    name: 'web',
    port: 0,
    controlPort: 0,
    output: () => {},
  });
  cleanups.push(() => emulator.close({ timeoutMs: 1000 }));
  return emulator;
}

describe('answer headers under fc-async dev', () => {
  it("sends each of an FC handler's Set-Cookie case variants (the form docs/adapters.md gives)", async () => {
    const emulator = await serve(
      'cookies.mjs',
      `export const handler = async () => ({
  statusCode: 200,
  headers: { 'set-cookie': 'a=1', 'Set-cookie': 'b=2', 'sEt-cookie': 'c=3', 'content-type': 'text/plain' },
  body: 'ok',
});
`,
    );
    const res = await fetch(emulator.triggerUrl);
    expect(res.status).toBe(200);
    expect(res.headers.getSetCookie()).toEqual(['a=1', 'b=2', 'c=3']);
  });

  it("drops an app's Content-Disposition, Server and Date as FC does, and keeps its cookies", async () => {
    const express = JSON.stringify(import.meta.resolve('express'));
    const emulator = await serve(
      'app.mjs',
      `import express from ${express};
const app = express();
app.get('/report', (_req, res) => {
  res.cookie('a', '1').cookie('b', '2');
  res.set({ server: 'my-app', date: 'Thu, 01 Jan 1970 00:00:00 GMT' });
  res.attachment('q3-report.txt').send('numbers');
});
export default app;
`,
    );
    const res = await fetch(`${emulator.triggerUrl}/report`);
    expect(res.status).toBe(200);
    expect(await res.text()).toBe('numbers');
    expect(res.headers.get('content-disposition')).toBeNull();
    expect(res.headers.get('server')).toBeNull();
    expect(res.headers.get('date')).not.toBe('Thu, 01 Jan 1970 00:00:00 GMT');
    expect(res.headers.getSetCookie()).toEqual(['a=1; Path=/', 'b=2; Path=/']);
  });
});
