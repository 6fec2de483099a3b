// Each JSONL append opens its file once: the torn-line check reads the file's last byte only when
// the file is not as this process's last append left it (a second open per record before).
import {
  appendFileSync,
  mkdtempSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { type DestinationRecord, jsonlDestination } from '../src/index.js';

const opened = vi.hoisted(() => [] as string[]);
vi.mock('node:fs/promises', async (importOriginal) => {
  const actual = await importOriginal<typeof import('node:fs/promises')>();
  return {
    ...actual,
    open: (...args: Parameters<typeof actual.open>) => {
      opened.push(String(args[0]));
      return actual.open(...args);
    },
  };
});

const record = (requestId: string): DestinationRecord => ({
  timestamp: 1,
  requestContext: {
    requestId,
    functionArn: 'acs:fc:cn-hangzhou:123:functions/f',
    condition: '',
    approximateInvokeCount: 1,
  },
  requestPayload: '{}',
  responseContext: { statusCode: 200, functionError: '' },
  responsePayload: 'ok',
});

const roots: string[] = [];
const tempFile = () => {
  const root = mkdtempSync(join(tmpdir(), 'fc-async-jsonl-appends-'));
  roots.push(root);
  return join(root, 'out.jsonl');
};
afterEach(() => {
  for (const root of roots.splice(0)) rmSync(root, { recursive: true, force: true });
});

const ids = (file: string) =>
  readFileSync(file, 'utf8')
    .split('\n')
    .map((line) => {
      try {
        return (JSON.parse(line) as DestinationRecord).requestContext.requestId;
      } catch {
        return line === '' ? '' : 'unreadable';
      }
    });

describe('jsonlDestination appends', () => {
  it('open the file once per record, in order, and the file stays 0600', async () => {
    const file = tempFile();
    const destination = jsonlDestination(file);
    const names = Array.from({ length: 50 }, (_, i) => `r${i}`);
    opened.length = 0;
    await Promise.all(names.map((name) => destination(record(name))));
    await destination(record('last'));
    expect(opened.filter((path) => path === file)).toHaveLength(51);
    expect(ids(file)).toEqual([...names, 'last', '']);
    expect(statSync(file).mode & 0o777).toBe(0o600);
  });

  it("still repair a torn line another writer left after this process's last append", async () => {
    const file = tempFile();
    const destination = jsonlDestination(file);
    await destination(record('one'));
    appendFileSync(file, JSON.stringify(record('cut')).slice(0, 30));
    await destination(record('two'));
    expect(ids(file)).toEqual(['one', 'unreadable', 'two', '']);
  });

  it('still repair a torn line in a file replaced by one of the same size', async () => {
    const file = tempFile();
    const destination = jsonlDestination(file);
    await destination(record('one'));
    const size = statSync(file).size;
    const other = `${file}.new`;
    writeFileSync(other, 'x'.repeat(size));
    renameSync(other, file);
    await destination(record('two'));
    expect(ids(file)).toEqual(['unreadable', 'two', '']);
  });

  it('through a symbolic link, append to its target, repairing a torn line there as in a file', async () => {
    const target = tempFile();
    const link = join(dirname(target), 'link.jsonl');
    symlinkSync(target, link);
    const destination = jsonlDestination(link);
    await destination(record('one'));
    appendFileSync(target, JSON.stringify(record('cut')).slice(0, 30));
    await destination(record('two'));
    await destination(record('three'));
    expect(ids(target)).toEqual(['one', 'unreadable', 'two', 'three', '']);
    expect(statSync(target).mode & 0o777).toBe(0o600);
  });
});
