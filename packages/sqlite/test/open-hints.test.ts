import { describe, expect, it, vi } from 'vitest';

// What SQLite's own words leave out when a task file cannot be opened ("unable to open database
// file" for a folder and for a permission alike, "disk I/O error" on a read-only mount). Root (as CI
// runs) may write anywhere, so the file system's answers are given here.
const refusals = new Map<string, string>();
vi.mock('node:fs', async (original) => {
  const fs = await original<typeof import('node:fs')>();
  return {
    ...fs,
    accessSync: (path: string, mode?: number) => {
      const code = refusals.get(path);
      if (code) throw Object.assign(new Error(code), { code });
      return fs.accessSync(path, mode);
    },
  };
});
const { whyNotOpened } = await import('../src/database.js');

describe('why a task file could not be opened', () => {
  it('names a folder nobody may write, a read-only mount, and nothing when neither is the case', () => {
    refusals.set('/srv/tasks', 'EACCES');
    expect(whyNotOpened('/srv/tasks/t.db')).toBe(': no permission to write its folder');
    refusals.set('/srv/tasks', 'EROFS');
    expect(whyNotOpened('/srv/tasks/t.db')).toBe(': its folder is on a read-only file system');
    refusals.set('/srv/tasks/t.db', 'EACCES');
    expect(whyNotOpened('/srv/tasks/t.db')).toBe(': no permission to write the file');
    refusals.clear();
    expect(whyNotOpened('/tmp/no-such-folder-fc-async/t.db')).toBe('');
  });
});
