import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base';
import { describe, expect, it } from 'vitest';
import { createFcHandler, createRedactor, type DestinationRecord, maskUrl } from '../src/index.js';
import { asyncEvent, event, memoryLogger } from './helpers.js';

const ok = (_req: unknown, res: { end(body: string): void }) => res.end('ok');

describe('redactHeaders', () => {
  it.each([
    ['X-Api-Key', 'Expected `redactHeaders` to be an array of header names, got `string`'],
    [null, 'Expected `redactHeaders` to be an array of header names, got `object`'],
    [['x-ok', 42], 'Expected `redactHeaders[1]` to be a header name, got `number`'],
    [[' X-Api-Key'], 'Expected `redactHeaders[0]` to be a header name, got " X-Api-Key"'],
    [['x-api-key:'], 'Expected `redactHeaders[0]` to be a header name, got "x-api-key:"'],
    [[''], 'Expected `redactHeaders[0]` to be a header name, got ""'],
  ])('%j fails at createHandler time with a precise message', (redactHeaders, message) => {
    expect(() => createFcHandler(ok, { redactHeaders: redactHeaders as string[], env: {} })).toThrow(
      new TypeError(message),
    );
    expect(() => createRedactor(redactHeaders as string[])).toThrow(message);
  });

  it('matches header names in any case, on either side', () => {
    const redact = createRedactor(['X-Api-KEY']);
    expect(redact({ 'x-API-key': 'k', COOKIE: 'c', Accept: '*/*' })).toEqual({ accept: '*/*' });
  });

  it('keeps FC credentials and redactHeaders out of platform mode destination records and logs', async () => {
    const records: DestinationRecord[] = [];
    const logger = memoryLogger();
    const handler = createFcHandler(
      (req, res) => {
        res.statusCode = req.url === '/fail' ? 500 : 200;
        res.end('done');
      },
      {
        env: { FC_FUNCTION_NAME: 'f', FC_REGION: 'cn-hangzhou', FC_ACCOUNT_ID: '1' },
        logger,
        redactHeaders: ['X-Tenant-Token'],
        async: { mode: 'platform', maxAsyncRetryAttempts: 0 },
        destinations: { onSuccess: (r) => void records.push(r), onFailure: (r) => void records.push(r) },
      },
    );
    const headers = {
      'X-Fc-Retry-Count': '0',
      'X-FC-ACCESS-KEY-ID': 'LEAK-AKID',
      'x-fc-access-key-secret': 'LEAK-SK',
      'X-Fc-Security-Token': 'LEAK-STS',
      AUTHORIZATION: 'Bearer LEAK-BEARER',
      'Proxy-Authorization': 'Basic LEAK-PROXY',
      Cookie: 'sid=LEAK-COOKIE',
      // The STS token an Alibaba Cloud (ACS3) signature is sent with, and a Set-Cookie a client echoes.
      'X-Acs-Security-Token': 'LEAK-ACS-STS',
      'Set-Cookie': 'sid=LEAK-SETCOOKIE',
      'x-TENANT-token': 'LEAK-TENANT',
      'X-Visible': 'kept',
    };
    for (const path of ['/ok', '/fail']) {
      const taskHeaders = { ...headers, 'X-Fc-Async-Task-Id': `job${path.replace('/', '_')}` };
      // The failed attempt rejects, for FC to record the failure.
      await handler(event({ method: 'POST', path, headers: taskHeaders, body: '{}' }), { requestId: 'r' }).catch(
        (error: Error) => expect(error.message).toMatch(/HTTP 500/),
      );
    }
    expect(records.map((r) => r.requestContext.condition)).toEqual(['', 'UnhandledInvocationError']);
    const text = JSON.stringify({ records, logs: logger.entries });
    expect(JSON.parse(records[0]?.requestPayload ?? '{}').headers).toMatchObject({ 'x-visible': 'kept' });
    expect(text.match(/LEAK-\w+/g)).toBeNull();
  });
});

