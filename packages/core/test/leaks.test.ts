/**
 * Bounds a long-lived process relies on: what fc-async keeps must not grow with the number of
 * handlers, runtimes or tasks once they are closed or pruned.
 */
import { getEventListeners } from 'node:events';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { Readable } from 'node:stream';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { BasicTracerProvider } from '@opentelemetry/sdk-trace-base';
import { describe, expect, it, vi } from 'vitest';
import {
  type AsyncBackend,
  type AsyncTaskStatus,
  createFcHandler,
  createFcRuntime,
  type DestinationRecord,
  getInvocation,
  httpDestination,
  listenFc,
  MemoryTaskStore,
  PQueueDriver,
  type TaskRecord,
  type TransitionOptions,
} from '../src/index.js';
import { asyncEvent, context, event, memoryLogger } from './helpers.js';

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

/** A tracer provider that counts its flushes. */
function countingProvider(): BasicTracerProvider & { flushes: number } {
  const provider = Object.assign(new BasicTracerProvider(), { flushes: 0 });
  const forceFlush = provider.forceFlush.bind(provider);
  provider.forceFlush = () => {
    provider.flushes++;
    return forceFlush();
  };
  return provider;
}

/** A runtime bound to its own app and given one async request, as a middleware's first request does. */
async function usedRuntime(tracerProvider?: BasicTracerProvider) {
  const runtime = createFcRuntime({
    logger: memoryLogger(),
    env: {},
    async: { mode: 'local' },
    tracing: tracerProvider ? { tracerProvider } : undefined,
  });
  const app = {};
  const listener = (_req: IncomingMessage, res: ServerResponse) => res.end('ok');
  const req = Object.assign(Readable.from([Buffer.from('job')]), {
    method: 'POST',
    url: '/',
    headers: { 'x-fc-invocation-type': 'Async', host: 'localhost', 'content-length': '3' },
  });
  const answer = await runtime.handle(req as unknown as IncomingMessage, { app, listener: () => listener });
  expect(answer?.statusCode).toBe(202);
  await runtime.drain();
  return runtime;
}

/** Weak references to the engines of `n` runtimes, each used and closed (no strong one is left on the stack). */
async function closedEngines(n: number): Promise<WeakRef<object>[]> {
  const refs: WeakRef<object>[] = [];
  for (let i = 0; i < n; i++) {
    const runtime = await usedRuntime();
    refs.push(new WeakRef(runtime.engine as object));
    await runtime.close();
  }
  return refs;
}

describe('closed middleware runtimes are released', () => {
  it('close() flushes spans and takes the runtime out of the pre-stop hooks', async () => {
    const provider = countingProvider();
    for (let i = 0; i < 20; i++) await (await usedRuntime(provider)).close();
    // Spans still go out: each close flushed its tracing once.
    expect(provider.flushes).toBe(20);
    provider.flushes = 0;
    // A later pre-stop (or pre-freeze) of the process no longer calls the 20 closed runtimes.
    const fc = await listenFc((_req, res) => res.end(), { port: 0, host: '127.0.0.1', logger: memoryLogger() });
    try {
      const answer = await fetch(`http://127.0.0.1:${fc.port}/pre-freeze`);
      expect(answer.status).toBe(200);
      expect(provider.flushes).toBe(0);
    } finally {
      await fc.close();
    }
  });

  it('the engine of a closed runtime can be garbage-collected', async () => {
    const refs = await closedEngines(10);
    // WeakRef targets are kept until the current job ends: collect on a later turn.
    await new Promise((resolve) => setTimeout(resolve, 20));
    gc();
    expect(refs.filter((r) => r.deref() !== undefined)).toHaveLength(0);
  });
});

/** A memory store that refuses each task's first claim, as a store with a full disk would for a while. */
class ClaimRefusedOnce extends MemoryTaskStore {
  private readonly refused = new Set<string>();

  override transition(taskId: string, status: AsyncTaskStatus, options: TransitionOptions): TaskRecord | undefined {
    if (status === 'Running' && !this.refused.has(taskId)) {
      this.refused.add(taskId);
      throw new Error('SQLITE_FULL: database or disk is full');
    }
    return super.transition(taskId, status, options);
  }
}

