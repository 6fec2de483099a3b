import { inspect } from 'node:util';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { buildInvocation, createTracing, detectInvocation } from '../src/index.js';
import { createSdk, only, type Sdk } from './tracing-setup.js';

const headers = {
  'x-fc-request-id': '1-64f6d6e7-e01edb1cce58240ed59b59d9',
  authorization: 'Bearer secret-token-42',
  cookie: 'session=secret-cookie-42',
};
const request = { method: 'GET', url: '/users/7?token=secret-query-42', headers };
const invocationOf = () => buildInvocation(detectInvocation(headers), headers, undefined, {});

let sdk: Sdk;
beforeEach(() => {
  sdk = createSdk();
});
afterEach(async () => {
  await sdk.uninstall();
});

describe('which invocation a span belongs to', () => {
  it('isTracing() holds from setInvocation() until the span ends, for the tracing that started it only', () => {
    const tracing = createTracing();
    const other = createTracing();
    const invocation = invocationOf();
    const span = tracing.startInvocationSpan(request);
    expect(tracing.isTracing(invocation)).toBe(false);
    span?.setInvocation(invocation);
    expect(tracing.isTracing(invocation)).toBe(true);
    expect(other.isTracing(invocation)).toBe(false);
    expect(tracing.isTracing({ ...invocation })).toBe(false);
    span?.end({ statusCode: 200 });
    expect(tracing.isTracing(invocation)).toBe(false);
  });

  it('leaves the invocation as the app sees it: no new key, nothing of the span or the request in inspect()', () => {
    const tracing = createTracing();
    const invocation = invocationOf();
    const keys = Reflect.ownKeys(invocation);
    const printed = inspect(invocation, { depth: 5 });
    const span = tracing.startInvocationSpan(request);
    span?.setInvocation(invocation);
    expect(Reflect.ownKeys(invocation)).toEqual(keys);
    expect(inspect(invocation, { depth: 5 })).toBe(printed);
    expect(JSON.stringify(invocation)).not.toContain('secret');
    span?.end({ statusCode: 200 });
  });

  it('a frozen invocation is traced too', () => {
    const tracing = createTracing();
    const invocation = Object.freeze(invocationOf());
    const span = tracing.startInvocationSpan(request);
    span?.setInvocation(invocation);
    expect(tracing.isTracing(invocation)).toBe(true);
    span?.end({ statusCode: 200 });
    expect(tracing.isTracing(invocation)).toBe(false);
    expect(only(sdk.spans(), 'GET').attributes['faas.invocation_id']).toBe(headers['x-fc-request-id']);
  });

  it('a second span on the same invocation takes it over; the first ending does not release it', () => {
    const tracing = createTracing();
    const invocation = invocationOf();
    const first = tracing.startInvocationSpan(request);
    const second = tracing.startInvocationSpan(request);
    first?.setInvocation(invocation);
    second?.setInvocation(invocation);
    first?.end({ statusCode: 200 });
    expect(tracing.isTracing(invocation)).toBe(true);
    second?.end({ statusCode: 200 });
    expect(tracing.isTracing(invocation)).toBe(false);
  });
});
