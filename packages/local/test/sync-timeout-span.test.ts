import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { context, type DiagLogger, DiagLogLevel, diag, propagation, SpanStatusCode, trace } from '@opentelemetry/api';
import { W3CTraceContextPropagator } from '@opentelemetry/core';
import {
  BasicTracerProvider,
  InMemorySpanExporter,
  type ReadableSpan,
  SimpleSpanProcessor,
} from '@opentelemetry/sdk-trace-base';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { type Emulator, startEmulator } from '../src/index.js';
import { fixture, invokeSync, waitFor } from './helpers.js';

// A sync call the app does not answer within the function's timeout gets 504 FunctionTimeout, and
// its SERVER span ends then, with that error, as FC ends the invocation: not when (if ever) the
// app answers. What the app answers later goes nowhere and ends nothing.

const exporter = new InMemorySpanExporter();
const provider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });
/** What the SDK warned about: a span ended twice, or changed once ended. */
const sdkWarnings: string[] = [];
const record = (...args: unknown[]) => sdkWarnings.push(args.map(String).join(' '));
const diagLogger: DiagLogger = { error: record, warn: record, info: () => {}, debug: () => {}, verbose: () => {} };
const unhandled: unknown[] = [];
const onUnhandled = (reason: unknown) => unhandled.push(reason);
const cleanups: (() => Promise<unknown>)[] = [];

beforeAll(() => {
  propagation.setGlobalPropagator(new W3CTraceContextPropagator());
  trace.setGlobalTracerProvider(provider);
  diag.setLogger(diagLogger, DiagLogLevel.WARN);
  process.on('unhandledRejection', onUnhandled);
});

afterEach(async () => {
  for (const cleanup of cleanups.splice(0)) await cleanup();
});

afterAll(async () => {
  process.off('unhandledRejection', onUnhandled);
  await provider.shutdown();
  trace.disable();
  context.disable();
  propagation.disable();
  diag.disable();
});

interface LogLine {
  message: string;
  requestId?: string;
  code?: string;
  [key: string]: unknown;
}

/** The emulator serving `entry` as function `hang` with a 1 s timeout, its log lines kept. */
async function serve(entry: string): Promise<{ emulator: Emulator; log: LogLine[] }> {
  const log: LogLine[] = [];
  const emulator = await startEmulator({
    entry: fixture(entry),
    name: 'hang',
    timeoutSeconds: 1,
    port: 0,
    controlPort: 0,
    logFormat: 'json',
    output: (text) => {
      for (const line of text.trim().split('\n')) if (line) log.push(JSON.parse(line) as LogLine);
    },
  });
  cleanups.push(() => emulator.close({ timeoutMs: 1000 }));
  return { emulator, log };
}

const serverSpans = (requestId: string | null) =>
  exporter
    .getFinishedSpans()
    .filter((s: ReadableSpan) => s.kind === 1 && s.attributes['faas.invocation_id'] === requestId);

/** The one SERVER span of the invocation, once it has ended. */
async function endedSpan(requestId: string | null): Promise<ReadableSpan> {
  return waitFor(() => serverSpans(requestId)[0], 5000);
}

/** What a span records of the timeout: its status, its error attributes and the exception's message. */
function timeoutOf(span: ReadableSpan) {
  return {
    status: span.status.code,
    errorType: span.attributes['error.type'],
    httpStatus: span.attributes['http.response.status_code'],
    exception: span.events.find((e) => e.name === 'exception')?.attributes?.['exception.message'],
  };
}

const TIMED_OUT = {
  status: SpanStatusCode.ERROR,
  errorType: 'FunctionTimeout',
  httpStatus: 504,
  exception: 'hang did not answer within its timeout of 1 s',
};

/** Nothing touched the span after it ended, nothing rejected unhandled, and the span is still the only one. */
function expectUntouched(requestId: string | null, span: ReadableSpan) {
  expect(serverSpans(requestId)).toEqual([span]);
  expect(timeoutOf(span)).toEqual(TIMED_OUT);
  expect(sdkWarnings).toEqual([]);
  expect(unhandled).toEqual([]);
}

/** Releases the hung call of koa-release.mjs, and waits until the app has answered it. */
async function answerLate(emulator: Emulator) {
  const lateAnswers = async () =>
    ((await (await fetch(`${emulator.triggerUrl}/status`)).json()) as { lateAnswers: number }).lateAnswers;
  const before = await lateAnswers();
  expect(await (await fetch(`${emulator.triggerUrl}/release`)).json()).toEqual({ released: 1 });
  await waitFor(async () => ((await lateAnswers()) === before + 1 ? true : undefined), 5000);
}

/** A macrotask turn, for whatever a late answer would set off to run. */
const settle = () => new Promise((resolve) => setTimeout(resolve, 50));

