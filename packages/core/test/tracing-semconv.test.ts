/**
 * fc-async's spans against the OpenTelemetry semantic conventions (HTTP server, FaaS, messaging)
 * and against what an operator counts on: every span started is ended once, on every path.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { SpanKind, SpanStatusCode } from '@opentelemetry/api';
import {
  BasicTracerProvider,
  InMemorySpanExporter,
  type ReadableSpan,
  SimpleSpanProcessor,
  type Span,
  type SpanProcessor,
} from '@opentelemetry/sdk-trace-base';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createFcHandler, createFcRuntime, type FcHandlerOptions, getInvocation } from '../src/index.js';
import { asyncEvent, context, deferred, event, memoryLogger } from './helpers.js';
import { createSdk, only, type Sdk } from './tracing-setup.js';

type Listener = (req: IncomingMessage, res: ServerResponse) => unknown;

/** Counts starts and ends per span: what is still open, and any span ended twice. */
class Ledger implements SpanProcessor {
  readonly open = new Map<string, string>();
  readonly ends = new Map<string, number>();
  onStart(span: Span): void {
    this.open.set(span.spanContext().spanId, span.name);
  }
  onEnd(span: ReadableSpan): void {
    const id = span.spanContext().spanId;
    this.open.delete(id);
    this.ends.set(id, (this.ends.get(id) ?? 0) + 1);
  }
  endedTwice(): number {
    return [...this.ends.values()].filter((n) => n > 1).length;
  }
  forceFlush(): Promise<void> {
    return Promise.resolve();
  }
  shutdown(): Promise<void> {
    return Promise.resolve();
  }
}

const fcContext = { ...context, function: { name: 'transcode' } };
const ok: Listener = (_req, res) => res.end('ok');

let sdk: Sdk;
let ledger: Ledger;
let exporter: InMemorySpanExporter;
let tracerProvider: BasicTracerProvider;
const servers: Server[] = [];

beforeEach(() => {
  // The global SDK gives the context manager and W3C propagation; spans go to a provider with a ledger.
  sdk = createSdk();
  ledger = new Ledger();
  exporter = new InMemorySpanExporter();
  tracerProvider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter), ledger] });
});
afterEach(async () => {
  for (const server of servers.splice(0)) {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  }
  await tracerProvider.shutdown();
  await sdk.uninstall();
});

const spans = () => exporter.getFinishedSpans();

function handlerFor(app: Listener, extra: Partial<FcHandlerOptions> = {}) {
  return createFcHandler(app, {
    logger: memoryLogger(),
    env: {},
    tracing: { tracerProvider },
    ...extra,
    async: { mode: 'local', backoff: { baseMs: 1, maxMs: 2 }, stopGraceMs: 10, ...extra.async },
  });
}

describe('HTTP server and FaaS attributes', () => {
  it('url.scheme (required on HTTP server spans): the first X-Forwarded-Proto entry, else http; attempts too', async () => {
    const handler = handlerFor(ok);
    await handler(event({ path: '/a', headers: { 'X-Forwarded-Proto': 'HTTPS, http' } }), fcContext);
    await handler(event({ path: '/b' }), fcContext);
    await handler(event({ path: '/c', headers: { 'X-Forwarded-Proto': 'gopher' } }), fcContext);
    await handler(asyncEvent({ method: 'POST', taskId: 'tls', headers: { 'X-Forwarded-Proto': 'https' } }), fcContext);
    await handler.drain();
    const scheme = (name: string, path?: string) =>
      spans().find((s) => s.name === name && (path === undefined || s.attributes['url.path'] === path))?.attributes[
        'url.scheme'
      ];
    expect(scheme('GET', '/a')).toBe('https');
    expect(scheme('GET', '/b')).toBe('http');
    expect(scheme('GET', '/c')).toBe('http');
    expect(scheme('POST')).toBe('https');
    expect(scheme('process transcode')).toBe('https');
  });

  it('messaging.operation.name (required on messaging spans) on PRODUCER and CONSUMER; attempts are faas.trigger pubsub', async () => {
    const handler = handlerFor(ok);
    await handler(asyncEvent({ method: 'POST', taskId: 'ran' }), fcContext);
    await handler(asyncEvent({ taskId: 'never', delay: '100' }), fcContext);
    await handler.tasks.stop('never');
    await handler.drain();
    const producers = spans().filter((s) => s.kind === SpanKind.PRODUCER);
    const consumers = spans().filter((s) => s.kind === SpanKind.CONSUMER);
    expect(producers.map((s) => s.attributes['messaging.operation.name'])).toEqual(['send', 'send']);
    const ran = consumers.find((s) => s.attributes['fc_async.task_id'] === 'ran');
    const never = consumers.find((s) => s.attributes['fc_async.task_id'] === 'never');
    expect(ran?.attributes).toMatchObject({
      'messaging.operation.name': 'process',
      'messaging.operation.type': 'process',
      'faas.trigger': 'pubsub',
    });
    // The task stopped before it ran: the queue's CONSUMER span, but no function ran.
    expect(never?.attributes['messaging.operation.name']).toBe('process');
    expect(never?.attributes).not.toHaveProperty('faas.trigger');
    expect(only(spans(), 'POST').attributes['faas.trigger']).toBe('http');
    expect(spans().find((s) => s.name === 'GET')?.attributes['faas.trigger']).toBe('http');
  });
});

