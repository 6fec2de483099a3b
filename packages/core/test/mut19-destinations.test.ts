// Behaviour of destinations that no test held before the session-19 mutation audit: each test
// below failed on a hand-made mutant of packages/core/src/destinations that the suite let pass.
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it, vi } from 'vitest';
import {
  DestinationError,
  deliverRecord,
  type FcInvokeClient,
  fcFunctionDestination,
  httpDestination,
  jsonlDestination,
  signDestinationPayload,
} from '../src/destinations/index.js';
import type { DestinationRecord } from '../src/fc-types.js';
import { silentLogger } from '../src/logger.js';

const record: DestinationRecord = {
  timestamp: 1_700_000_000_123,
  requestContext: {
    requestId: '1-mut19-destinations',
    functionArn: 'acs:fc:cn-hangzhou:123:functions/render',
    condition: '',
    approximateInvokeCount: 1,
  },
  requestPayload: '{"method":"POST","url":"/render","headers":{},"body":"","isBase64Encoded":false}',
  responseContext: { statusCode: 200, functionError: '' },
  responsePayload: '{"ok":true}',
};

/** No waiting between retries. */
const quick = { logger: silentLogger, sleep: async () => {} };

const servers: Server[] = [];
afterEach(async () => {
  vi.restoreAllMocks();
  for (const server of servers.splice(0)) {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  }
});

