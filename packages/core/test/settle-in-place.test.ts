import { describe, expect, it } from 'vitest';
import { createFcHandler, type DestinationRecord, type EngineEvent, getInvocation } from '../src/index.js';
import { asyncEvent, context, memoryLogger } from './helpers.js';

// A local task whose end calls no destination is settled in place (the engine's settledBare): what
// its subscribers, drain() and maxQueuedTasks see is what a settle through a destination shows.
describe('a local task whose end has no destination to call', () => {
  it('tells finished once, before drain() resolves, and frees its maxQueuedTasks room, whichever way it ends', async () => {
    const successes: DestinationRecord[] = [];
    const handler = createFcHandler(
      (req, res) => {
        if (req.url === '/fail') throw new Error('boom');
        if (req.url === '/wait') {
          // Ends on its stop only.
          const signal = getInvocation(req)?.signal;
          signal?.addEventListener('abort', () => res.destroy(signal.reason as Error));
          return;
        }
        res.end('ok');
      },
      {
        logger: memoryLogger(),
        env: {},
        async: { mode: 'local', concurrency: 1, maxQueuedTasks: 1, maxAsyncRetryAttempts: 0 },
        // onSuccess only: a failed or stopped task has nothing to call.
        destinations: { onSuccess: (r) => void successes.push(r) },
      },
    );
    const told: string[] = [];
    handler.engine?.subscribe((e: EngineEvent) => {
      if (e.type === 'finished') told.push(`${e.taskId} ${e.status} ${e.condition} ${e.attempts}`);
      if (e.type === 'started' && e.taskId === 'stopped') void handler.tasks.stop('stopped');
    });
    try {
      for (const [taskId, path] of [
        ['failed', '/fail'],
        ['stopped', '/wait'],
        ['succeeded', '/ok'],
      ] as const) {
        // One task counted at a time: a 429 here would be a task ended and still counted.
        expect((await handler(asyncEvent({ taskId, path }), context)).statusCode).toBe(202);
        await handler.drain();
        told.push(`drained ${taskId}`);
      }
      expect(told).toEqual([
        'failed Failed UnhandledInvocationError 1',
        'drained failed',
        'stopped Stopped Stopped 1',
        'drained stopped',
        'succeeded Succeeded  1',
        'drained succeeded',
      ]);
      expect(successes.map((r) => r.requestContext.requestId)).toHaveLength(1);
    } finally {
      await handler.close({ timeoutMs: 0 });
    }
  });

  it('a drain() and a close() asked by a finished subscriber resolve, the task ended', async () => {
    const handler = createFcHandler((_req, res) => res.end('ok'), {
      logger: memoryLogger(),
      env: {},
      async: { mode: 'local' },
    });
    let closing: Promise<void> | undefined;
    let drained: Promise<void> | undefined;
    const finished = new Promise<void>((resolve) => {
      handler.engine?.subscribe((e: EngineEvent) => {
        if (e.type !== 'finished') return;
        drained = handler.drain();
        closing = handler.close({ timeoutMs: 1000 });
        resolve();
      });
    });
    expect((await handler(asyncEvent({ taskId: 'last' }), context)).statusCode).toBe(202);
    await finished;
    await drained;
    await closing;
    expect((await handler.tasks.get('last'))?.status).toBe('Succeeded');
  });
});
