import { describe, expect, it } from 'vitest';
import { getInvocation, type Invocation } from '../src/index.js';
import { asyncEvent, event, setup } from './helpers.js';

describe("a local async attempt's invocation", () => {
  it('says how long the attempt may run (timeoutSeconds), as a sync call and a platform attempt say the function timeout', async () => {
    const seen: Invocation[] = [];
    const { handler } = setup(
      (req, res) => {
        seen.push(getInvocation(req)!);
        res.end('ok');
      },
      { timeoutSeconds: 45 },
    );
    const context = {
      requestId: undefined,
      region: 'cn-hangzhou',
      accountId: '123',
      function: { name: 'demo', timeout: 45 },
    };
    await handler(event({ method: 'GET', path: '/' }), context);
    await handler(asyncEvent({ method: 'POST', path: '/', taskId: 'budget_1' }), context);
    await handler.drain();
    expect(seen.map((i) => [i.type, i.timeoutSeconds])).toEqual([
      ['Sync', 45],
      ['Async', 45],
    ]);
    await handler.close({ timeoutMs: 1000 });
  });

  it("is the engine's attempt timeout (async.timeoutSeconds) that ends it, whatever the accepting call said", async () => {
    let seen: Invocation | undefined;
    const { handler } = setup(
      (req, res) => {
        seen = getInvocation(req);
        res.end('ok');
      },
      { timeoutSeconds: 5 },
    );
    await handler(asyncEvent({ method: 'POST', path: '/', taskId: 'budget_2' }), {
      requestId: undefined,
      function: { name: 'demo', timeout: 600 },
    });
    await handler.drain();
    expect([seen?.source, seen?.timeoutSeconds]).toEqual(['local-queue', 5]);
    await handler.close({ timeoutMs: 1000 });
  });
});
