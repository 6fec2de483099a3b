import { SpanKind } from '@opentelemetry/api';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  type AsyncBackend,
  createFcHandler,
  type DestinationRecord,
  MemoryTaskStore,
  PQueueDriver,
  type TaskRecord,
  type TracingOptions,
  type TransitionOptions,
} from '../src/index.js';
import { asyncEvent, context, memoryLogger, until } from './helpers.js';
import { createSdk, type Sdk } from './tracing-setup.js';

let sdk: Sdk;
beforeEach(() => {
  sdk = createSdk();
});
afterEach(async () => {
  await sdk.uninstall();
});

/**
 * A handler on a store the test holds, whose app answers 200 just after the task was written
 * `Stopping`, as a stop another instance of a shared queue took writes it before its word arrives.
 */
async function stoppedAsItAnswers(tracing?: TracingOptions) {
  const store = new MemoryTaskStore();
  const backend: AsyncBackend = {
    name: 'shared',
    persistent: true,
    create: ({ concurrency }) => ({ store, queue: new PQueueDriver(concurrency) }),
  };
  const delivered: DestinationRecord[] = [];
  const handler = createFcHandler(
    async (req, res) => {
      await store.transition(String(req.headers['x-fc-async-task-id']), 'Stopping', { from: ['Running'] });
      res.end('ok');
    },
    {
      logger: memoryLogger(),
      env: {},
      async: { mode: 'local', backend },
      destinations: { onSuccess: (r) => void delivered.push(r), onFailure: (r) => void delivered.push(r) },
      tracing,
    },
  );
  await handler(asyncEvent({ taskId: 'raced' }), { ...context, function: { name: 'transcode' } });
  await handler.drain();
  const status = (await handler.tasks.get('raced'))?.status;
  await handler.close({ timeoutMs: 100 });
  return { status, delivered, consumers: sdk.spans().filter((s) => s.kind === SpanKind.CONSUMER) };
}

describe('local async: a task stopped as its attempt answered', () => {
  it('ends Stopped, and its trace says so: a CONSUMER span with fc_async.condition Stopped after the attempt’s', async () => {
    const { status, delivered, consumers } = await stoppedAsItAnswers();
    expect(status).toBe('Stopped');
    expect(delivered.map((r) => r.requestContext.condition)).toEqual(['Stopped']);
    expect(consumers.map((s) => s.attributes['fc_async.attempt'])).toEqual([0, undefined]);
    expect(consumers.at(-1)?.attributes['fc_async.condition']).toBe('Stopped');
    expect(new Set(consumers.map((s) => s.spanContext().traceId)).size).toBe(1);
  });

  it('the attempt’s span, whose success the store refused, claims no end: superseded, no condition', async () => {
    const { consumers } = await stoppedAsItAnswers();
    const attempt = consumers.find((s) => s.attributes['fc_async.attempt'] === 0);
    expect(attempt?.attributes['http.response.status_code']).toBe(200);
    expect(attempt?.attributes['fc_async.superseded']).toBe(true);
    expect(attempt?.attributes['fc_async.condition']).toBeUndefined();
    // One span tells the task's end: the Stopped one, which follows the attempt's.
    expect(consumers.filter((s) => s.attributes['fc_async.condition'] !== undefined)).toHaveLength(1);
    expect(consumers.map((s) => s.attributes['fc_async.superseded'])).toEqual([true, undefined]);
  });

  it('newTracePerAttempt: its onFailure call nests in that span, not in the attempt that answered', async () => {
    const { consumers } = await stoppedAsItAnswers({ newTracePerAttempt: true });
    const deliver = sdk.spans().find((s) => s.name === 'deliver onFailure');
    const stopped = consumers.find((s) => s.attributes['fc_async.condition'] === 'Stopped');
    expect(deliver?.parentSpanContext?.spanId).toBe(stopped?.spanContext().spanId);
  });
});

/** A store that writes the task `Stopping` just before the end of its interrupted attempt, as a stop another instance took. */
class StopFirstStore extends MemoryTaskStore {
  armed = false;
  override transition(taskId: string, status: TaskRecord['status'], options: TransitionOptions) {
    if (this.armed && (status === 'Retrying' || status === 'Failed')) {
      this.armed = false;
      super.transition(taskId, 'Stopping', { from: ['Running'] });
    }
    return super.transition(taskId, status, options);
  }
}

describe('a task whose interrupted attempt is recorded as a stop is written first', () => {
  it('ends Stopped; the Interrupted span claims no end (superseded), the Stopped span does', async () => {
    const store = new StopFirstStore();
    const backend: AsyncBackend = {
      name: 'durable',
      persistent: true,
      create: ({ concurrency }) => ({ store, queue: new PQueueDriver(concurrency) }),
    };
    const async = { mode: 'local' as const, timeoutSeconds: 600, maxAsyncRetryAttempts: 0, backend };
    // The first process runs the task and dies with it (never closed): its attempt's span never ends.
    const crashed = createFcHandler(() => new Promise(() => {}), { logger: memoryLogger(), env: {}, async });
    await crashed(asyncEvent({ taskId: 'cut' }), context);
    await until('cut to run', () => store.get('cut')?.status === 'Running');
    store.armed = true;
    const next = createFcHandler(() => undefined, { logger: memoryLogger(), env: {}, async });
    await until('cut to end on the next start', () => store.get('cut')?.status === 'Stopped');
    await next.drain();
    await next.close({ timeoutMs: 100 });
    const consumers = sdk.spans().filter((s) => s.kind === SpanKind.CONSUMER);
    expect(
      consumers.map((s) => [
        s.attributes['error.type'],
        s.attributes['fc_async.superseded'],
        s.attributes['fc_async.condition'],
      ]),
    ).toEqual([
      ['Interrupted', true, undefined],
      [undefined, undefined, 'Stopped'],
    ]);
  });
});
