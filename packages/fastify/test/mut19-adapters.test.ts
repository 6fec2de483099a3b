import { type AsyncBackend, MemoryTaskStore, PQueueDriver } from '@fc-async/core';
import Fastify from 'fastify';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { fcAsync, listen } from '../src/index.js';
import { logger } from './event.js';

// Behaviour of the Fastify adapter that the nineteenth session's mutation audit found no test holding.

const cleanup: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const c of cleanup.splice(0)) await c();
});

describe('fastify listen() with a durable backend', () => {
  it('runs the tasks a restart recovered at once, before any request reaches the new process', async () => {
    const store = new MemoryTaskStore();
    const durable: AsyncBackend = {
      name: 'durable-memory',
      persistent: true,
      create: () => ({ store, queue: new PQueueDriver(2) }),
    };
    const ran: string[] = [];
    const serve = async () => {
      const app = Fastify();
      await app.register(fcAsync, { logger: logger(), env: {}, async: { backend: durable } });
      app.post('/job', async () => {
        ran.push('/job');
        return 'done';
      });
      return listen(app, { port: 0, host: '127.0.0.1', signals: [], logger: logger() });
    };
    const first = await serve();
    const r = await fetch(`http://127.0.0.1:${first.port}/job`, {
      method: 'POST',
      headers: { 'x-fc-invocation-type': 'Async', 'x-fc-async-task-id': 'kept', 'x-fc-async-delay': '1' },
    });
    expect(r.status).toBe(202);
    await first.close(); // the delayed task stays in the store for the next start
    expect(store.get('kept')?.status).toBe('Enqueued');
    const second = await serve();
    cleanup.push(() => second.close());
    await vi.waitFor(() => expect(store.get('kept')?.status).toBe('Succeeded'), { timeout: 10_000, interval: 50 });
    expect(ran).toEqual(['/job']);
  });
});