const dir = mkdtempSync(join(tmpdir(), 'fc-async-mut19-dest-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

async function listen(server: Server): Promise<number> {
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return (server.address() as AddressInfo).port;
}

describe('signatures', () => {
  it('signs with the current unix second, rounded down', () => {
    vi.spyOn(Date, 'now').mockReturnValue(1_700_000_000_999);
    expect(signDestinationPayload('{}', 'whsec').startsWith('t=1700000000,v1=')).toBe(true);
  });
});

describe('httpDestination', () => {
  it('refuses a URL holding a password without a user name, without quoting it', () => {
    let error: unknown;
    try {
      httpDestination('https://:pw-sentinel@hooks.example.com/fc');
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(TypeError);
    expect((error as Error).message).toMatch(/without credentials/);
    expect((error as Error).message).not.toContain('pw-sentinel');
  });

  it('cancels the post under way when the delivery is aborted (close()): the receiver sees the connection end', async () => {
    let received!: () => void;
    const gotRequest = new Promise<void>((resolve) => {
      received = resolve;
    });
    let closed!: () => void;
    const connectionClosed = new Promise<string>((resolve) => {
      closed = () => resolve('closed');
    });
    // Never answers: only an abort of the post ends the request.
    const port = await listen(
      createServer((req, res) => {
        res.on('close', () => closed());
        req.resume();
        received();
      }),
    );
    const controller = new AbortController();
    const delivering = deliverRecord(httpDestination(`http://127.0.0.1:${port}/hook`, { timeoutMs: 60_000 }), record, {
      ...quick,
      signal: controller.signal,
    });
    await gotRequest;
    controller.abort();
    const result = await delivering;
    expect(result.status).toBe('Failed');
    expect(result.errors[0]).toMatch(/DestinationAborted/);
    // Bounded so that a post left open fails the test instead of holding the connection for 60 s.
    const outcome = await Promise.race([
      connectionClosed,
      new Promise<string>((resolve) => setTimeout(() => resolve('still open'), 5000).unref()),
    ]);
    expect(outcome).toBe('closed');
  });
  it('names the network error by its code: a receiver that is down', async () => {
    const server = createServer();
    const port = await listen(server);
    servers.splice(servers.indexOf(server), 1);
    await new Promise((resolve) => server.close(resolve));
    const result = await deliverRecord(httpDestination(`http://127.0.0.1:${port}/hook`, { retries: 0 }), record, quick);
    expect(result.errors).toEqual([
      `http:http://127.0.0.1:${port}: DestinationNetworkError: Network error posting to http://127.0.0.1:${port}: ECONNREFUSED`,
    ]);
  });
});

describe('deliverRecord', () => {
  it('cuts a long error message to 500 characters in the result and the log', async () => {
    const entries: Record<string, unknown>[] = [];
    const logger = {
      ...silentLogger,
      error: (_m: string, fields?: Record<string, unknown>) => entries.push(fields ?? {}),
    };
    const long = 'x'.repeat(5000);
    const result = await deliverRecord(
      Object.assign(
        () => {
          throw new Error(long);
        },
        { maxRetries: 0, label: 'long' },
      ),
      record,
      { ...quick, logger },
    );
    const error = result.destinations[0]?.error ?? '';
    expect(error).toBe(`Error: ${'x'.repeat(497)}...`);
    expect(entries[0]?.error).toBe(`${'x'.repeat(497)}...`);
  });

  it("reports the abort reason a caller gives as a DestinationError (platform mode's bound), not a bare abort", async () => {
    const controller = new AbortController();
    const result = await deliverRecord(
      (_record, context) =>
        new Promise((_resolve, reject) => {
          context?.signal.addEventListener('abort', () => reject(new Error('stopped')));
          controller.abort(
            new DestinationError('DestinationTimeout', 'Delivery ran past the function timeout', { retryable: false }),
          );
        }),
      record,
      { ...quick, signal: controller.signal },
    );
    expect(result).toMatchObject({ status: 'Failed', attempts: 1 });
    expect(result.destinations[0]?.error).toBe('DestinationTimeout: Delivery ran past the function timeout');
  });
});

describe('jsonlDestination', () => {
  it('creates a new file readable by its owner only in a folder that already exists', async () => {
    const file = join(dir, 'existing-folder.jsonl');
    await jsonlDestination(file)(record);
    expect(statSync(file).mode & 0o777).toBe(0o600);
  });
});

describe('fcFunctionDestination', () => {
  const credentials = { accessKeyId: 'test-ak', accessKeySecret: 'test-sk' };

  it('sends the STS security token of the config with each call', async () => {
    const headers: IncomingHttpHeaders[] = [];
    const port = await listen(
      createServer((req, res) => {
        headers.push(req.headers);
        req.resume();
        req.on('end', () => res.writeHead(202, { 'x-fc-request-id': 'r-1' }).end());
      }),
    );
    const destination = fcFunctionDestination('dest', {
      ...credentials,
      securityToken: 'sts-token-value',
      endpoint: `127.0.0.1:${port}`,
      protocol: 'http',
    });
    await destination(record);
    expect(headers[0]?.['x-acs-security-token']).toBe('sts-token-value');
  });

  it('gives the SDK timeoutMs as its read timeout and at most 5 s to connect', async () => {
    const runtimes: unknown[] = [];
    const client: FcInvokeClient = {
      async invokeFunctionWithOptions(_name, _request, _headers, runtime) {
        runtimes.push(runtime);
        return { statusCode: 202 };
      },
    };
    await fcFunctionDestination('dest', client, { timeoutMs: 20_000 })(record);
    await fcFunctionDestination('dest', client, { timeoutMs: 2000 })(record);
    expect(runtimes).toEqual([
      { readTimeout: 20_000, connectTimeout: 5000 },
      { readTimeout: 2000, connectTimeout: 2000 },
    ]);
  });

  it('fails a call whose answer carries no status, rather than counting it delivered', async () => {
    const client: FcInvokeClient = { invokeFunctionWithOptions: async () => ({}) };
    const result = await deliverRecord(fcFunctionDestination('dest', client, { retries: 0 }), record, quick);
    expect(result.status).toBe('Failed');
    expect(result.errors[0]).toMatch(/DestinationInvokeError: InvokeFunction fc:dest answered HTTP 0/);
  });

  it("retries an error answer that is not FC's JSON (the SDK's SyntaxError: a proxy's page)", async () => {
    let calls = 0;
    const client: FcInvokeClient = {
      async invokeFunctionWithOptions() {
        calls++;
        if (calls === 1) throw new SyntaxError('Unexpected token < in JSON at position 0');
        return { statusCode: 202 };
      },
    };
    const result = await deliverRecord(fcFunctionDestination('dest', client, { retries: 1 }), record, quick);
    expect(result).toMatchObject({ status: 'Succeeded', attempts: 2 });
  });
});
