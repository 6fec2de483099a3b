import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { describe, expect, it } from 'vitest';
import { asyncEvent, context, deferred, setup, until } from './helpers.js';

/** A body without end: it holds as much memory as the app is let write. */
function endless(): Readable {
  return new Readable({
    read() {
      setImmediate(() => this.push(Buffer.alloc(64 * 1024, 97)));
    },
  });
}

// An app that ignores its invocation's abort and goes on writing after the engine ended its attempt.
describe('an async attempt over while its app still writes', () => {
  it('timed out: the response is let go of, so a body piped into it stops', async () => {
    const piped = deferred<unknown>();
    const { handler, failures } = setup(
      (_req, res) => {
        res.setHeader('content-type', 'application/octet-stream');
        pipeline(endless(), res).then(piped.resolve, piped.resolve);
      },
      { maxAsyncRetryAttempts: 0, timeoutSeconds: 1 },
    );
    await handler(asyncEvent({ taskId: 'endless' }), context);
    await handler.drain();
    expect((await handler.tasks.get('endless'))?.status).toBe('Failed');
    expect(failures.map((r) => r.requestContext.condition)).toEqual(['InvocationError']);
    // Before: the pipe went on, and the bridge kept every chunk, for as long as the app ran.
    expect(await piped.promise).toMatchObject({ message: expect.any(String) });
    await handler.close();
  });

  it('stopped, past its grace: the app’s later writes are refused, not kept', async () => {
    const refused = deferred<unknown>();
    let timer: NodeJS.Timeout | undefined;
    const { handler, failures } = setup(
      (_req, res) => {
        timer = setInterval(() => {
          res.write(Buffer.alloc(1024, 98), (error) => {
            if (error) refused.resolve(error);
          });
        }, 5);
      },
      { maxAsyncRetryAttempts: 0, stopGraceMs: 20 },
    );
    try {
      await handler(asyncEvent({ taskId: 'writer' }), context);
      await until('the attempt to run', async () => (await handler.tasks.get('writer'))?.status === 'Running');
      await handler.tasks.stop('writer');
      await handler.drain();
      expect((await handler.tasks.get('writer'))?.status).toBe('Stopped');
      expect(failures.map((r) => r.requestContext.condition)).toEqual(['Stopped']);
      expect(await refused.promise).toMatchObject({ code: 'ERR_STREAM_DESTROYED' });
    } finally {
      clearInterval(timer);
      await handler.close();
    }
  });

  it('an attempt that answered keeps its answer', async () => {
    const { handler, successes } = setup((_req, res) => res.end('done'), { maxAsyncRetryAttempts: 0 });
    await handler(asyncEvent({ taskId: 'answered' }), context);
    await handler.drain();
    expect(successes.map((r) => r.responsePayload)).toEqual(['done']);
    await handler.close();
  });
});
