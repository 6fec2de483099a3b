import { describe, expect, it } from 'vitest';
import { asyncEvent, context, event, type Listener, setup } from './helpers.js';

// An app that ends the connection itself: as a real connection's close, the invocation ends then.
const apps: [string, Listener][] = [
  ['drops the request with req.socket.end()', (req) => void req.socket.end()],
  [
    'writes an answer by hand on res.socket, then ends it',
    (_req, res) => {
      res.socket?.write('HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nhi');
      res.socket?.end();
    },
  ],
];

describe('an app that ends the connection before its response ended', () => {
  it.each(apps)('%s: the async attempt fails at once, one onFailure record', async (_, app) => {
    // Before: the attempt waited out timeoutSeconds and was recorded as a timeout.
    const { handler, failures, successes } = setup(app, { maxAsyncRetryAttempts: 0, timeoutSeconds: 10 });
    expect((await handler(asyncEvent({ taskId: 'ended' }), context)).statusCode).toBe(202);
    await handler.drain();
    expect(await handler.tasks.get('ended')).toMatchObject({
      status: 'Failed',
      taskErrorMessage: 'The app ended the connection before its response ended',
    });
    expect(failures.map((r) => r.requestContext.condition)).toEqual(['UnhandledInvocationError']);
    expect(successes).toHaveLength(0);
    await handler.close();
  });

  it('a sync invocation is answered the generic 500 at once', async () => {
    const { handler } = setup((req) => void req.socket.end());
    const result = await handler(event(), context);
    expect(result.statusCode).toBe(500);
    expect(result.body).not.toContain('ended the connection');
    await handler.close();
  });

  it('ending the connection after the response ended changes nothing', async () => {
    const { handler, successes } = setup((req, res) => {
      res.end('done');
      req.socket.end();
    });
    await handler(asyncEvent({ taskId: 'after' }), context);
    await handler.drain();
    expect((await handler.tasks.get('after'))?.status).toBe('Succeeded');
    expect(successes.map((r) => r.responsePayload)).toEqual(['done']);
    await handler.close();
  });
});
