import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, expect, it } from 'vitest';
import { startCli, waitFor } from './helpers.js';

// An error the app leaves unhandled (a timer that throws) is reported as the emulator's own log
// lines are: with a time, the error's fields, and control characters escaped (it wrote the raw
// message: an escape code cleared the terminal and a newline forged an ERROR line).

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

/**
 * `fc-async dev` on an entry whose handler answers `ok` and then throws `thrown` (source) from a
 * timer; resolves with the CLI once the first request answered, and the stray error's log line.
 */
async function strayThrow(thrown: string) {
  const dir = mkdtempSync(join(tmpdir(), 'fc-async-stray-'));
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  const entry = join(dir, 'app.mjs');
  writeFileSync(
    entry,
    `export const handler = async () => {\n  setTimeout(() => { ${thrown} }, 0);\n  return 'ok';\n};\n`,
  );
  const cli = await startCli([entry]);
  cleanups.push(() => cli.stop());
  expect((await fetch(cli.trigger)).status).toBe(200);
  const line = await waitFor(() =>
    cli.stderr
      .join('')
      .split('\n')
      .find((l) => l.includes('uncaught exception in the app')),
  );
  return { cli, line };
}

it('reports an uncaught exception of the app as a JSON log line, escaped and with its time, and keeps serving', async () => {
  const { cli, line } = await strayThrow("throw new Error('stray \\u001b[2J\\nERROR forged');");
  expect(line).not.toContain('\u001b');
  const entryLine = JSON.parse(line) as { level: string; time?: string; error?: { message?: string } };
  expect(entryLine.level).toBe('error');
  expect(entryLine.time).toEqual(expect.any(String));
  expect(entryLine.error?.message).toBe('stray \u001b[2J\nERROR forged');
  expect(cli.stderr.join('')).not.toMatch(/^ERROR forged/m);
  // Still serving.
  expect((await fetch(cli.trigger)).status).toBe(200);
});

it('reports a thrown value JSON cannot hold (circular) and keeps serving (logging it threw in the listener: exit 7)', async () => {
  const { cli, line } = await strayThrow("const o = { kind: 'loop' }; o.self = o; throw o;");
  expect(line).toContain('Circular');
  expect((await fetch(cli.trigger)).status).toBe(200);
  expect(cli.proc.exitCode).toBeNull();
});

it('reports a thrown value whose toJSON gives nothing, and keeps serving (JSON.parse of "undefined" threw: exit 7)', async () => {
  const { cli, line } = await strayThrow("throw { kind: 'no-json', toJSON() {} };");
  expect(line).toContain('no-json');
  expect((await fetch(cli.trigger)).status).toBe(200);
  expect(cli.proc.exitCode).toBeNull();
});

it('says why the emulator ended when a function calls process.exit(), where, and writes the buffered log lines', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'fc-async-exit-'));
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  const entry = join(dir, 'app.mjs');
  writeFileSync(
    entry,
    "export const handler = async () => {\n  setTimeout(() => process.exit(3), 0);\n  return 'bye';\n};\n",
  );
  const cli = await startCli([entry]);
  cleanups.push(() => cli.stop());
  expect((await fetch(cli.trigger)).status).toBe(200);
  expect(await cli.exited).toBe(3);
  // The invocation's line, buffered when the function exited, is written; then why it ended.
  expect(cli.lines.some((l) => l.kind === 'invocation' && l.status === 200)).toBe(true);
  const line = cli.stderr
    .join('')
    .split('\n')
    .find((l) => l.includes('process.exit()'));
  expect(JSON.parse(line ?? '{}')).toMatchObject({
    level: 'error',
    message: expect.stringContaining('the process exits (code 3) while the emulator serves'),
    at: expect.stringContaining(`${entry}:2:`),
  });
  expect(line).toContain('tasks not finished are lost');
});

it("keeps the control plane's access key out of the functions' environment (they run in its process)", async () => {
  const dir = mkdtempSync(join(tmpdir(), 'fc-async-env-'));
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  const entry = join(dir, 'app.mjs');
  writeFileSync(
    entry,
    'export const handler = async () => JSON.stringify(Object.keys(process.env).filter((k) => k.startsWith("FC_ASYNC_")));\n',
  );
  const cli = await startCli([entry, '--require-signatures'], {
    env: { FC_ASYNC_ACCESS_KEY_ID: 'team-key', FC_ASYNC_ACCESS_KEY_SECRET: 'team-secret' },
  });
  cleanups.push(() => cli.stop());
  const res = await fetch(cli.trigger);
  expect(await res.json()).toEqual([]);
  // The key still guards the control plane.
  expect((await fetch(new URL('2023-03-30/functions/app/async-tasks', cli.control))).status).toBe(400);
});
