import { once } from 'node:events';
import { createFcHandler, type DestinationRecord, type FcHandler, getInvocation, silentLogger } from '@fc-async/core';
import { asyncEvent } from '@fc-async/test-kit/fc-server';
import { installSdk } from '@fc-async/test-kit/tracing-sdk';
import { SpanKind, SpanStatusCode, trace } from '@opentelemetry/api';
import {
  BasicTracerProvider,
  InMemorySpanExporter,
  type ReadableSpan,
  SimpleSpanProcessor,
  type Span,
  type SpanProcessor,
} from '@opentelemetry/sdk-trace-base';
import { Redis } from 'ioredis';
import { afterAll, afterEach, beforeEach, describe, expect, inject, it } from 'vitest';
import { bullmq } from '../src/index.js';
import { uniquePrefix, until } from './helpers.js';
import { Instances, type Reported } from './instances.js';

// The trace of a task whose worker process was killed mid-attempt (SIGKILL: its attempt's span
// died with it) and whose job another instance took over: the accepting trace must tell the cut
// attempt (an Interrupted CONSUMER span) and then the attempt that ran it again.

const CALLER_TRACE = '4bf92f3577b34da6a3ce929d0e0e4736';
const sdk = installSdk();
const closers: (() => Promise<unknown>)[] = [];
beforeEach(() => {
  trace.setGlobalTracerProvider(sdk.provider);
  sdk.exporter.reset();
});
afterEach(async () => {
  for (const close of closers.splice(0).reverse()) await close();
  trace.disable();
});
afterAll(() => sdk.uninstall());

/** An instance in this process (its spans exported to `sdk`), with the fixture's lock and stalled check. */
function instance(
  prefix: string,
  worker: boolean,
  ran: number[],
  onFailure?: (record: DestinationRecord) => void,
): FcHandler {
  const handler = createFcHandler(
    (req, res) => {
      ran.push(getInvocation(req)?.attempt ?? -1);
      res.end('ok');
    },
    {
      logger: silentLogger,
      env: {},
      async: {
        mode: 'local',
        backoff: { baseMs: 10, maxMs: 10 },
        backend: bullmq({
          connection: inject('redisUrl'),
          prefix,
          worker,
          lockDurationMs: 2000,
          stalledIntervalMs: 1000,
        }),
      },
      ...(onFailure && { destinations: { onFailure } }),
    },
  );
  closers.push(() => handler.close({ timeoutMs: 1000 }));
  return handler;
}

const spansOf = (kind: SpanKind, taskId: string): ReadableSpan[] =>
  sdk.exporter.getFinishedSpans().filter((s) => s.kind === kind && s.attributes['fc_async.task_id'] === taskId);

/**
 * Accepts `taskId` (a 60 s attempt) on an instance with no worker, in the caller's trace, and has a
 * worker process start its attempt and die by SIGKILL; resolves once it exited, with the acceptor.
 */
async function acceptedThenKilled(prefix: string, cluster: Instances, taskId: string): Promise<FcHandler> {
  const acceptor = instance(prefix, false, []);
  await acceptor.engine?.whenReady();
  const traceparent = `00-${CALLER_TRACE}-00f067aa0ba902b7-01`;
  expect((await acceptor(asyncEvent(taskId, { ms: 60_000 }, { traceparent }))).statusCode).toBe(202);
  const victim = await cluster.start(prefix, 'worker');
  await until('the worker process to start the attempt', () =>
    cluster.reported.some((r: Reported) => r.type === 'started' && r.taskId === taskId),
  );
  const exited = once(victim.child, 'exit');
  victim.child.kill('SIGKILL');
  await exited;
  return acceptor;
}