describe('a sync call past the function timeout, through the HTTP trigger', () => {
  it('answers 504 with the span ended as FunctionTimeout; the late answer ends nothing and goes nowhere', async () => {
    const { emulator, log } = await serve('koa-release.mjs');
    const res = await fetch(`${emulator.triggerUrl}/hang`, { signal: AbortSignal.timeout(15_000) });
    expect(res.status).toBe(504);
    const body = (await res.json()) as { code: string; message: string };
    expect(body).toEqual({ code: 'FunctionTimeout', message: TIMED_OUT.exception });
    const requestId = res.headers.get('x-fc-request-id');
    const span = await endedSpan(requestId);
    expect(timeoutOf(span)).toEqual(TIMED_OUT);
    expect(log.filter((l) => l.message === 'invocation given up')).toMatchObject([
      { requestId, code: 'FunctionTimeout', message: 'invocation given up' },
    ]);

    // The app answers now: nothing reaches the span or the client, who has its 504.
    await answerLate(emulator);
    await settle();
    expectUntouched(requestId, span);
    expect(log.filter((l) => l.level === 'error' && l.requestId === requestId)).toHaveLength(1);

    const next = await fetch(`${emulator.triggerUrl}/ok`);
    expect({ status: next.status, body: await next.json() }).toEqual({ status: 200, body: { ok: true } });
  }, 20_000);

  it('an app that fails after its timeout: logged, never thrown, the span left as it ended', async () => {
    const { emulator } = await serve('late-reject-handler.mjs');
    const res = await fetch(`${emulator.triggerUrl}/hang`, { signal: AbortSignal.timeout(15_000) });
    expect(res.status).toBe(504);
    const requestId = res.headers.get('x-fc-request-id');
    const span = await endedSpan(requestId);
    expect(timeoutOf(span)).toEqual(TIMED_OUT);

    expect(await (await fetch(`${emulator.triggerUrl}/release`)).json()).toEqual({ released: 1 });
    const status = await waitFor(async () => {
      const got = (await (await fetch(`${emulator.triggerUrl}/status`)).json()) as {
        lateFailures: number;
        logged: { level: string; message: string; code?: string; error?: string }[];
      };
      return got.logged.length === 2 ? got : undefined;
    }, 5000);
    expect(status).toEqual({
      lateFailures: 1,
      logged: [
        { level: 'error', message: 'invocation given up', code: 'FunctionTimeout' },
        {
          level: 'error',
          message: 'invocation failed after it was given up',
          error: 'the app failed after its timeout',
        },
      ],
    });
    await settle();
    expectUntouched(requestId, span);
    expect((await fetch(`${emulator.triggerUrl}/ok`)).status).toBe(200);
  }, 20_000);
});

describe('a sync InvokeFunction past the function timeout', () => {
  it('answers the timeout as a function error, with the span ended as FunctionTimeout', async () => {
    const { emulator } = await serve('koa-release.mjs');
    const res = await invokeSync(emulator.controlUrl, 'hang', '/hang');
    expect(res.status).toBe(200);
    expect(res.headers.get('x-fc-http-status')).toBe('504');
    expect(res.headers.get('x-fc-error-type')).toBe('UnhandledInvocationError');
    expect(await res.json()).toEqual({ code: 'FunctionTimeout', message: TIMED_OUT.exception });
    const requestId = res.headers.get('x-fc-request-id');
    const span = await endedSpan(requestId);
    expect(timeoutOf(span)).toEqual(TIMED_OUT);

    await answerLate(emulator);
    await settle();
    expectUntouched(requestId, span);
  }, 20_000);
});

const SILENT_SERVER = `
import { createServer } from 'node:http';
createServer((req, res) => {
  req.resume();
  if (req.url.endsWith('/silent')) {
    res.on('close', () => console.log('silent: the request was closed'));
    return;
  }
  res.end('ok');
}).listen(Number(process.env.FC_CUSTOM_LISTEN_PORT), '127.0.0.1');
`;

describe('a custom runtime that does not answer a sync call within the timeout', () => {
  it('its request is closed at the timeout, and the span ends with the error the caller got, reported once', async () => {
    const root = mkdtempSync(join(tmpdir(), 'fc-async-sync-timeout-span-'));
    cleanups.push(async () => rmSync(root, { recursive: true, force: true }));
    writeFileSync(join(root, 'server.mjs'), SILENT_SERVER);
    writeFileSync(
      join(root, 's.yaml'),
      `edition: 3.0.0
name: quiet
resources:
  hang:
    component: fc3
    props:
      functionName: hang
      region: cn-shanghai
      runtime: custom.debian10
      timeout: 1
      code: ./
      customRuntimeConfig: { command: [node, ./server.mjs] }
      triggers: [{ triggerName: http, triggerType: http, triggerConfig: { authType: anonymous, methods: [GET] } }]
`,
    );
    const log: LogLine[] = [];
    const emulator = await startEmulator({
      config: join(root, 's.yaml'),
      port: 0,
      controlPort: 0,
      logFormat: 'json',
      output: (text) => {
        for (const line of text.trim().split('\n')) if (line) log.push(JSON.parse(line) as LogLine);
      },
    });
    cleanups.unshift(() => emulator.close({ timeoutMs: 1000 }));

    const res = await fetch(`${emulator.triggerUrl}/hang/silent`, { signal: AbortSignal.timeout(15_000) });
    expect(res.status).toBe(504);
    expect(await res.json()).toEqual({ code: 'FunctionTimeout', message: TIMED_OUT.exception });
    const requestId = res.headers.get('x-fc-request-id');
    const span = await endedSpan(requestId);
    expect(timeoutOf(span)).toEqual(TIMED_OUT);
    await waitFor(() => log.find((l) => String(l.message).endsWith('silent: the request was closed')), 5000);
    await settle();
    expectUntouched(requestId, span);
    // The proxy's own failure, once its request was closed, is the timeout itself: nothing more is logged.
    expect(log.filter((l) => l.level === 'error').map((l) => l.message)).toEqual(['invocation given up']);
    expect((await fetch(`${emulator.triggerUrl}/hang/ok`)).status).toBe(200);
  }, 30_000);
});
