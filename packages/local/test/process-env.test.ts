import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createFcHandler, silentLogger } from '@fc-async/core';
import { afterEach, describe, expect, it } from 'vitest';
import { startEmulator } from '../src/index.js';
import { lendEnv } from '../src/process-env.js';
import { fixture, startEcho } from './helpers.js';

const FC_NAMES = [
  'FC_FUNCTION_NAME',
  'FC_FUNCTION_HANDLER',
  'FC_FUNCTION_MEMORY_SIZE',
  'FC_ACCOUNT_ID',
  'FC_QUALIFIER',
  'FC_INSTANCE_ID',
  'FC_REGION',
  'OWN_VAR',
];
const saved = Object.fromEntries(FC_NAMES.map((n) => [n, process.env[n]]));
afterEach(() => {
  for (const [name, value] of Object.entries(saved)) {
    if (value === undefined) delete process.env[name];
    else process.env[name] = value;
  }
});

/** The FC_* variables (and OWN_VAR) as process.env has them now. */
const fcEnv = () => Object.fromEntries(FC_NAMES.map((n) => [n, process.env[n]]));

describe('lendEnv', () => {
  it('puts each variable back as it was, whatever order the lends end in', () => {
    process.env.OWN_VAR = 'shell';
    delete process.env.FC_QUALIFIER;
    const first = lendEnv({ OWN_VAR: 'a', FC_QUALIFIER: 'LATEST' });
    const second = lendEnv({ OWN_VAR: 'b', FC_QUALIFIER: 'LATEST' });
    expect([process.env.OWN_VAR, process.env.FC_QUALIFIER]).toEqual(['b', 'LATEST']);
    first();
    // The newer lend still holds them.
    expect([process.env.OWN_VAR, process.env.FC_QUALIFIER]).toEqual(['b', 'LATEST']);
    second();
    expect([process.env.OWN_VAR, 'FC_QUALIFIER' in process.env]).toEqual(['shell', false]);
    second();
    expect(process.env.OWN_VAR).toBe('shell');
  });

  it('puts back the value of a lend still held, and the value before of one equal to the shell', () => {
    process.env.OWN_VAR = 'same';
    const first = lendEnv({ OWN_VAR: 'a' });
    const second = lendEnv({ OWN_VAR: 'same' });
    second();
    expect(process.env.OWN_VAR).toBe('a');
    first();
    expect(process.env.OWN_VAR).toBe('same');
  });

  it('leaves a variable someone else changed meanwhile as they set it', () => {
    delete process.env.OWN_VAR;
    const first = lendEnv({ OWN_VAR: 'a' });
    process.env.OWN_VAR = 'test';
    const second = lendEnv({ OWN_VAR: 'b' });
    first();
    second();
    expect(process.env.OWN_VAR).toBe('test');
    const third = lendEnv({ OWN_VAR: 'c' });
    process.env.OWN_VAR = 'later';
    third();
    expect(process.env.OWN_VAR).toBe('later');
  });
});

describe('startEmulator and process.env', () => {
  it('sets the function’s variables while it runs and puts them back at close()', async () => {
    for (const name of FC_NAMES) delete process.env[name];
    process.env.FC_ACCOUNT_ID = 'shell-account';
    const emulator = await startEcho();
    expect(fcEnv()).toMatchObject({ FC_FUNCTION_NAME: 'echo', FC_QUALIFIER: 'LATEST' });
    expect(process.env.FC_ACCOUNT_ID).not.toBe('shell-account');
    await emulator.close();
    expect(fcEnv()).toEqual({
      ...Object.fromEntries(FC_NAMES.map((n) => [n, undefined])),
      FC_ACCOUNT_ID: 'shell-account',
    });
  });

  it('leaves a handler made after it in the mode the shell’s variables give', async () => {
    for (const name of FC_NAMES) delete process.env[name];
    process.env.FC_REGION = 'cn-hangzhou';
    const before = createFcHandler((_req, res) => res.end(), { logger: silentLogger });
    const emulator = await startEcho();
    await emulator.close();
    const after = createFcHandler((_req, res) => res.end(), { logger: silentLogger });
    expect([before.mode, after.mode]).toEqual(['local', 'local']);
    await Promise.all([before.close(), after.close()]);
  });

  it('keeps two emulators apart: the one still running keeps its variables, none are left after both', async () => {
    for (const name of FC_NAMES) delete process.env[name];
    const multi = await startEmulator({ config: fixture('multi/s.yaml'), port: 0, controlPort: 0, output: () => {} });
    const echo = await startEcho();
    await multi.close();
    expect(process.env.FC_FUNCTION_NAME).toBe('echo');
    const res = await fetch(`${echo.triggerUrl}/`);
    expect(((await res.json()) as { env: unknown }).env).toMatchObject({ name: 'echo' });
    await echo.close();
    expect(fcEnv()).toEqual(Object.fromEntries(FC_NAMES.map((n) => [n, undefined])));
  });

  it('puts the variables back when a start fails, and keeps a function variable equal to the shell’s', async () => {
    for (const name of FC_NAMES) delete process.env[name];
    await expect(
      startEmulator({ entry: fixture('not-servable.mjs'), port: 0, controlPort: 0, output: () => {} }),
    ).rejects.toMatchObject({ code: 'EntryNotServable' });
    expect(fcEnv()).toEqual(Object.fromEntries(FC_NAMES.map((n) => [n, undefined])));

    process.env.OWN_VAR = 'shell';
    const dir = mkdtempSync(join(tmpdir(), 'fc-async-env-'));
    writeFileSync(join(dir, 'index.mjs'), 'export const handler = async () => process.env.OWN_VAR;\n');
    writeFileSync(
      join(dir, 's.yaml'),
      `edition: 3.0.0
resources:
  own:
    component: fc3
    props: { functionName: own, code: ./, handler: index.handler, environmentVariables: { OWN_VAR: shell } }
`,
    );
    try {
      const emulator = await startEmulator({ cwd: dir, port: 0, controlPort: 0, output: () => {} });
      await emulator.close();
      expect(process.env.OWN_VAR).toBe('shell');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
