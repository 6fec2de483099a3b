import type { Invocation } from '../invocation.js';
import type { InvocationSpanImpl } from './invocation-span.js';

/**
 * The SERVER span each invocation runs in, from `setInvocation()` until the span ends. Kept
 * beside the invocation, not on it: the app never sees the span (nor the request it holds)
 * through a logged, spread or cloned invocation. One map for the process: the route reader
 * finds the span as well as the tracing that made it.
 */
const open = new WeakMap<Invocation, InvocationSpanImpl>();

export function openSpan(invocation: Invocation, span: InvocationSpanImpl): void {
  open.set(invocation, span);
}

export function closeSpan(invocation: Invocation, span: InvocationSpanImpl): void {
  if (open.get(invocation) === span) open.delete(invocation);
}

/** The open SERVER span of an invocation, whichever tracing started it. */
export function openSpanOf(invocation: Invocation): InvocationSpanImpl | undefined {
  return typeof invocation === 'object' && invocation !== null ? open.get(invocation) : undefined;
}
