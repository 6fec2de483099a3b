import { SpanKind, SpanStatusCode } from '@opentelemetry/api';
import { afterAll, afterEach, beforeEach, describe, expect, it } from 'vitest';
import { installSdk, middlewareTargets, type Route, recordingLogger, until } from '../src/index.js';

const sdk = installSdk();
afterAll(() => sdk.uninstall());
beforeEach(() => sdk.exporter.reset());
const cleanup: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const c of cleanup.splice(0)) await c();
});

let entered: () => void = () => {};
const routes: Route[] = [
  {
    method: 'GET',
    path: '/slow/:id',
    // Never answers: the client gives up first.
    handle: () =>
      new Promise(() => {
        entered();
      }),
  },
];

describe.each(middlewareTargets)('$name fcAsync: a sync request the client gives up on', (target) => {
  it('ends its SERVER span: ERROR ConnectionClosed, named by its route, with no status it never sent', async () => {
    const built = await target.build({
      fcAsync: { logger: recordingLogger(), env: {}, tracing: { tracerProvider: sdk.provider } },
      routes,
    });
    const server = await built.serve();
    cleanup.push(server.close);
    const inRoute = new Promise<void>((resolve) => {
      entered = resolve;
    });
    const abort = new AbortController();
    const call = fetch(`${server.url}/slow/1`, { signal: abort.signal }).catch((error: Error) => error.name);
    await inRoute;
    abort.abort();
    expect(await call).toBe('AbortError');
    const span = await until(() => sdk.exporter.getFinishedSpans().find((s) => s.kind === SpanKind.SERVER), 'the span');
    expect(span.name).toBe('GET /slow/:id');
    expect(span.status.code).toBe(SpanStatusCode.ERROR);
    expect(span.attributes['error.type']).toBe('ConnectionClosed');
    expect(span.attributes).not.toHaveProperty('http.response.status_code');
  });
});