describe('bullmq(): the trace of a task whose worker was killed mid-attempt and whose job another instance took', () => {
  it('SERVER -> PRODUCER -> an Interrupted CONSUMER for the cut attempt -> the next attempt’s CONSUMER', async () => {
    const prefix = uniquePrefix();
    const cluster = await Instances.open(inject('redisUrl'));
    closers.push(() => cluster.close());

    // Accepted here (no worker), run by a worker process that is then killed mid-attempt.
    await acceptedThenKilled(prefix, cluster, 'taken_over');

    // Another instance, in this process, takes the job once its lock lapsed.
    const ran: number[] = [];
    const taker = instance(prefix, true, ran);
    await until('the task to succeed on the other instance', async () => {
      return (await taker.tasks.get('taken_over'))?.status === 'Succeeded';
    });
    await taker.drain();
    expect(ran).toEqual([1]);

    const spans = sdk.exporter.getFinishedSpans();
    const server = spans.filter((s) => s.kind === SpanKind.SERVER);
    const producers = spansOf(SpanKind.PRODUCER, 'taken_over');
    const consumers = spansOf(SpanKind.CONSUMER, 'taken_over');
    expect(server).toHaveLength(1);
    expect(producers).toHaveLength(1);
    const [serverSpan, producer] = [server[0] as ReadableSpan, producers[0] as ReadableSpan];
    expect(serverSpan.spanContext().traceId).toBe(CALLER_TRACE);
    expect(producer.spanContext().traceId).toBe(CALLER_TRACE);
    expect(producer.parentSpanContext?.spanId).toBe(serverSpan.spanContext().spanId);

    // The cut attempt, then the one that ran it again: both under the PRODUCER, in its trace.
    expect(consumers.map((s) => [s.attributes['fc_async.attempt'], s.attributes['error.type'], s.status.code])).toEqual(
      [
        [0, 'Interrupted', SpanStatusCode.ERROR],
        [1, undefined, SpanStatusCode.UNSET],
      ],
    );
    for (const consumer of consumers) {
      expect(consumer.spanContext().traceId).toBe(CALLER_TRACE);
      expect(consumer.parentSpanContext?.spanId).toBe(producer.spanContext().spanId);
      expect(consumer.links.map((l) => l.context.spanId)).toEqual([producer.spanContext().spanId]);
    }
    const [cut, next] = consumers as [ReadableSpan, ReadableSpan];
    // Retries were left: the cut attempt's span carries no condition; the last attempt's says success.
    expect(cut.attributes['fc_async.condition']).toBeUndefined();
    expect(next.attributes['fc_async.condition']).toBe('');
    // The cut span starts at the cut attempt's start (its Running event), before the kill.
    const task = await taker.tasks.get('taken_over');
    const firstRunning = task?.events.find((e) => e.status === 'Running')?.timestamp ?? 0;
    expect(cut.startTime[0]).toBe(Math.floor(firstRunning / 1000));
  });
});

describe('bullmq(): a task stopped after its worker was killed, its job taken by another instance', () => {
  // The stop finds the task Running with no attempt left to abort: it stays Stopping. The instance
  // that takes the job once its lock lapsed must end it Stopped (one onFailure call, condition
  // Stopped, a CONSUMER span saying so), not run it again, as a restart ends a Stopping task on sqlite.
  it('the taking instance ends it Stopped without running it: onFailure once, a Stopped CONSUMER span', async () => {
    const prefix = uniquePrefix();
    const cluster = await Instances.open(inject('redisUrl'));
    closers.push(() => cluster.close());
    // Dead before the stop: no attempt is left to hear it.
    const acceptor = await acceptedThenKilled(prefix, cluster, 'stop_taken');
    expect((await acceptor.tasks.stop('stop_taken')).status).toBe('Stopping');

    const ran: number[] = [];
    const failures: DestinationRecord[] = [];
    const taker = instance(prefix, true, ran, (record) => void failures.push(record));
    await until('the task to end Stopped', async () => (await taker.tasks.get('stop_taken'))?.status === 'Stopped');
    await until('its onFailure call', () => failures.length > 0);
    await taker.drain();
    expect(ran).toEqual([]);
    expect(failures.map((r) => r.requestContext.condition)).toEqual(['Stopped']);
    const task = await taker.tasks.get('stop_taken');
    expect(task?.events.map((e) => e.status)).toEqual(['Enqueued', 'Dequeued', 'Running', 'Stopping', 'Stopped']);
    const consumers = spansOf(SpanKind.CONSUMER, 'stop_taken');
    expect(consumers.map((s) => [s.attributes['fc_async.condition'], s.spanContext().traceId])).toEqual([
      ['Stopped', CALLER_TRACE],
    ]);
  });
});

function gate() {
  let open!: () => void;
  const opened = new Promise<void>((resolve) => {
    open = resolve;
  });
  return { opened, open };
}

