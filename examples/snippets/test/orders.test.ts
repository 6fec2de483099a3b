import { type DestinationRecord, fcHttpEvent, silentLogger } from '@fc-async/core';
import { createHandler, type FcHandler } from '@fc-async/express';
import { afterEach, expect, it, vi } from 'vitest';
import { ordersApp, type Payments } from '../src/orders.js';

let handler: FcHandler | undefined;
afterEach(async () => {
  vi.useRealTimers(); // first: close() waits on timers
  await handler?.close({ timeoutMs: 1000 });
});

/** The app under an fc-async handler, as FC runs it, with its destination records kept. */
function setup(charge: Payments['charge']) {
  const records: DestinationRecord[] = [];
  handler = createHandler(ordersApp({ charge }), {
    env: {}, // local mode, whatever FC_* variables the machine has
    logger: silentLogger, // the app's errors (the failures under test) stay out of the test output
    async: { maxAsyncRetryAttempts: 2, backoff: { baseMs: 1000, maxMs: 1000, jitter: 'none' } },
    destinations: { onSuccess: (r) => void records.push(r), onFailure: (r) => void records.push(r) },
  });
  return { handler, records };
}

/** POST /orders as FC hands it to the function; `async` adds the header FC's caller sends. */
const order = (taskId?: string) =>
  fcHttpEvent({
    method: 'POST',
    url: '/orders',
    body: { sku: 'A-1' },
    headers: taskId ? { 'x-fc-invocation-type': 'Async', 'x-fc-async-task-id': taskId } : {},
  });

it('a sync call answers with the receipt', async () => {
  const { handler } = setup(async () => 'r-1');
  const result = await handler(order());
  expect([result.statusCode, JSON.parse(result.body)]).toEqual([200, { receipt: 'r-1', attempt: 0 }]);
});

it('an async order is retried after the backoff until the payment service answers', async () => {
  vi.useFakeTimers();
  const charge = vi.fn<Payments['charge']>().mockRejectedValueOnce(new Error('payments down'));
  charge.mockResolvedValue('r-2');
  const { handler, records } = setup(charge);
  expect((await handler(order('order-2'))).statusCode).toBe(202);
  await vi.advanceTimersByTimeAsync(1500); // the first attempt, then past the 1 s backoff to the retry
  await handler.drain();
  expect((await handler.tasks.get('order-2'))?.status).toBe('Succeeded');
  expect(records.map((r) => [r.requestContext.condition, JSON.parse(r.responsePayload)])).toEqual([
    ['', { receipt: 'r-2', attempt: 1 }],
  ]);
});

it('a stopped order aborts its signal and reaches onFailure as Stopped', async () => {
  const { handler, records } = setup(
    (_order, signal) =>
      new Promise((_resolve, reject) => signal.addEventListener('abort', () => reject(signal.reason))),
  );
  await handler(order('order-3'));
  await vi.waitFor(async () => expect((await handler.tasks.get('order-3'))?.status).toBe('Running'));
  await handler.tasks.stop('order-3');
  await handler.drain();
  expect(records.map((r) => r.requestContext.condition)).toEqual(['Stopped']);
});
