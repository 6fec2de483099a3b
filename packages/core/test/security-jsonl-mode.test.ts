import { mkdtempSync, rmSync, statSync } from 'node:fs';
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
