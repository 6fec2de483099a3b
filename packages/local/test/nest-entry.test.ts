import { mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadEntry } from '../src/entry.js';
import { startEmulator } from '../src/index.js';
import { PKG } from './helpers.js';

// A NestJS app exported as it is (`NestFactory.create()`'s INestApplication) is served as the
// Express or Fastify app under it, once initialized. Nest itself is tested in examples/nest; here
// the objects have the shape of Nest's: init(), listen() and getHttpAdapter().getInstance().
const dir = mkdtempSync(join(tmpdir(), 'fc-async-nest-entry-'));
symlinkSync(join(PKG, '../../node_modules'), join(dir, 'node_modules')); // express and fastify resolve
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** An entry exporting `app`: a Nest-shaped application over `instance`, whose routes init() adds. */
function nestEntry(name: string, instance: string, init: string): string {
  const file = join(dir, `${name}.mjs`);
  writeFileSync(
    file,
    `${instance}
let inits = 0;
export const app = {
  async init() { inits += 1; ${init} },
  getHttpAdapter: () => ({ getInstance: () => server }),
  listen() { throw new Error('fc-async dev must not listen'); },
  use() {},
};
`,
  );
  return file;
}

describe('an entry exporting a NestJS app', () => {
  it('is initialized once and served as its Express app, sync and async', async () => {
    const file = nestEntry(
      'express-nest',
      "import express from 'express';\nconst server = express();",
      "server.get('/inits', (req, res) => res.json({ inits, fc: req.fc?.type }));",
    );
    const emulator = await startEmulator({ entry: file, name: 'nest', port: 0, controlPort: 0, output: () => {} });
    try {
      const got = await fetch(`${emulator.triggerUrl}/inits`);
      expect(await got.json()).toEqual({ inits: 1, fc: 'Sync' });
      const accepted = await fetch(`${emulator.triggerUrl}/inits`, { headers: { 'x-fc-invocation-type': 'Async' } });
      expect(accepted.status).toBe(202);
    } finally {
      await emulator.close();
    }
  });

  it('is served as its Fastify app, which init() leaves unready', async () => {
    const file = nestEntry(
      'fastify-nest',
      "import Fastify from 'fastify';\nconst server = Fastify();",
      "server.get('/inits', async (request) => ({ inits, fc: request.fc?.type }));",
    );
    await expect(loadEntry(file)).resolves.toMatchObject({ kind: 'fastify', exportName: 'app' });
  });

  it('says which export failed to initialize, with the Nest error', async () => {
    const file = nestEntry(
      'broken-nest',
      'const server = {};',
      "throw new Error('Nest can\\'t resolve dependencies of the OrdersController (?)');",
    );
    await expect(loadEntry(file)).rejects.toMatchObject({
      code: 'EntryLoadFailed',
      message: expect.stringContaining(
        'Initializing the Nest app `app` of ' +
          file +
          " failed: Nest can't resolve dependencies of the OrdersController (?)",
      ),
    });
  });

  it('refuses a promise of a Nest app (NestFactory.create() not awaited), saying to await it', async () => {
    // `export default NestFactory.create(AppModule)`: FC calls no promise, nor does fc-async dev.
    const esm = join(dir, 'promised-nest.mjs');
    writeFileSync(esm, 'export default new Promise(() => {});\n');
    await expect(loadEntry(esm)).rejects.toMatchObject({
      code: 'EntryNotServable',
      message: expect.stringMatching(
        /\(looked at handler, default, app: default is a promise; other exports: none\); `default` is a promise: export what it resolves to \(`export default await \.\.\.` in an ES module; in a CommonJS one, a handler that awaits it on its first call\)$/,
      ),
    });
    // Not told it is a custom runtime's start script, which exports nothing.
    await expect(loadEntry(esm)).rejects.not.toThrow(/listens itself/);
    const cjs = join(dir, 'promised-nest.cjs');
    writeFileSync(cjs, 'exports.app = new Promise(() => {});\n');
    await expect(loadEntry(cjs)).rejects.toThrow(
      /app is a promise; other exports: app\); `app` is a promise: export what it resolves to \(`export const app = await \.\.\.`/,
    );
  });

  it('refuses a Nest app on another HTTP platform, naming the two served', async () => {
    const file = nestEntry('other-nest', 'const server = { name: "h3" };', '');
    await expect(loadEntry(file)).rejects.toMatchObject({
      code: 'EntryNotServable',
      message: expect.stringMatching(/is a Nest app whose HTTP platform is neither Express nor Fastify .*an object/),
    });
  });
});
