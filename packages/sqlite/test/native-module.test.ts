import { writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { createFcHandler, silentLogger } from '@fc-async/core';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { tempDir } from './helpers.js';

// better-sqlite3 loads its native module at the first open. Here the open fails the way it fails in
// an install that skipped its install script, or in a node_modules built for another Node.js: the
// errors are the real loaders' own (the `bindings` package's search, Node's `dlopen`).
// `bindings` as better-sqlite3 itself requires it.
const require = createRequire(createRequire(import.meta.url).resolve('better-sqlite3'));
let loadError: () => Error = () => new Error('unset');
vi.mock('better-sqlite3', () => ({
  default: class {
    constructor() {
      throw loadError();
    }
  },
}));
const { sqlite } = await import('../src/index.js');

const cleanups: (() => void)[] = [];
afterEach(() => {
  for (const cleanup of cleanups.splice(0)) cleanup();
});

function thrownBy(load: () => unknown): Error {
  try {
    load();
  } catch (error) {
    return error as Error;
  }
  throw new Error('the load did not fail');
}

async function startError(path: string): Promise<{ code?: string; statusCode?: number; message: string }> {
  const handler = createFcHandler((_req, res) => res.end(), {
    logger: silentLogger,
    env: {},
    async: { mode: 'local', backend: sqlite(path) },
  });
  try {
    await handler.engine?.whenReady();
    throw new Error('the start did not fail');
  } catch (error) {
    return error as { code?: string; statusCode?: number; message: string };
  } finally {
    await handler.close();
  }
}

describe('sqlite(): better-sqlite3 whose native module cannot be loaded', () => {
  it('a native module never built (its install script skipped) says how to approve and rebuild it', async () => {
    const { dir, cleanup } = tempDir();
    cleanups.push(cleanup);
    const bindings = require('bindings') as (options: object) => unknown;
    const missing = thrownBy(() => bindings({ bindings: 'better_sqlite3.node', module_root: dir }));
    expect(missing.message).toMatch(/^Could not locate the bindings file/);
    loadError = () => missing;

    const path = join(dir, 'tasks.db');
    const error = await startError(path);
    expect(error).toMatchObject({ code: 'SqliteStoreUnavailable', statusCode: 503 });
    expect(error.message).toContain(`Cannot open the task file ${path}: better-sqlite3's native module is not built`);
    expect(error.message).toContain('npm install-scripts approve better-sqlite3');
    expect(error.message).toContain('npm rebuild better-sqlite3');
    // Not the dozen paths the search tried.
    expect(error.message).not.toContain(dir.concat('/build'));
  });

  it('a native module Node.js cannot load (built for another Node.js or platform) says to rebuild it', async () => {
    const { dir, cleanup } = tempDir();
    cleanups.push(cleanup);
    const notAnAddon = join(dir, 'better_sqlite3.node');
    writeFileSync(notAnAddon, 'not a shared object');
    const refused = thrownBy(() => process.dlopen({ exports: {} }, notAnAddon));
    expect((refused as { code?: string }).code).toBe('ERR_DLOPEN_FAILED');
    loadError = () => refused;

    const error = await startError(join(dir, 'tasks.db'));
    expect(error).toMatchObject({ code: 'SqliteStoreUnavailable', statusCode: 503 });
    expect(error.message).toContain("better-sqlite3's native module cannot be loaded by this Node.js");
    expect(error.message).toContain(`${process.version}, ${process.platform}-${process.arch}`);
    expect(error.message).toContain('npm rebuild better-sqlite3');
  });
});
