import { Readable } from 'node:stream';
import { fcHttpEvent } from '@fc-async/core';
import Koa from 'koa';
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

/** A body stream that fails: at once, or after its first chunk went out. */
function failingBody(afterFirstChunk: boolean): Readable {
  let sent = false;
  return new Readable({
    read() {
      if (!afterFirstChunk) return this.destroy(new Error('disk gone'));
      if (sent) return;
      sent = true;
      this.push('part');
      setImmediate(() => this.destroy(new Error('disk gone')));
    },
  });
}

describe('a Koa body stream that fails is logged once, with its request id', () => {
  it.each([
    ['before any byte', false],
    ['after the first chunk', true],
  ])('%s: a sync call', async (_, afterFirstChunk) => {
    const app = new Koa();
    app.use((ctx) => {
      ctx.type = 'text/plain';
      ctx.body = failingBody(afterFirstChunk);
    });
    const log = errorLog();
    const r = await createHandler(app, { logger: log, env: {} })(fcHttpEvent({ url: '/file' }), {
      requestId: 'req-stream-1',
    });
    expect(r.statusCode).toBe(500);
    expect(log.lines).toEqual([['koa app failed', 'req-stream-1', 'disk gone']]);
  });

  it('an async attempt', async () => {
    const app = new Koa();
    app.use((ctx) => {
      ctx.type = 'text/plain';
      ctx.body = failingBody(false);
    });
    const log = errorLog();
    const handler = createHandler(app, { logger: log, env: {}, async: { maxAsyncRetryAttempts: 0 } });
    const accepted = await handler(fcHttpEvent({ url: '/file', headers: { 'x-fc-invocation-type': 'Async' } }), {
      requestId: 'req-stream-2',
    });
    expect(accepted.statusCode).toBe(202);
    await handler.drain();
    expect((await handler.tasks.get('req-stream-2'))?.status).toBe('Failed');
    expect(log.lines).toEqual([['koa app failed', 'req-stream-2', 'disk gone']]);
    await handler.close({ timeoutMs: 1000 });
  });
});
