import { createHandler } from '@fc-async/express';
import { app } from './app.js';
import { sdk } from './instrumentation.js';

// FC 3.0 handler: every invocation is a span keyed by its request id. On FC, spans are
// flushed (at most flushTimeoutMs) before the handler returns, as FC may freeze the instance.
export const handler = createHandler(app, { tracing: { flushTimeoutMs: 3000 } });

// FC calls preStop before it stops the instance: the last spans go out.
export const preStop = () => sdk.shutdown();
