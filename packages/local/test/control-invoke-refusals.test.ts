import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Emulator } from '../src/index.js';
import { startEcho } from './helpers.js';

// InvokeFunction refusing an async call says when to try again, as the HTTP trigger does: its
// answer used to carry FC's code but drop the engine's Retry-After.

let emulator: Emulator;

beforeAll(async () => {
  emulator = await startEcho({ maxQueuedTasks: 1 });
});

afterAll(async () => {
  await emulator?.close({ timeoutMs: 100 });
});

const invokeAsync = () =>
  fetch(`${emulator.controlUrl}/2023-03-30/functions/echo/invocations`, {
    method: 'POST',
    headers: { 'x-fc-invocation-type': 'Async', 'x-fc-async-delay': '3599', 'content-type': 'application/json' },
    body: '{}',
  });

describe('InvokeFunction, async, with the queue full', () => {
  it('answers 429 ResourceThrottled with Retry-After: 1, like the trigger', async () => {
    expect((await invokeAsync()).status).toBe(202);
    const refused = await invokeAsync();
    expect([refused.status, refused.headers.get('retry-after')]).toEqual([429, '1']);
    expect(await refused.json()).toMatchObject({ Code: 'ResourceThrottled' });
    const viaTrigger = await fetch(`${emulator.triggerUrl}/`, {
      method: 'POST',
      headers: { 'x-fc-invocation-type': 'Async', 'x-fc-async-delay': '3599' },
      body: '{}',
    });
    expect([viaTrigger.status, viaTrigger.headers.get('retry-after')]).toEqual([429, '1']);
  });
});
