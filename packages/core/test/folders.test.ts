import { mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { makeFolderSync } from '../src/index.js';

const root = mkdtempSync(join(tmpdir(), 'fc-async-folders-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

describe('makeFolderSync', () => {
  const name = 'sync';
  const make = async (path: string) => makeFolderSync(path);
  it('creates the folder and its missing parents, and accepts one that exists', async () => {
    const path = join(root, name, 'a', 'b', 'c');
    await make(path);
    expect(statSync(path).isDirectory()).toBe(true);
    await make(path);
    await make(join(root, name, 'a'));
    expect(statSync(path).isDirectory()).toBe(true);
  });

  it('fails with ENOTDIR under a file', async () => {
    const file = join(root, `${name}-file`);
    writeFileSync(file, 'x');
    await expect(make(join(file, 'sub'))).rejects.toMatchObject({ code: 'ENOTDIR' });
  });

  it('fails with ENOENT below /proc, where a recursive mkdir never returns', async () => {
    await expect(make('/proc/fc-async-missing/sub')).rejects.toMatchObject({ code: 'ENOENT' });
  });
});
