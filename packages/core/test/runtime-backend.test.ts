import { describe, expect, it } from 'vitest';
import type { AsyncBackend, QueueDriver } from '../src/async/backend.js';
import { MemoryTaskStore, memory } from '../src/async/memory.js';
import { holdUntilBound } from '../src/runtime/backend.js';
import { deferred, memoryLogger } from './helpers.js';

/** A shared queue (BullMQ's place) that records what the engine asks of it. */
function sharedQueue(calls: string[], startFails = false): QueueDriver {
  return {
    shared: true,
    start() {
      calls.push('start');
      if (startFails) return Promise.reject(new Error('Redis is down'));
    },
    enqueue: () => undefined,
    cancel: () => false,
    pending: () => 0,
    running: () => 0,
    close() {
      calls.push('close');
    },
  };
}

const backendWith = (queue: QueueDriver): AsyncBackend => ({
  name: 'shared',
  persistent: true,
  create: () => ({ store: new MemoryTaskStore(), queue }),
});

function binding() {
  const { promise: bound, resolve: bind } = deferred();
  return { bound, bind };
}

const turns = async (n = 5) => {
  for (let i = 0; i < n; i++) await new Promise((resolve) => setImmediate(resolve));
};

describe('holdUntilBound', () => {
  it('returns a backend that keeps no task across starts as it is', () => {
    const backend = memory();
    expect(holdUntilBound(backend, new Promise(() => {}))).toBe(backend);
  });

  it('has a shared queue take jobs only once the app is known', async () => {
    const calls: string[] = [];
    const { bound, bind } = binding();
    const logger = memoryLogger();
    const { queue } = await holdUntilBound(backendWith(sharedQueue(calls)), bound).create({ concurrency: 1, logger });
    await queue.start(async () => undefined);
    await turns();
    expect(calls).toEqual([]);
    bind();
    await turns();
    expect(calls).toEqual(['start']);
    await queue.close();
    expect(calls).toEqual(['start', 'close']);
  });

  it('closes a shared queue that never learned its app without starting it, and without waiting for it', async () => {
    const calls: string[] = [];
    const { bound, bind } = binding();
    const logger = memoryLogger();
    const { queue } = await holdUntilBound(backendWith(sharedQueue(calls)), bound).create({ concurrency: 1, logger });
    await queue.start(async () => undefined);
    await queue.close();
    bind();
    await turns();
    expect(calls).toEqual(['close']);
  });

  it('logs a shared queue that fails to start once bound, instead of an unhandled rejection', async () => {
    const calls: string[] = [];
    const { bound, bind } = binding();
    const logger = memoryLogger();
    const { queue } = await holdUntilBound(backendWith(sharedQueue(calls, true)), bound).create({
      concurrency: 1,
      logger,
    });
    await queue.start(async () => undefined);
    bind();
    await turns();
    expect(logger.entries).toContainEqual(
      expect.objectContaining({ level: 'error', message: 'async queue failed to start taking jobs' }),
    );
    await queue.close();
    expect(calls).toEqual(['start', 'close']);
  });
});
