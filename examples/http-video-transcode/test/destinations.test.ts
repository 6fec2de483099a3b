import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { DestinationRecord } from '@fc-async/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createDestinationHandler, parseDestinationRecord } from '../functions/destination.js';
import { memoryLogger, readRecords, tempDir } from './helpers.js';

let dir: string;

beforeAll(async () => {
  dir = await tempDir('destinations');
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

const record = (requestId: string, condition = 'UnhandledInvocationError'): DestinationRecord =>
  ({
    timestamp: 1_700_000_000_000,
    requestContext: {
      requestId,
      functionArn: 'acs:fc:cn-hangzhou:123:functions/transcode',
      condition,
      approximateInvokeCount: 3,
    },
    requestPayload: '{"method":"POST","url":"/"}',
    responseContext: { statusCode: 404, functionError: condition },
    responsePayload: '{"errorMessage":"The function answered HTTP 404","errorType":"HTTP404"}',
  }) as DestinationRecord;

describe('the destination event functions', () => {
  it('keep each record they receive (Buffer, string or object) as a JSON line, and log it', async () => {
    const logger = memoryLogger();
    const handler = createDestinationHandler('dest-fail', { dir, logger });
    const kept = await handler(Buffer.from(JSON.stringify(record('1-a'))), {});
    expect(kept).toEqual({
      file: join(dir, 'dest-fail.jsonl'),
      requestId: '1-a',
      condition: 'UnhandledInvocationError',
    });
    await handler(JSON.stringify(record('1-b')));
    await handler(record('1-c', ''));
    expect(await readRecords(join(dir, 'dest-fail.jsonl'))).toEqual([record('1-a'), record('1-b'), record('1-c', '')]);
    expect(logger.entries[0]).toEqual({
      level: 'info',
      message: 'destination record',
      fields: {
        destination: 'dest-fail',
        requestId: '1-a',
        condition: 'UnhandledInvocationError',
        approximateInvokeCount: 3,
        statusCode: 404,
      },
    });
  });

  it('write to DEST_RECORDS_DIR when no folder is given', async () => {
    const previous = process.env.DEST_RECORDS_DIR;
    process.env.DEST_RECORDS_DIR = join(dir, 'from-env');
    try {
      const handler = createDestinationHandler('dest-succ', { logger: memoryLogger() });
      expect((await handler(record('1-d', ''))).file).toBe(join(dir, 'from-env', 'dest-succ.jsonl'));
    } finally {
      if (previous === undefined) delete process.env.DEST_RECORDS_DIR;
      else process.env.DEST_RECORDS_DIR = previous;
    }
  });

  it.each([
    ['not JSON', Buffer.from('{oops'), 'The event is not JSON'],
    ['not a record', Buffer.from('{"hello":1}'), /not a destination record/],
    ['null', null, /not a destination record/],
  ])('refuse an event that is %s with 400 InvalidRecord', (_name, event, message) => {
    expect(() => parseDestinationRecord(event)).toThrow(message);
    expect(() => parseDestinationRecord(event)).toThrow(
      expect.objectContaining({ code: 'InvalidRecord', statusCode: 400 }),
    );
  });

  it('refuse a name that is not a function name', () => {
    expect(() => createDestinationHandler('../x')).toThrow('Expected `name` to be a function name, got `../x`');
  });
});
