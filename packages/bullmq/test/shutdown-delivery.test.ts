import { createFcHandler, type DestinationRecord, type Destinations, silentLogger } from '@fc-async/core';
import { asyncEvent } from '@fc-async/test-kit/fc-server';
import { afterEach, describe, expect, inject, it } from 'vitest';
import { bullmq } from '../src/index.js';
import { uniquePrefix, until } from './helpers.js';

const LOCK_MS = 200;
const closers: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const close of closers.splice(0).reverse()) await close();
});

function instance(prefix: string, destinations: Destinations) {
  const handler = createFcHandler(
    (_req, res) => {
      res.end('done');
    },
    {
      logger: silentLogger,
      env: {},
      async: {
        mode: 'local',
        stopGraceMs: 0, // close() cuts deliveries 100 ms past its deadline
        backend: bullmq({
          connection: inject('redisUrl'),
          prefix,
          lockDurationMs: LOCK_MS,
          stalledIntervalMs: LOCK_MS,
        }),
      },
      destinations,
    },
  );
  closers.push(() => handler.close({ timeoutMs: 1000 }));
  return handler;
}

describe('bullmq(): a delivery cut short by close()', () => {
  it('is made by the next instance to take the job, not lost with the completed job', async () => {
    const prefix = uniquePrefix();
    let called = 0;
    const first = instance(prefix, {
      onSuccess: () => {
        called++;
        return new Promise(() => {}); // a destination that never answers
      },
    });
    expect((await first(asyncEvent('cut_delivery'))).statusCode).toBe(202);
    await until('the first destination call', () => called === 1, 10_000);
    await first.close({ timeoutMs: 50 });

    const delivered: DestinationRecord[] = [];
    const next = instance(prefix, { onSuccess: (record) => void delivered.push(record) });
    await until('the delivery by the next instance', () => delivered.length === 1, 10_000);
    expect(delivered[0]?.responsePayload).toBe('done');
    await until(
      'the delivery recorded',
      async () => (await next.tasks.get('cut_delivery'))?.destinationStatus === 'Succeeded',
      5_000,
    );
  });
});