describe('the async engine after refused writes', () => {
  it('forgets a refused write once the task is run and recorded', async () => {
    const backend: AsyncBackend = {
      name: 'claim-refused-once',
      persistent: false,
      create: ({ concurrency }) => ({
        store: new ClaimRefusedOnce({ maxTasks: 5 }),
        queue: new PQueueDriver(concurrency),
      }),
    };
    const handler = createFcHandler((_req, res) => res.end('ok'), {
      logger: memoryLogger(),
      env: {},
      async: { mode: 'local', backend, concurrency: 50 },
    });
    const engine = handler.engine as unknown as { unrecorded: Set<string> };
    try {
      const answers = await Promise.all(Array.from({ length: 200 }, () => handler(asyncEvent(), context)));
      expect(answers.every((a) => a.statusCode === 202)).toBe(true);
      await handler.drain();
      const { tasks } = await handler.tasks.list({ status: 'Succeeded' });
      expect(tasks).toHaveLength(5);
      // Every job has returned (drain resolves as the last task settles, a turn before its job ends).
      await new Promise((resolve) => setImmediate(resolve));
      expect(engine.unrecorded.size).toBe(0);
    } finally {
      await handler.close();
    }
  });
});

/** Weak references to the spans a handler ended, each task a failure with no destination to deliver to. */
async function endedSpansOfTasks(n: number, newTracePerAttempt: boolean): Promise<WeakRef<object>[]> {
  const refs: WeakRef<object>[] = [];
  const tracerProvider = new BasicTracerProvider({
    spanProcessors: [
      {
        onStart() {},
        onEnd(span) {
          refs.push(new WeakRef(span));
        },
        forceFlush: async () => {},
        shutdown: async () => {},
      },
    ],
  });
  const handler = createFcHandler(
    (_req, res) => {
      res.statusCode = 500;
      res.end('no');
    },
    {
      logger: memoryLogger(),
      env: {},
      tracing: { tracerProvider, newTracePerAttempt },
      async: { mode: 'local', maxAsyncRetryAttempts: 0 },
    },
  );
  for (let i = 0; i < n; i++) expect((await handler(asyncEvent(), context)).statusCode).toBe(202);
  await handler.drain();
  const { tasks } = await handler.tasks.list({ status: 'Failed' });
  expect(tasks).toHaveLength(n);
  // The handler stays open: what its tracing keeps for a task's destinations is what is measured.
  (globalThis as { keptHandler?: unknown }).keptHandler = handler;
  return refs;
}

describe('tracing of finished tasks', () => {
  // With a new trace per attempt, each task's final attempt context is kept for its destination
  // spans to nest in (up to 1,024 tasks): that must not keep the ended span, its attributes and
  // its exception event (about 3 KB a failed task, 3 MB in all).
  it.each([false, true])('the ended spans can be garbage-collected (newTracePerAttempt: %s)', async (perAttempt) => {
    const refs = await endedSpansOfTasks(20, perAttempt);
    try {
      expect(refs.length).toBeGreaterThanOrEqual(20);
      await new Promise((resolve) => setTimeout(resolve, 20));
      gc();
      expect(refs.filter((r) => r.deref() !== undefined)).toHaveLength(0);
    } finally {
      const kept = globalThis as { keptHandler?: { close(): Promise<void> } };
      await kept.keptHandler?.close();
      kept.keptHandler = undefined;
    }
  });
});

/**
 * What an app adds to a sync call's signal (the docs' `signal.addEventListener('abort', ...)`,
 * `AbortSignal.any([signal, ...])`): those of one call must not pile up on the next calls'.
 */
