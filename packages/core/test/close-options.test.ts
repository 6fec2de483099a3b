import { describe, expect, it } from 'vitest';
import { buildInvocation, createFcRuntime, detectInvocation, newRequestId } from '../src/index.js';

const silent = { debug() {}, info() {}, warn() {}, error() {} };

// The middleware remembers its close (listen()'s pre-stop and shutdown call it again): a close
// refused for its options must not be what every later close() answers.
describe('the custom-runtime middleware close(options)', () => {
  it.each<[string, unknown]>([
    ['an unknown key', { timeout: 10 }],
    ['a timeoutMs that is not a number', { timeoutMs: null }],
    ['options that are not an object', 'soon'],
  ])('refuses %s and still closes on a correct call after it', async (_label, options) => {
    const runtime = createFcRuntime({ logger: silent, env: {}, async: { mode: 'local' } });
    await expect(runtime.close(options as { timeoutMs?: number })).rejects.toThrow(TypeError);
    await expect(runtime.close({ timeoutMs: 10 })).resolves.toBeUndefined();
    // Closed for good: a new async request is refused with 503.
    const request = {
      method: 'POST',
      url: '/job',
      headers: { 'x-fc-invocation-type': 'Async' },
      body: Buffer.alloc(0),
      remoteAddress: '127.0.0.1',
      requestId: newRequestId(),
      receivedAt: Date.now(),
    };
    const invocation = buildInvocation(detectInvocation(request.headers), request.headers, undefined, {});
    await expect(runtime.engine?.accept(request, invocation)).rejects.toMatchObject({
      code: 'ServiceUnavailable',
      statusCode: 503,
    });
  });
});
