import { SpanKind } from '@opentelemetry/api';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  type AsyncBackend,
  createFcHandler,
  type DestinationRecord,
  MemoryTaskStore,
  PQueueDriver,
  type TracingOptions,
} from '../src/index.js';
import { asyncEvent, context, memoryLogger } from './helpers.js';
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

  it('newTracePerAttempt: its onFailure call nests in that span, not in the attempt that answered', async () => {
    const { consumers } = await stoppedAsItAnswers({ newTracePerAttempt: true });
    const deliver = sdk.spans().find((s) => s.name === 'deliver onFailure');
    const stopped = consumers.find((s) => s.attributes['fc_async.condition'] === 'Stopped');
    expect(deliver?.parentSpanContext?.spanId).toBe(stopped?.spanContext().spanId);
  });
});
