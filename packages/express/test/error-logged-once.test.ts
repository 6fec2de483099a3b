import { fcHttpEvent } from '@fc-async/core';
import express from 'express';
import { describe, expect, it } from 'vitest';
import { createHandler } from '../src/index.js';

/** The error lines a handler logs: message, request id, error message. */
function errorLog() {
  const lines: [string, unknown, string][] = [];
  const none = () => {};
  return {
    lines,
    debug: none,
    info: none,
    warn: none,
    error: (message: string, fields?: Record<string, unknown>) =>
      void lines.push([message, fields?.requestId, (fields?.error as Error | undefined)?.message ?? '']),
  };
}

function halfAnswered() {
  const app = express();
  app.get('/half', (_req, res, next) => {
    res.write('partial');
    next(new Error('late'));
  });
  return app;
}

describe('an Express error after the response started is logged once, with its request id', () => {
  it('a sync call', async () => {
    const log = errorLog();
    const r = await createHandler(halfAnswered(), { logger: log, env: {} })(fcHttpEvent({ url: '/half' }), {
      requestId: 'req-half-1',
    });
    expect(r.statusCode).toBe(500);
    expect(log.lines).toEqual([['express app failed', 'req-half-1', 'late']]);
  });

  it('an async attempt', async () => {
    const log = errorLog();
    const handler = createHandler(halfAnswered(), { logger: log, env: {}, async: { maxAsyncRetryAttempts: 0 } });
    const accepted = await handler(fcHttpEvent({ url: '/half', headers: { 'x-fc-invocation-type': 'Async' } }), {
      requestId: 'req-half-2',
    });
    expect(accepted.statusCode).toBe(202);
    await handler.drain();
    expect((await handler.tasks.get('req-half-2'))?.status).toBe('Failed');
    expect(log.lines).toEqual([['express app failed', 'req-half-2', 'late']]);
    await handler.close({ timeoutMs: 1000 });
  });
});
