import { describe, expect, it } from 'vitest';
import { createFcHandler, type DestinationRecord, fcHttpEvent, getInvocation } from '../src/index.js';
import { memoryLogger } from './helpers.js';

// A local-mode handler called by a queue in front of it (a plain handler under `fc-async dev` that
// calls it, or FC with the mode forced to local): the built-in runtime's retry count on the
// context says the call was accepted already, so the handler runs the attempt, as platform mode
// does, instead of answering a second 202 and queuing it in an engine nobody watches.

function setup() {
  const successes: DestinationRecord[] = [];
  const failures: DestinationRecord[] = [];
  const runs: string[] = [];
  const handler = createFcHandler(
    (req, res) => {
      const invocation = getInvocation(req);
      runs.push(`${req.url} ${invocation?.type} ${invocation?.attempt}`);
      res.statusCode = req.url === '/fail' ? 500 : 200;
      res.setHeader('content-type', 'text/plain');
      res.end('done');
    },
    {
      env: {},
      logger: memoryLogger(),
      async: { maxAsyncRetryAttempts: 1 },
      destinations: { onSuccess: (r) => void successes.push(r), onFailure: (r) => void failures.push(r) },
    },
  );
  return { handler, successes, failures, runs };
}

const asyncEvent = (path: string) =>
  fcHttpEvent({ method: 'POST', url: path, headers: { 'x-fc-invocation-type': 'Async' }, body: '{}' });
const attempt = (retryCount: number) => ({ requestId: '1-6b0cf409-d2faa387355dad0342807567', retryCount });

describe('a local-mode handler given an attempt of a queue in front', () => {
  it('runs it and answers what the app answered, calling onSuccess', async () => {
    const { handler, successes, runs } = setup();
    const result = await handler(asyncEvent('/ok'), attempt(0));
    expect(result.statusCode).toBe(200);
    expect(result.body).toBe('done');
    expect(runs).toEqual(['/ok Async 0']);
    expect(successes).toHaveLength(1);
    expect(await handler.tasks.list()).toMatchObject({ tasks: [] });
  });

  it('throws for a failed attempt so that the queue retries it, and calls onFailure on the last one', async () => {
    const { handler, failures, runs } = setup();
    await expect(handler(asyncEvent('/fail'), attempt(0))).rejects.toThrow();
    expect(failures).toHaveLength(0);
    await expect(handler(asyncEvent('/fail'), attempt(1))).rejects.toThrow();
    expect(failures).toHaveLength(1);
    expect(runs).toEqual(['/fail Async 0', '/fail Async 1']);
  });

  it('still queues an async call without a retry count: its own 202', async () => {
    const { handler, runs } = setup();
    const result = await handler(asyncEvent('/ok'), { requestId: '1-6b0cf409-d2faa387355dad0342807568' });
    expect(result.statusCode).toBe(202);
    await handler.drain();
    expect(runs).toEqual(['/ok Async 0']);
  });
});