describe('bullmq(): the trace of an attempt whose instance was held up past its lock, another instance taking the job', () => {
  // The first instance runs the task until `first` opens; its lock is lost meanwhile (deleted, as
  // its expiry while the instance's event loop was blocked would); the other instance takes the
  // job, tells the attempt interrupted and runs the task again. The attempt then has two spans
  // (its own, ended when it answers, and the Interrupted one): both must end.
  // One attempt at a time on each instance: with a slot free, the first instance could take the
  // stalled job back itself and park it (it still runs the attempt), and it usually wins the job
  // again each time the park ends (its worker wakes when the job is due; the other's is woken
  // after the job is taken), so the other instance's takeover could take tens of lock lengths.
  it.each([500, 200])(
    'the held-up attempt answers %i: its two spans and the retry’s all end, in the accepting trace',
    async (firstStatus) => {
      const started = new Map<string, string>();
      const tracker: SpanProcessor = {
        onStart: (span: Span) => void started.set(span.spanContext().spanId, span.name),
        onEnd: (span: ReadableSpan) => void started.delete(span.spanContext().spanId),
        forceFlush: async () => undefined,
        shutdown: async () => undefined,
      };
      const exporter = new InMemorySpanExporter();
      const provider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter), tracker] });
      trace.disable();
      trace.setGlobalTracerProvider(provider);
      closers.push(() => provider.shutdown());
      const prefix = uniquePrefix();
      const ran: string[] = [];
      const first = gate();
      const make = (name: string, app: (attempt: number) => Promise<number>) => {
        const handler = createFcHandler(
          async (req, res) => {
            const attempt = getInvocation(req)?.attempt ?? -1;
            ran.push(`${name}:${attempt}`);
            res.statusCode = await app(attempt);
            res.end(name);
          },
          {
            logger: silentLogger,
            env: {},
            async: {
              mode: 'local',
              concurrency: 1,
              maxAsyncRetryAttempts: 2,
              backoff: { baseMs: 10, maxMs: 10 },
              backend: bullmq({ connection: inject('redisUrl'), prefix, lockDurationMs: 200, stalledIntervalMs: 200 }),
            },
          },
        );
        closers.push(() => handler.close({ timeoutMs: 1000 }));
        return handler;
      };
      const one = make('one', async () => {
        await first.opened;
        return firstStatus;
      });
      const traceparent = `00-${CALLER_TRACE}-00f067aa0ba902b7-01`;
      expect((await one(asyncEvent('held_up', {}, { traceparent }))).statusCode).toBe(202);
      await until('the first instance to run the task', () => ran.length === 1);
      const redis = new Redis(inject('redisUrl'));
      closers.push(() => redis.quit());
      // Gone either way: deleted here, or lapsed already (a 200 ms lock, on a loaded machine).
      await redis.del(`${prefix}:tasks:held_up:lock`);
      const two = make('two', async () => 200);
      await until(
        'the other instance to end the task',
        async () => (await two.tasks.get('held_up'))?.status === 'Succeeded',
        12_000,
      );
      first.open();
      await one.drain();
      await two.drain();
      expect(ran).toEqual(['one:0', 'two:1']);
      expect([...started.values()]).toEqual([]);
      const consumers = exporter
        .getFinishedSpans()
        .filter((s) => s.kind === SpanKind.CONSUMER && s.attributes['fc_async.task_id'] === 'held_up');
      const attempts = (n: number) => consumers.filter((s) => s.attributes['fc_async.attempt'] === n);
      // The attempt's two spans: the other instance's Interrupted one, and its own, ended when it answered.
      expect(
        attempts(0)
          .map((s) => String(s.attributes['error.type'] ?? 'none'))
          .sort(),
      ).toEqual(firstStatus === 500 ? ['HTTP500', 'Interrupted'] : ['Interrupted', 'none']);
      const interrupted = attempts(0).find((s) => s.attributes['error.type'] === 'Interrupted');
      expect(interrupted?.status.code).toBe(SpanStatusCode.ERROR);
      expect(interrupted?.attributes['fc_async.condition']).toBeUndefined();
      expect(interrupted?.attributes['fc_async.superseded']).toBeUndefined();
      // The held-up attempt's own span: the store refused its end (the other instance ended the
      // task), so it claims none: superseded, no condition, with what its app answered.
      const own = attempts(0).find((s) => s.attributes['error.type'] !== 'Interrupted');
      expect(own?.attributes['http.response.status_code']).toBe(firstStatus);
      expect(own?.attributes['fc_async.superseded']).toBe(true);
      expect(own?.attributes['fc_async.condition']).toBeUndefined();
      // Only the span of the end the store kept says the task's condition.
      expect(consumers.filter((s) => s.attributes['fc_async.condition'] !== undefined)).toEqual(attempts(1));
      // The retry ends the task: its span says so.
      expect(attempts(1).map((s) => [s.status.code, s.attributes['fc_async.condition']])).toEqual([
        [SpanStatusCode.UNSET, ''],
      ]);
      expect(consumers).toHaveLength(3);
      const producer = consumers[0]?.parentSpanContext?.spanId;
      expect(
        consumers.every((s) => s.spanContext().traceId === CALLER_TRACE && s.parentSpanContext?.spanId === producer),
      ).toBe(true);
    },
  );
});
