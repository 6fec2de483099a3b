import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { type DestinationRecord, jsonlDestination } from '../src/index.js';

const dir = mkdtempSync(join(tmpdir(), 'fc-async-jsonl-mode-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const record: DestinationRecord = {
  timestamp: 1,
  requestContext: {
    requestId: '1-x',
    functionArn: 'acs:fc:cn-hangzhou:1:functions/f',
    condition: '',
    approximateInvokeCount: 1,
  },
  requestPayload: '{"method":"POST","url":"/","headers":{},"body":"card=4111111111111111","isBase64Encoded":false}',
  responseContext: { statusCode: 200, functionError: '' },
  responsePayload: '',
};

describe('jsonlDestination file mode', () => {
  it('creates the file readable by its owner only: records hold request bodies', async () => {
    const file = join(dir, 'records', 'succeeded.jsonl');
    await jsonlDestination(file)(record);
    expect(statSync(file).mode & 0o777).toBe(0o600);
  });
});

// A jsonlDestination pointed at a FIFO that nobody reads (a named pipe left behind by a log
// shipper that is not running) fails that delivery at once, which deliverRecord retries and
// reports, instead of blocking one of libuv's four threads forever (every later file operation
// of the process would queue behind it).
describe('jsonlDestination on a FIFO without a reader', () => {
  it('fails the delivery with ENXIO instead of hanging, and a regular file still gets its line', async () => {
    const fifo = join(dir, 'pipe.jsonl');
    execFileSync('mkfifo', [fifo]);
    const outcome = await Promise.race([
      Promise.resolve(jsonlDestination(fifo)(record)).then(
        () => 'delivered',
        (error: NodeJS.ErrnoException) => error.code,
      ),
      new Promise((resolve) => setTimeout(() => resolve('still blocked after 5 s'), 5000).unref()),
    ]);
    expect(outcome).toBe('ENXIO');
    // The thread pool is free: a file append right after completes.
    const file = join(dir, 'plain.jsonl');
    await jsonlDestination(file)(record);
    expect(JSON.parse(readFileSync(file, 'utf8'))).toEqual(record);
  });
});
