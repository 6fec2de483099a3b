import { copyFileSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { startEmulator } from '../src/index.js';
import { runCli, startCli } from './helpers.js';

// `--host [::1]` / `--control-host [::1]`: an IPv6 address as a URL writes it. The emulator counted
// `[::1]` as loopback but handed it to the socket with its brackets, which the address lookup
// took for a host name: `Cannot listen on [::1]:9001: getaddrinfo ENOTFOUND [::1]`. Under
// `--watch`, which picks the ports given as 0 itself, that lookup error (or any address not on
// this machine) crashed the command with a stack trace.

const entry = fileURLToPath(new URL('./fixtures/echo-handler.mjs', import.meta.url));
const quiet = { entry, port: 0, controlPort: 0, output: () => {} };

describe('an IPv6 loopback host written as in a URL', () => {
  it('serves [::1] as ::1 on both ports, without an access key (it is loopback)', async () => {
    const emulator = await startEmulator({ ...quiet, host: '[::1]', controlHost: '[::1]' });
    try {
      expect(emulator.triggerUrl).toMatch(/^http:\/\/\[::1\]:\d+$/);
      expect(emulator.controlUrl).toMatch(/^http:\/\/\[::1\]:\d+$/);
      const answer = await fetch(`${emulator.triggerUrl}/`);
      await answer.body?.cancel();
      expect(answer.status).toBe(200);
      const tasks = await fetch(new URL('/2023-03-30/functions/echo-handler/async-tasks', emulator.controlUrl));
      await tasks.body?.cancel();
      expect(tasks.status).toBe(200);
    } finally {
      await emulator.close({ timeoutMs: 100 });
    }
  });
});

describe('fc-async dev --watch on a host of its own', () => {
  const dir = mkdtempSync(join(tmpdir(), 'fc-async-listen-host-'));
  const app = join(dir, 'app.mjs');
  copyFileSync(entry, app);

  it('serves --host [::1], picking its port there', async () => {
    const run = await startCli(['--watch', app, '--host', '[::1]']);
    try {
      expect(run.trigger).toMatch(/^http:\/\/\[::1\]:\d+$/);
      const answer = await fetch(`${run.trigger}/`);
      await answer.body?.cancel();
      expect(answer.status).toBe(200);
    } finally {
      await run.stop();
    }
  });

  it('refuses an address not on this machine in one line, exit 1, no stack trace', async () => {
    const { code, stderr } = await runCli(['dev', '--watch', app, '--port', '0', '--host', '192.0.2.1']);
    expect(code).toBe(1);
    expect(stderr.trimEnd().split('\n')).toEqual([
      expect.stringMatching(/^fc-async: Cannot listen on 192\.0\.2\.1: .*EADDRNOTAVAIL/),
    ]);
  });
});
