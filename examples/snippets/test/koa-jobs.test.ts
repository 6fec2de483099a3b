import { Readable } from 'node:stream';
import { type DestinationRecord, type Fc2Response, fcHttpEvent, silentLogger } from '@fc-async/core';
import { createHandler, type FcHandler } from '@fc-async/koa';
import { SpanKind } from '@opentelemetry/api';
import { InMemorySpanExporter, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base';
import { NodeTracerProvider } from '@opentelemetry/sdk-trace-node';
import { afterAll, afterEach, expect, it } from 'vitest';
import { jobsApp } from '../src/koa-jobs.js';

// Spans in memory: SimpleSpanProcessor hands each span over as it ends. register() makes the
// provider global, with the async-local context manager and the W3C propagator.
const exporter = new InMemorySpanExporter();
const provider = new NodeTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });
provider.register();
afterAll(() => provider.shutdown());

let handler: FcHandler | undefined;
afterEach(async () => {
  await handler?.close({ timeoutMs: 1000 });
  exporter.reset();
});

/** A call as FC makes it: the request, and FC's `context` (its request id). */
type Call = { method: string; url: string; headers?: Record<string, string>; requestId: string };
type Reply = { statusCode: number; headers: Record<string, string>; body: string };

/** FC 3.0: `handler(event, context)` with the event FC builds, and its result. */
async function fc3(h: FcHandler, { method, url, headers, requestId }: Call): Promise<Reply> {
  const { statusCode, headers: out, body } = await h(fcHttpEvent({ method, url, headers }), { requestId });
  return { statusCode, headers: out, body };
}

/** FC 2.0: `handler(req, resp, context)`, `req` a stream with FC's fields; it resolves once `resp.send` ran. */
async function fc2(h: FcHandler, { method, url, headers = {}, requestId }: Call): Promise<Reply> {
  const req = Object.assign(Readable.from([]), { method, path: url, queries: {}, headers, clientIP: '127.0.0.1' });
  const reply: Reply = { statusCode: 200, headers: {}, body: '' };
  const resp: Fc2Response = {
    setStatusCode(code) {
      reply.statusCode = code;
    },
    setHeader(name, value) {
      reply.headers[name.toLowerCase()] = value;
    },
    send(data) {
      reply.body = String(data);
    },
  };
  await h(req, resp, { requestId });
  return reply;
}

const signatures = [
  ['FC 3.0', fc3],
  ['FC 2.0', fc2],
] as const;

it.each(signatures)('%s: the same app, the same answer, ctx.fc says Sync', async (_signature, call) => {
  handler = createHandler(
    jobsApp(() => true),
    { env: {}, logger: silentLogger },
  );
  const requestId = '1-64f6d6e7-e01edb1cce58240ed59b59d9';
  const reply = await call(handler, { method: 'GET', url: '/whoami', requestId });
  expect([reply.statusCode, JSON.parse(reply.body)]).toEqual([
    200,
    { type: 'Sync', requestId, attempt: 0, path: '/whoami' },
  ]);
});

it.each(signatures)('%s: an async job is retried, each attempt a span of its request id', async (_signature, call) => {
  const records: DestinationRecord[] = [];
  handler = createHandler(
    jobsApp((attempt) => attempt > 0),
    {
      env: {},
      logger: silentLogger,
      async: { backoff: { baseMs: 1, maxMs: 2 } },
      destinations: { onSuccess: (r) => void records.push(r) },
    },
  );
  const headers = { 'x-fc-invocation-type': 'Async', 'x-fc-async-task-id': 'job_1', authorization: 'Bearer tok-123' };
  const requestId = '1-64f6d6e7-5b6c7d8e9f0a1b2c3d4e5f60';
  const accepted = await call(handler, { method: 'POST', url: '/jobs', headers, requestId });
  expect([accepted.statusCode, accepted.headers['x-fc-request-id']]).toEqual([202, requestId]);
  await handler.drain(); // the attempts ran and onSuccess has the record
  expect(records.map((r) => [r.requestContext.requestId, JSON.parse(r.responsePayload)])).toEqual([
    [requestId, { taskId: 'job_1', attempt: 1 }],
  ]);

  // Every span carries the request id; each attempt is a CONSUMER child of the accept's PRODUCER.
  const spans = exporter.getFinishedSpans().filter((s) => s.attributes['faas.invocation_id'] === requestId);
  const send = spans.find((s) => s.kind === SpanKind.PRODUCER)!.spanContext().spanId;
  const attempts = spans.filter((s) => s.kind === SpanKind.CONSUMER);
  expect(
    attempts.map((s) => [s.attributes['fc_async.attempt'], s.attributes['error.type'], s.parentSpanContext?.spanId]),
  ).toEqual([
    [0, 'HTTP503', send],
    [1, undefined, send],
  ]);
  // The caller's credentials reach no span, task record nor destination record.
  const kept = JSON.stringify([spans.map((s) => s.attributes), records, await handler.tasks.get('job_1')]);
  expect(kept).not.toContain('tok-123');
});
