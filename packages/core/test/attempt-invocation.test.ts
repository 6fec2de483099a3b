import { describe, expect, it } from 'vitest';
import { getInvocation, type Invocation } from '../src/index.js';
import { asyncEvent, context, event, setup } from './helpers.js';

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

// FC gives an attempt the context it gives a sync call. An attempt of the local queue rebuilt its
// invocation from the task's ARN alone: account id 0 and region `local` (the ARN's stand-ins for
// none) read as '', and no memoryMB (nor versionId).
describe("a local async attempt's invocation, against a sync call's", () => {
  const identity = (i: Invocation) => ({
    functionName: i.functionName,
    region: i.region,
    accountId: i.accountId,
    qualifier: i.qualifier,
    versionId: i.versionId,
    memoryMB: i.memoryMB,
  });

  it.each([
    [
      'the FC headers of the call',
      {
        'x-fc-function-name': 'demo',
        'x-fc-region': 'local',
        'x-fc-account-id': '0',
        'x-fc-function-memory': '512',
        'x-fc-version-id': '3',
      },
      {},
    ],
    ['the environment', {}, { FC_FUNCTION_NAME: 'demo', FC_ACCOUNT_ID: '0', FC_FUNCTION_MEMORY_SIZE: '256' }],
  ])('carries the same account, region, memory and version, from %s', async (_from, headers, env) => {
    const seen: Invocation[] = [];
    const { handler } = setup(
      (req, res) => {
        seen.push(getInvocation(req)!);
        res.end('ok');
      },
      {},
      { env },
    );
    await handler(event({ method: 'POST', path: '/', headers }));
    await handler(asyncEvent({ method: 'POST', path: '/', taskId: 'same_1', headers }));
    await handler.drain();
    expect(seen.map((i) => i.type)).toEqual(['Sync', 'Async']);
    expect(seen[0]?.accountId).toBe('0');
    expect(seen[0]?.memoryMB).toBeGreaterThan(0);
    expect(identity(seen[1] as Invocation)).toEqual(identity(seen[0] as Invocation));
    await handler.close({ timeoutMs: 1000 });
  });

  it("carries the same memory and version from FC's context, where a built-in runtime gives them", async () => {
    // FC 3.0's event brings the caller's headers only: the function's memory and version are in
    // the context (a handler with `async.mode: 'local'` on FC, or a test that passes FC's context).
    const seen: Invocation[] = [];
    const { handler } = setup((req, res) => {
      seen.push(getInvocation(req)!);
      res.end('ok');
    });
    const fc = {
      ...context,
      function: { name: 'demo', memory: 1024 },
      service: { qualifier: 'prod', versionId: '7' },
    };
    await handler(event({ method: 'GET', path: '/' }), fc);
    await handler(asyncEvent({ method: 'POST', path: '/', taskId: 'same_3' }), fc);
    await handler.drain();
    expect(seen.map((i) => [i.type, i.memoryMB, i.versionId])).toEqual([
      ['Sync', 1024, '7'],
      ['Async', 1024, '7'],
    ]);
    expect(identity(seen[1] as Invocation)).toEqual(identity(seen[0] as Invocation));
    await handler.close({ timeoutMs: 1000 });
  });

  it("reads FC's empty version id (LATEST) as none, on a sync call as on an attempt", async () => {
    const seen: Invocation[] = [];
    const { handler } = setup((req, res) => {
      seen.push(getInvocation(req)!);
      res.end('ok');
    });
    const fc = { ...context, service: { qualifier: 'LATEST', versionId: '' } };
    await handler(event({ method: 'GET', path: '/' }), fc);
    await handler(asyncEvent({ method: 'POST', path: '/', taskId: 'same_2' }), fc);
    await handler.drain();
    expect(seen.map((i) => [i.type, i.versionId])).toEqual([
      ['Sync', undefined],
      ['Async', undefined],
    ]);
    await handler.close({ timeoutMs: 1000 });
  });
});
