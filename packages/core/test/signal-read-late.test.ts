import { describe, expect, it } from 'vitest';
import { createFcHandler, getInvocation } from '../src/index.js';
import { asyncEvent, context, deferred, memoryLogger } from './helpers.js';

// An invocation's signal is made when first read: an abort that came before then is not lost.
describe('an async attempt whose app reads its signal only after the stop', () => {
  it('finds it aborted, with the stop as its reason', async () => {
    const running = deferred();
    const gate = deferred();
    const seen: unknown[] = [];
    const handler = createFcHandler(
      async (req, res) => {
        running.resolve();
        await gate.promise;
        const signal = getInvocation(req)?.signal;
        seen.push(signal?.aborted, (signal?.reason as { code?: string } | undefined)?.code);
        res.end('late');
      },
      { logger: memoryLogger(), env: {}, async: { mode: 'local' } },
    );
    try {
      await handler(asyncEvent({ taskId: 'late_reader' }), context);
      await running.promise;
      expect((await handler.tasks.stop('late_reader')).status).toBe('Stopping');
      gate.resolve();
      await handler.drain();
      expect(seen).toEqual([true, 'Stopped']);
      expect((await handler.tasks.get('late_reader'))?.status).toBe('Stopped');
    } finally {
      await handler.close({ timeoutMs: 0 });
    }
  });
});
