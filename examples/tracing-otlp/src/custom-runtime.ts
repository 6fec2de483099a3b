import { createServer } from 'node:http';
import { buildInvocation, createTracing, detectInvocation, setInvocation } from '@fc-async/core';
import { app } from './app.js';

const tracing = createTracing();

// A custom runtime (the app is an HTTP server on FC): the same SERVER span as createHandler's.
export const server = createServer((req, res) => {
  const request = { method: req.method ?? 'GET', url: req.url ?? '/', headers: req.headers };
  const span = tracing.startInvocationSpan({ ...request, remoteAddress: req.socket.remoteAddress });
  if (!span) return app(req, res); // no SDK: no span work at all
  try {
    const invocation = buildInvocation(detectInvocation(req.headers, process.env), req.headers, undefined, process.env);
    setInvocation(req, invocation);
    span.setInvocation(invocation); // request id, task id, FaaS attributes; requestHook
  } catch (error) {
    span.recordError(error); // an invalid x-fc-* header: the app decides what to answer
  }
  const route = () => (req as { route?: { path?: string } }).route?.path; // Express's matched route
  res.on('finish', () => span.end({ statusCode: res.statusCode, route: route() }));
  // Closed before the answer went out (the client left, FC's timeout): ERROR. After 'finish', a no-op.
  res.on('close', () => span.end({ route: route(), error: new Error('connection closed'), failed: true }));
  return span.run(() => app(req, res)); // the app runs with the span active
});