describe('the signal of sync calls', () => {
  /** An app that adds an abort listener to its invocation's signal, as docs/async.md's does, and reports what was there before. */
  function listeningApp(seen: { signals: Set<AbortSignal>; before: number[] }) {
    return (req: IncomingMessage, res: ServerResponse) => {
      const signal = getInvocation(req)?.signal as AbortSignal;
      seen.signals.add(signal);
      seen.before.push(getEventListeners(signal, 'abort').length);
      signal.addEventListener('abort', () => res.destroy(), { once: true });
      res.end('ok');
    };
  }

  it('each sync call of a handler has its own signal: a listener added by one is not on the next', async () => {
    const seen = { signals: new Set<AbortSignal>(), before: [] as number[] };
    const warnings: string[] = [];
    const onWarning = (warning: Error) => warnings.push(warning.name);
    process.on('warning', onWarning);
    const handler = createFcHandler(listeningApp(seen), { logger: memoryLogger(), env: {} });
    try {
      for (let i = 0; i < 20; i++) expect((await handler(event(), context)).statusCode).toBe(200);
      expect(seen.signals.size).toBe(20);
      expect(seen.before).toEqual(Array(20).fill(0));
      for (const signal of seen.signals) expect(signal.aborted).toBe(false);
      await new Promise((resolve) => setImmediate(resolve));
      expect(warnings).not.toContain('MaxListenersExceededWarning');
    } finally {
      process.off('warning', onWarning);
      await handler.close();
    }
  });

  it('each sync request through the custom-runtime middleware has its own signal', async () => {
    const seen = { signals: new Set<AbortSignal>(), before: [] as number[] };
    const runtime = createFcRuntime({ logger: memoryLogger(), env: {}, async: { mode: 'local' } });
    const app = {};
    const inner = listeningApp(seen);
    const listener = (req: IncomingMessage, res: ServerResponse) => {
      void runtime.handle(req, { app, listener: () => listener }, res).then((answer) => {
        if (answer === undefined) inner(req, res);
      });
    };
    const fc = await listenFc(listener, { port: 0, host: '127.0.0.1', logger: memoryLogger() });
    try {
      for (let i = 0; i < 12; i++) {
        const answer = await fetch(`http://127.0.0.1:${fc.port}/hello`);
        expect(await answer.text()).toBe('ok');
      }
      expect(seen.signals.size).toBe(12);
      expect(seen.before).toEqual(Array(12).fill(0));
    } finally {
      await fc.close();
      await runtime.close();
    }
  });
});

/**
 * The engine gives each destination call a signal of its own, but an app may call a destination
 * itself (composing destinations, a retry loop of its own) with a signal that lives as long as the
 * process: an HTTP post must leave nothing on it once done.
 */
describe('HTTP destination posts', () => {
  it('leave nothing behind on the long-lived signal they are given', async () => {
    const shutdown = new AbortController().signal;
    let live = 0;
    vi.stubGlobal('fetch', async (_url: string, init: RequestInit) => {
      if (init.signal instanceof AbortSignal && !init.signal.aborted) live++;
      return new Response(null, { status: 204 });
    });
    try {
      const post = httpDestination('http://127.0.0.1:8080/hook', { timeoutMs: 60_000 });
      const record = destinationRecord();
      const posts = async (n: number) => {
        for (let i = 0; i < n; i++) await post(record, { signal: shutdown, attempt: 1 });
      };
      await posts(1_000);
      gc();
      const before = process.memoryUsage().heapUsed;
      await posts(20_000);
      gc();
      const perPost = (process.memoryUsage().heapUsed - before) / 20_000;
      // AbortSignal.any([timeout, shutdown]) kept about 50 to 70 bytes a post on Node 20.
      expect(perPost).toBeLessThan(16);
      expect(live).toBe(21_000);
    } finally {
      vi.unstubAllGlobals();
    }
  });

  it("abort with the caller's signal, already aborted or aborted meanwhile", async () => {
    vi.stubGlobal('fetch', (_url: string, init: RequestInit) => {
      const signal = init.signal as AbortSignal;
      return new Promise((_resolve, reject) => {
        if (signal.aborted) reject(signal.reason);
        signal.addEventListener('abort', () => reject(signal.reason), { once: true });
      });
    });
    try {
      const post = httpDestination('http://127.0.0.1:8080/hook');
      const aborted = new AbortController();
      aborted.abort(new DOMException('gone', 'AbortError'));
      await expect(post(destinationRecord(), { signal: aborted.signal, attempt: 1 })).rejects.toMatchObject({
        code: 'DestinationAborted',
        retryable: false,
      });
      const later = new AbortController();
      const pending = post(destinationRecord(), { signal: later.signal, attempt: 1 });
      later.abort(new DOMException('gone', 'AbortError'));
      await expect(pending).rejects.toMatchObject({ code: 'DestinationAborted', retryable: false });
    } finally {
      vi.unstubAllGlobals();
    }
  });
});

function destinationRecord(): DestinationRecord {
  return {
    timestamp: 1660120276975,
    requestContext: {
      requestId: '1-64f6d6e7-e01edb1cce58240ed59b59d9',
      functionArn: 'acs:fc:cn-hangzhou:123:functions/transcode',
      condition: '',
      approximateInvokeCount: 1,
    },
    requestPayload: '{"bucket":"b"}',
    responseContext: { statusCode: 200, functionError: '' },
    responsePayload: 'done',
  };
}
