import type { AddressInfo } from 'node:net';
import Fastify from 'fastify';
import { describe, expect, it } from 'vitest';
import { fcAsync } from '../src/index.js';
import { logger } from './event.js';

describe('fastify fcAsync plugin, with a header Node refuses set by an earlier hook', () => {
  it('still answers the accepted async request 202, leaving that header out, and keeps serving', async () => {
    const unhandled: unknown[] = [];
    const onUnhandled = (reason: unknown) => void unhandled.push(reason);
    process.on('unhandledRejection', onUnhandled);
    const app = Fastify();
    // An app echoing a query value into a header: `%0A` decodes to a newline, which Node refuses.
    // Only on the caller's request (the replay of the queued task carries no invocation type).
    app.addHook('onRequest', (request, reply, done) => {
      const { echo } = request.query as { echo?: string };
      if (echo && request.headers['x-fc-invocation-type']) reply.header('x-echo', echo);
      done();
    });
    await app.register(fcAsync, { logger: logger(), env: {} });
    app.post('/job', async () => 'done');
    try {
      await app.listen({ port: 0, host: '127.0.0.1' });
      const url = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`;
      const r = await fetch(`${url}/job?echo=%0A`, {
        method: 'POST',
        headers: { 'x-fc-invocation-type': 'Async', 'x-fc-async-task-id': 'echoed' },
        signal: AbortSignal.timeout(3_000),
      });
      expect([r.status, r.headers.get('x-fc-async-task-id'), r.headers.get('x-echo')]).toEqual([202, 'echoed', null]);
      await app.fcAsync?.drain();
      expect((await app.fcAsync?.tasks.get('echoed'))?.status).toBe('Succeeded');
      expect((await fetch(`${url}/job?echo=fine`, { method: 'POST' })).status).toBe(200);
      expect(unhandled).toEqual([]);
    } finally {
      process.off('unhandledRejection', onUnhandled);
      await app.close();
    }
  });
});
