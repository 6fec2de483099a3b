import { describe, expect, it } from 'vitest';
import { createFcHandler } from '../src/index.js';
import { asyncEvent, context, deferred, memoryLogger, ok, tick, until } from './helpers.js';

describe('deliveries under way at once', () => {
  it('print no MaxListenersExceededWarning for the shutdown signal they all listen to', async () => {
    const warnings: Error[] = [];
    const onWarning = (warning: Error) => warnings.push(warning);
    process.on('warning', onWarning);
    const release = deferred();
    let called = 0;
    const handler = createFcHandler(ok, {
      logger: memoryLogger(),
      env: {},
      async: { mode: 'local', concurrency: 20 },
      destinations: {
        onSuccess: async () => {
          called++;
          await release.promise;
        },
      },
    });
    try {
      for (let i = 0; i < 15; i++) await handler(asyncEvent({ taskId: `slow_${i}` }), context);
      await until('the 15 destination calls', () => called === 15);
      await tick(10); // warnings are emitted on a later tick
      expect(warnings.filter((w) => w.name === 'MaxListenersExceededWarning')).toEqual([]);
    } finally {
      release.resolve();
      process.off('warning', onWarning);
      await handler.close({ timeoutMs: 1000 });
    }
  });
});
