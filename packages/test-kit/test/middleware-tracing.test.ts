import { SpanKind } from '@opentelemetry/api';
import { afterAll, afterEach, beforeEach, describe, expect, it } from 'vitest';
import { installSdk, middlewareTargets, type Route, recordingLogger, until } from '../src/index.js';

const sdk = installSdk();
const tracer = () => sdk.provider.getTracer('app');
afterAll(() => sdk.uninstall());
beforeEach(() => sdk.exporter.reset());
const cleanup: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const c of cleanup.splice(0)) await c();
});

const routes: Route[] = [
  {
    method: 'GET',
    path: '/users/:id',
    handle: () =>
      tracer().startActiveSpan('load user', (span) => {
        span.end();
        return { body: { ok: true } };
      }),
  },
  {
    method: 'POST',
    path: '/jobs/:id',
    handle: () =>
      tracer().startActiveSpan('work', async (span) => {
        span.end();
        return { body: { done: true } };
      }),
  },
];
const spans = () => sdk.exporter.getFinishedSpans();

describe.each(middlewareTargets)('$name fcAsync with tracing', (target) => {
  async function serve(async: boolean) {
    const built = await target.build({
      fcAsync: {
        logger: recordingLogger(),
        env: {},
        async: async ? { mode: 'local' } : {},
        tracing: { tracerProvider: sdk.provider },
      },
      routes,
    });
    const server = await built.serve();
    cleanup.push(server.close);
    return { url: server.url, middleware: built.controls as NonNullable<typeof built.controls> };
  }

  it('a sync request gets one SERVER span named by its route; the app’s spans nest under it', async () => {
    const { url } = await serve(false);
    const response = await fetch(`${url}/users/7`, {
      headers: { 'x-fc-request-id': '1-64f6d6e7-aaaaaaaaaaaaaaaaaaaaaaaa' },
    });
    expect(response.status).toBe(200);
    const serverSpan = await until(() => spans().find((s) => s.kind === SpanKind.SERVER), 'the SERVER span');
    const user = spans().find((s) => s.name === 'load user');
    expect(spans().filter((s) => s.kind === SpanKind.SERVER)).toHaveLength(1);
    expect(serverSpan.name).toBe('GET /users/:id');
    expect(serverSpan.attributes['faas.invocation_id']).toBe('1-64f6d6e7-aaaaaaaaaaaaaaaaaaaaaaaa');
    expect(serverSpan.attributes['http.route']).toBe('/users/:id');
    expect(serverSpan.attributes['http.response.status_code']).toBe(200);
    expect(user?.parentSpanContext?.spanId).toBe(serverSpan.spanContext().spanId);
  });

  it('a local async request: 202 carries the accept span’s traceparent, the attempt is a CONSUMER span in that trace', async () => {
    const { url, middleware } = await serve(true);
    const response = await fetch(`${url}/jobs/9`, { method: 'POST', headers: { 'x-fc-invocation-type': 'Async' } });
    expect(response.status).toBe(202);
    const traceparent = response.headers.get('traceparent') ?? '';
    expect(traceparent).toMatch(/^00-[0-9a-f]{32}-[0-9a-f]{16}-0[01]$/);
    await middleware.drain();
    const traceId = traceparent.split('-')[1];
    const consumer = spans().find((s) => s.kind === SpanKind.CONSUMER);
    const work = spans().find((s) => s.name === 'work');
    expect(
      spans()
        .find((s) => s.kind === SpanKind.PRODUCER)
        ?.spanContext().traceId,
    ).toBe(traceId);
    expect(consumer?.spanContext().traceId).toBe(traceId);
    expect(consumer?.attributes['http.route']).toBe('/jobs/:id');
    expect(work?.parentSpanContext?.spanId).toBe(consumer?.spanContext().spanId);
  });
});
