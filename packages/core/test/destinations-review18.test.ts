// Review 18 of the destinations: torn JSONL lines, a removed folder, one record object shared by
// every call, and records JSON cannot hold.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import {
  createFcHandler,
  type DestinationRecord,
  deliverRecord,
  fcFunctionDestination,
  functionDestination,
  httpDestination,
  jsonlDestination,
} from '../src/index.js';
import { asyncEvent, context, deferred, memoryLogger } from './helpers.js';

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

const options = () => ({ logger: memoryLogger(), sleep: async () => {} });

const roots: string[] = [];
const tempRoot = () => {
  const root = mkdtempSync(join(tmpdir(), 'fc-async-r18-'));
  roots.push(root);
  return root;
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

describe('jsonlDestination after an append cut short', () => {
  it('starts the next record on a line of its own, keeping the fragment', async () => {
    const file = join(tempRoot(), 'out.jsonl');
    // What a full disk (or a file size limit, or a crash) leaves: part of a line, no newline.
    writeFileSync(file, `${JSON.stringify(record('first')).slice(0, 40)}`);
    expect((await deliverRecord(jsonlDestination(file), record('second'), options())).status).toBe('Succeeded');
    expect(ids(file)).toEqual(['unreadable', 'second', '']);
  });

  it('adds no empty line after a whole one', async () => {
    const file = join(tempRoot(), 'out.jsonl');
    const destination = jsonlDestination(file);
    await deliverRecord(destination, record('one'), options());
    await deliverRecord(destination, record('two'), options());
    expect(ids(file)).toEqual(['one', 'two', '']);
  });
});

describe('jsonlDestination after its folder is removed', () => {
  it('makes the folder again', async () => {
    const folder = join(tempRoot(), '.fc-async');
    const file = join(folder, 'succeeded.jsonl');
    const destination = jsonlDestination(file, { retries: 0 });
    expect((await deliverRecord(destination, record('one'), options())).status).toBe('Succeeded');
    rmSync(folder, { recursive: true });
    const second = await deliverRecord(destination, record('two'), options());
    expect(second.errors).toEqual([]);
    expect(ids(file)).toEqual(['two', '']);
  });

  it('names a system error code once in the error', async () => {
    const root = tempRoot();
    writeFileSync(join(root, 'a-file'), '');
    const result = await deliverRecord(
      jsonlDestination(join(root, 'a-file', 'out.jsonl'), { retries: 0 }),
      record('r'),
      options(),
    );
    expect(result.destinations[0]?.error).toMatch(/^ENOTDIR: not a directory/);
    expect(result.errors[0]).not.toMatch(/ENOTDIR: ENOTDIR/);
  });
});

describe('each destination call gets its own record', () => {
  it('a destination that edits its record does not change what the next one gets', async () => {
    const seen: DestinationRecord[] = [];
    const delivered = deferred();
    const handler = createFcHandler(
      (_req, res) => {
        res.setHeader('content-type', 'application/json');
        res.end('{"rendered":3}');
      },
      {
        logger: memoryLogger(),
        env: {},
        async: { mode: 'local' },
        destinations: {
          onSuccess: [
            functionDestination((r) => {
              // The app's own use of the record: parse the answer in place.
              (r as { responsePayload: unknown }).responsePayload = JSON.parse(r.responsePayload);
            }),
            functionDestination((r) => {
              seen.push(structuredClone(r));
              delivered.resolve();
            }),
          ],
        },
      },
    );
    await handler(asyncEvent({ method: 'POST', path: '/render', taskId: 'job_1' }), context);
    await delivered.promise;
    await handler.close();
    expect(seen[0]?.responsePayload).toBe('{"rendered":3}');
  });

  it('a retry gets the record as it was, not as the failed attempt left it', async () => {
    const payloads: unknown[] = [];
    const editing = (r: DestinationRecord) => {
      payloads.push(r.responsePayload);
      (r as { responsePayload: unknown }).responsePayload = { parsed: true };
      delete (r.requestContext as Partial<DestinationRecord['requestContext']>).requestId;
      if (payloads.length === 1) throw new Error('first attempt fails');
    };
    const given = record('r');
    const result = await deliverRecord(editing, given, options());
    expect(result).toMatchObject({ status: 'Succeeded', attempts: 2 });
    expect(payloads).toEqual(['ok', 'ok']);
    expect(given).toEqual(record('r')); // the caller's record is untouched too
  });

  it('keeps an own __proto__ key a key', async () => {
    const given = { ...record('r'), extra: JSON.parse('{"__proto__":{"x":1}}') } as DestinationRecord;
    let extra: object | undefined;
    const keep = (r: DestinationRecord) => {
      extra = (r as unknown as { extra: object }).extra;
    };
    await deliverRecord(keep, given, options());
    expect(Object.keys(extra ?? {})).toEqual(['__proto__']);
    expect(Object.getPrototypeOf(extra)).toBe(Object.prototype);
  });
});

describe('a record JSON cannot hold', () => {
  const bigint = { ...record('r'), responsePayload: 10n } as unknown as DestinationRecord;
  const cyclic = record('r') as DestinationRecord & { self?: unknown };
  cyclic.self = cyclic;
  const client = { invokeFunctionWithOptions: async () => ({ statusCode: 202 }) };

  it.each([
    ['http', () => httpDestination('http://127.0.0.1:65535/never', { retries: 3 })],
    ['jsonl', () => jsonlDestination(join(tempRoot(), 'never.jsonl'), { retries: 3 })],
    ['fc-function', () => fcFunctionDestination('dest', client, { retries: 3 })],
  ])('%s: fails at once with DestinationInvalid, not retried', async (_name, make) => {
    for (const given of [bigint, cyclic]) {
      const result = await deliverRecord(make(), given, options());
      expect(result).toMatchObject({ status: 'Failed', attempts: 1 });
      expect(result.destinations[0]?.error).toMatch(/^DestinationInvalid: The record cannot be written as JSON: /);
    }
  });

  it('other TypeErrors stay retryable', async () => {
    const result = await deliverRecord(
      functionDestination(
        () => {
          throw new TypeError('flaky');
        },
        { retries: 2 },
      ),
      record('r'),
      options(),
    );
    expect(result).toMatchObject({ status: 'Failed', attempts: 3 });
  });
});