describe('an error the bridge raises for a bad header list', () => {
  it('names no header value: not in the task, its destination record, the log nor the span', async () => {
    const records: DestinationRecord[] = [];
    const logger = memoryLogger();
    const exporter = new InMemorySpanExporter();
    const tracerProvider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });
    const handler = createFcHandler(
      (_req, res) => {
        // An odd-length flat list: the cookie set, then a name without its value.
        res.writeHead(200, ['Set-Cookie', 'sid=LEAK-SETCOOKIE', 'X-Trace']);
        res.end('ok');
      },
      {
        env: {},
        logger,
        tracing: { tracerProvider },
        async: { maxAsyncRetryAttempts: 0 },
        destinations: { onFailure: (r) => void records.push(r) },
      },
    );
    try {
      await handler(asyncEvent({ method: 'POST', path: '/jobs', taskId: 'bad_head' }), { requestId: 'r' });
      await handler.drain();
      const task = await handler.tasks.get('bad_head');
      expect(task?.status).toBe('Failed');
      expect(records).toHaveLength(1);
      const spans = exporter.getFinishedSpans().map((s) => ({ status: s.status, events: s.events }));
      expect(spans.some((s) => s.events.some((e) => e.name === 'exception'))).toBe(true);
      const text = JSON.stringify({ task, records, logs: logger.entries, spans });
      expect(text.match(/LEAK-\w+/g)).toBeNull();
      // The error still says what is wrong.
      expect(task?.taskErrorMessage).toBe(
        "The argument 'headers' is invalid. Received a flat array of 3 entries: names and values go in pairs",
      );
    } finally {
      await handler.close();
    }
  });
});

describe('maskUrl', () => {
  it.each([
    ['redis://:hunter2@127.0.0.1:6379/0', 'redis://***@127.0.0.1:6379/0'],
    ['rediss://user:hunter2@cache.local', 'rediss://***@cache.local'],
    ['https://hooks.example.com/cb?token=hunter2#frag', 'https://hooks.example.com/cb?***#***'],
    // A fragment shown as one, so that a message naming it reads right.
    ['redis://:pw@h:6379/0#hunter2', 'redis://***@h:6379/0#***'],
    ['https://u:p@h/a?x=hunter2@b', 'https://***@h/a?***'],
    ['https://hooks.example.com/cb', 'https://hooks.example.com/cb'],
    ['https://hooks.example.com/', 'https://hooks.example.com/'],
    ['ftp://x', 'ftp://x'],
    // No URL: shown up to where a secret could start.
    ['redis//:hunter2@127.0.0.1:6379', 'redis//***'],
    ['redis//:hunter2?x@127.0.0.1:6379', 'redis//***'],
    ['redis://:hun#ter2@cache', 'redis***'],
    ['hooks.example.com/cb#hunter2', 'hooks.example.com/cb***'],
    ['hooks.example.com/cb?notify=ops@example.com&token=hunter2', 'hooks.example.com/cb***'],
    // Credentials masked, and nothing else, whoever wrote them how.
    ['redis://u:hunter2@h', 'redis://***@h'],
    ['redis://:hunter2@h', 'redis://***@h'],
    ['redis://:hun@ter2@h:6379/1', 'redis://***@h:6379/1'],
    ['redis://:hun%40ter2@h:6379/1', 'redis://***@h:6379/1'],
    // A URL refused for its port alone, with no credentials: all of it shown, to be put right.
    ['redis://h:99999', 'redis://h:99999'],
    ['rediss://cache.internal:65536/2', 'rediss://cache.internal:65536/2'],
    ['redis://[::1]:70000', 'redis://[::1]:70000'],
    ['https://hooks.example.com:99999/cb?token=hunter2#hunter2', 'https://hooks.example.com:99999/cb?***#***'],
    ['redis://h:99999#hunter2', 'redis://h:99999#***'],
    // ... but with credentials (or what could be some): where they end cannot be told, all masked.
    ['redis://:hunter2@h:99999', 'redis***'],
    ['redis://u:hunter2@h:99999', 'redis***'],
    ['redis://:hun@ter2@h:99999', 'redis***'],
    ['redis://:hun%40ter2@h:99999', 'redis***'],
    ['redis://h:99999?x=a@b&password=hunter2', 'redis***'],
    ['redis://:hunter2', 'redis***'],
    ['redis://u:hunter2', 'redis***'],
    ['redis://hun ter2', 'redis***'],
  ])('%s reads %s', (value, masked) => {
    expect(maskUrl(value)).toBe(masked);
    expect(maskUrl(value)).not.toContain('hunter2');
  });
});