describe('every span started is ended exactly once', () => {
  it('success, throw, 500, timeout, stop while running, stop while waiting, expiry, close mid-attempt', async () => {
    const entered = deferred();
    const app: Listener = (req, res) => {
      const path = req.url ?? '';
      if (path.startsWith('/throw')) throw new Error('boom');
      if (path.startsWith('/fail')) {
        res.statusCode = 500;
        res.end();
      } else if (path.startsWith('/hang')) {
        if (getInvocation(req)?.taskId === 'stopped-running') entered.resolve();
      } else res.end('ok');
    };
    const handler = handlerFor(app, {
      async: { mode: 'local', maxAsyncRetryAttempts: 1, timeoutSeconds: 0.5, maxAsyncEventAgeInSeconds: 2 },
      destinations: { onSuccess: () => {}, onFailure: () => Promise.reject(new Error('destination down')) },
    });
    await handler(event({ path: '/sync' }), fcContext);
    await handler(event({ path: '/throw' }), fcContext);
    for (const [taskId, path] of [
      ['ok', '/ok'],
      ['throws', '/throw'],
      ['fails', '/fail'],
      ['times-out', '/hang'],
    ]) {
      await handler(asyncEvent({ taskId, path }), fcContext);
    }
    await handler(asyncEvent({ taskId: 'expires', delay: '3' }), fcContext);
    await handler(asyncEvent({ taskId: 'stopped-waiting', delay: '100' }), fcContext);
    await handler.tasks.stop('stopped-waiting');
    await handler.drain();

    const closing = handlerFor(app, { async: { mode: 'local', timeoutSeconds: 60 } });
    await closing(asyncEvent({ taskId: 'stopped-running', path: '/hang' }), fcContext);
    await entered.promise;
    await closing.tasks.stop('stopped-running');
    await closing(asyncEvent({ taskId: 'closed', path: '/hang' }), fcContext);
    await closing.close({ timeoutMs: 20 });
    await handler.close({ timeoutMs: 3000 });

    expect([...ledger.open.values()]).toEqual([]);
    expect(ledger.endedTwice()).toBe(0);
    const conditions = spans()
      .filter((s) => s.kind === SpanKind.CONSUMER && s.attributes['fc_async.condition'] !== undefined)
      .map((s) => `${s.attributes['fc_async.task_id']}:${s.attributes['fc_async.condition']}`)
      .sort();
    expect(conditions).toEqual([
      'closed:Stopped',
      'expires:EventAgeExceeded',
      'fails:UnhandledInvocationError',
      'ok:',
      'stopped-running:Stopped',
      'stopped-waiting:Stopped',
      'throws:UnhandledInvocationError',
      'times-out:InvocationError',
    ]);
  }, 20_000);

  it('tracing.enabled false: not one span, even with an SDK, and no trace id on the task or the 202', async () => {
    const handler = handlerFor(ok, { tracing: { tracerProvider, enabled: false } });
    await handler(event(), fcContext);
    const accepted = await handler(asyncEvent({ taskId: 'quiet' }), fcContext);
    await handler.drain();
    expect(accepted.headers).not.toHaveProperty('traceparent');
    expect((await handler.tasks.get('quiet'))?.traceId).toBeUndefined();
    expect(ledger.ends.size + ledger.open.size).toBe(0);
  });
});

