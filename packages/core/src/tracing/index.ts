export type { InvocationSpan, InvocationSpanEnd } from './invocation-span.js';
export type {
  TracingOptions,
  TracingRequest,
  TracingRequestInfo,
  TracingResponseInfo,
} from './options.js';
export { extractFc2TraceContext } from './propagation.js';
export type { RouteOf } from './route.js';
export { createTracing, type Tracing } from './tracing.js';
