/**
 * A plain FC handler's own timeout (the emulator's backstop in its listeners) fires a moment after
 * the function's timeout, never with it: the invocation's deadline (a sync call's 504
 * FunctionTimeout, an async attempt's InvocationError) is what the caller and the task record get.
 * With both timers of one length, a loaded machine fired them in either order, and an attempt the
 * handler's timer ended first was recorded UnhandledInvocationError.
 */
import { afterEach, describe, expect, it, vi } from 'vitest';
import { callHandler, HANDLER_TIMEOUT_LAG_MS } from '../src/listeners.js';

afterEach(() => {
  vi.useRealTimers();
});

describe("a plain handler's own timeout", () => {
  it("leaves the function's timeout to the invocation's deadline, and gives the handler up a moment after", async () => {
    vi.useFakeTimers();
    let outcome: unknown;
    void callHandler(() => new Promise(() => {}), [], 1000).catch((error: unknown) => {
      outcome = error;
    });
    await vi.advanceTimersByTimeAsync(1000);
    expect(outcome).toBeUndefined();
    await vi.advanceTimersByTimeAsync(HANDLER_TIMEOUT_LAG_MS);
    expect(outcome).toMatchObject({ name: 'TimeoutError', message: 'Function timed out after 1 s' });
  });
});