describe('custom-runtime middleware (createFcRuntime)', () => {
  async function serve(passRes: boolean, app: Listener, env: Record<string, string> = {}) {
    const runtime = createFcRuntime({ logger: memoryLogger(), env, tracing: { tracerProvider } });
    const server = createServer(async (req, res) => {
      const answer = await runtime.handle(req, { app: server, listener: () => app }, passRes ? res : undefined);
      if (answer) {
        res.statusCode = answer.statusCode;
        res.end(answer.body);
      } else runtime.proceed(req, () => app(req, res));
    });
    servers.push(server);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    return { runtime, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}` };
  }

  it.each([
    ['answers nothing', undefined],
    ['answers 400 once the request is gone (as a body parser does)', 400],
  ])('a request whose connection closes before the answer, the app %s: ERROR ConnectionClosed', async (_, late) => {
    const entered = deferred();
    const closed = deferred();
    const { url } = await serve(true, (req, res) => {
      entered.resolve();
      res.once('close', () => closed.resolve());
      if (late === undefined) return; // the client gives up waiting
      req.once('aborted', () => {
        res.statusCode = late;
        res.end('too late');
      });
    });
    const abort = new AbortController();
    const call = fetch(`${url}/late`, { signal: abort.signal }).catch((error: Error) => error.name);
    await entered.promise;
    abort.abort();
    expect(await call).toBe('AbortError');
    await closed.promise;
    await new Promise((resolve) => setImmediate(resolve));
    const span = only(spans(), 'GET');
    expect(span.status.code).toBe(SpanStatusCode.ERROR);
    expect(span.attributes['error.type']).toBe('ConnectionClosed');
    expect(span.attributes['http.response.status_code']).toBe(late);
    expect([...ledger.open.values()]).toEqual([]);
  });

  it('on FC, an async invocation FC cuts off (a stop, its timeout): ERROR ConnectionClosed, not the 500 no one got', async () => {
    const entered = deferred();
    const { runtime, url } = await serve(
      true,
      (req, res) => {
        entered.resolve();
        // The app answers 500 once its signal aborts: collected, never sent.
        getInvocation(req)?.signal.addEventListener('abort', () => {
          res.statusCode = 500;
          res.end('stopped');
        });
      },
      { FC_FUNCTION_NAME: 'f', FC_REGION: 'cn-hangzhou' },
    );
    const abort = new AbortController();
    const call = fetch(`${url}/slow`, {
      method: 'POST',
      headers: { 'x-fc-request-id': 'cut-1', 'x-fc-invocation-type': 'Async' },
      signal: abort.signal,
    }).catch((error: Error) => error.name);
    await entered.promise;
    abort.abort();
    expect(await call).toBe('AbortError');
    await runtime.drain();
    await expect.poll(() => spans().filter((s) => s.name.startsWith('POST')).length).toBe(1);
    const span = only(spans(), 'POST');
    expect(span.status.code).toBe(SpanStatusCode.ERROR);
    expect(span.attributes['error.type']).toBe('ConnectionClosed');
    expect(span.attributes['http.response.status_code']).toBeUndefined();
  });

  it('without `res`: a request passed on to the app starts no span that could never end; an accepted one is traced', async () => {
    const { runtime, url } = await serve(false, ok);
    expect((await fetch(`${url}/sync`)).status).toBe(200);
    const accepted = await fetch(`${url}/job`, { method: 'POST', headers: { 'x-fc-invocation-type': 'Async' } });
    expect(accepted.status).toBe(202);
    await runtime.drain();
    expect([...ledger.open.values()]).toEqual([]);
    expect(spans().map((s) => s.name)).toEqual(['send fc-async-local', 'POST', 'process fc-async-local']);
    await runtime.close({ timeoutMs: 1000 });
  });
});
