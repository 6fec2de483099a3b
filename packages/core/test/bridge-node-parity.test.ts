// The bridged req/res against what Node's own http server does (checked on Node 20 with a real
// http.createServer): destroyed responses, unreadable thrown values, writeHead's header arrays and
// status, and a request body nobody read.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { describe, expect, test, vi } from 'vitest';
import {
  createConsoleLogger,
  createFcHandler,
  type FcHttpResult,
  fcHttpEvent,
  type Invocation,
  isFcAsyncError,
  isInvocationAbort,
  runNodeHandler,
  thrownError,
  thrownText,
} from '../src/index.js';
import { setup, tick } from './helpers.js';

type Listener = (req: IncomingMessage, res: ServerResponse) => unknown;

/** Keeps the `error` events `res` emits (an emit nobody listens to would end the test process). */
function errorsEmitted(res: ServerResponse): string[] {
  const seen: string[] = [];
  const emit = res.emit;
  res.emit = function (this: ServerResponse, name: string | symbol, ...args: unknown[]) {
    if (name === 'error') {
      seen.push((args[0] as { code?: string }).code ?? 'no code');
      return true;
    }
    return emit.call(this, name, ...args);
  } as typeof res.emit;
  return seen;
}

/** Runs `app` on a POST with an unread body; resolves with its answer (or the failure's message) once the events settled. */
async function run(app: Listener): Promise<unknown> {
  const answer = await runNodeHandler(app, {
    method: 'POST',
    url: '/',
    headers: { 'content-length': '3' },
    body: Buffer.from('xyz'),
  }).then(
    (response) => response.statusCode,
    (error: unknown) => `failed: ${(error as Error).message}`,
  );
  await tick(20);
  return answer;
}

function bodyText(result: FcHttpResult): string {
  return Buffer.from(result.body, result.isBase64Encoded ? 'base64' : 'utf8').toString();
}

function revokedProxy(): object {
  const { proxy, revoke } = Proxy.revocable({}, {});
  revoke();
  return proxy;
}

function errorWithThrowingName(): Error {
  const error = new Error('m');
  Object.defineProperty(error, 'name', {
    get() {
      throw new Error('name getter');
    },
  });
  return error;
}

describe('a destroyed response', () => {
  test('a write after req.socket.destroy() (Express finalhandler, headers sent) emits no error: its callback gets ERR_STREAM_DESTROYED', async () => {
    let errors: string[] = [];
    const callbacks: unknown[] = [];
    const { handler } = setup((req, res) => {
      errors = errorsEmitted(res);
      res.write('partial');
      req.socket.destroy();
      setTimeout(() => {
        const accepted = res.write('late chunk', (error) => callbacks.push((error as { code?: string })?.code));
        callbacks.push(accepted);
      }, 5);
    });
    const result = await handler(fcHttpEvent(), {});
    await tick(30);
    await handler.close();
    expect(result.statusCode).toBe(500);
    expect({ errors, callbacks }).toEqual({ errors: [], callbacks: [false, 'ERR_STREAM_DESTROYED'] });
  });

  test('a write after res.destroy() emits no error either', async () => {
    let errors: string[] = [];
    const answer = await run((_req, res) => {
      errors = errorsEmitted(res);
      res.write('a');
      res.destroy();
      setTimeout(() => res.write('late'), 1);
    });
    expect(answer).toBe('failed: The response was destroyed before it ended');
    expect(errors).toEqual([]);
  });

  test('a write after the app failed (the bridge gave its response up) emits no error', async () => {
    let errors: string[] = [];
    const answer = await run((_req, res) => {
      errors = errorsEmitted(res);
      res.write('a');
      setTimeout(() => res.write('late'), 1);
      return Promise.reject(new Error('boom'));
    });
    expect(answer).toBe('failed: boom');
    expect(errors).toEqual([]);
  });

  test('a write after the app ended the response still emits ERR_STREAM_WRITE_AFTER_END, as Node does', async () => {
    let errors: string[] = [];
    await run((_req, res) => {
      errors = errorsEmitted(res);
      res.end('a');
      res.write('b');
    });
    expect(errors).toEqual(['ERR_STREAM_WRITE_AFTER_END']);
  });

  test("res.destroy() closes the socket, the response and the request, in Node's order", async () => {
    const events: string[] = [];
    let destroyed: unknown;
    await run((req, res) => {
      req.socket.on('close', () => events.push('socket close'));
      res.on('close', () => events.push('res close'));
      req.on('aborted', () => events.push('req aborted'));
      req.on('error', (error) => events.push(`req error ${(error as { code?: string }).code}`));
      req.on('close', () => events.push('req close'));
      res.write('a');
      res.destroy();
      setTimeout(() => {
        destroyed = res.destroyed;
      }, 1);
    });
    expect(events).toEqual(['socket close', 'res close', 'req aborted', 'req error ECONNRESET', 'req close']);
    expect(destroyed).toBe(true);
  });

  test('req.socket.destroy() marks the response destroyed once it closed, as Node does', async () => {
    const seen: unknown[] = [];
    await run((req, res) => {
      res.on('close', () => seen.push(`close, destroyed ${res.destroyed}`));
      req.socket.destroy();
      seen.push(`sync, destroyed ${res.destroyed}`);
    });
    expect(seen).toEqual(['sync, destroyed false', 'close, destroyed true']);
  });

  test("a response ended, then destroyed, emits 'close' once", async () => {
    const events: string[] = [];
    await run((_req, res) => {
      res.on('close', () => events.push('res close'));
      res.end('ok');
      res.destroy();
    });
    expect(events).toEqual(['res close']);
  });
});

describe('a thrown value that cannot be read', () => {
  test('sync: an Error whose name getter throws answers 500', async () => {
    const { handler } = setup(() => {
      throw errorWithThrowingName();
    });
    await expect(handler(fcHttpEvent(), {})).resolves.toMatchObject({ statusCode: 500 });
    await handler.close();
  });

  test('sync: a revoked Proxy answers 500, also with the default JSON-lines logger', async () => {
    const stderr = vi.spyOn(process.stderr, 'write').mockImplementation(() => true);
    try {
      const handler = createFcHandler(
        () => {
          throw revokedProxy();
        },
        { logger: createConsoleLogger(), env: {} },
      );
      await expect(handler(fcHttpEvent(), {})).resolves.toMatchObject({ statusCode: 500 });
      expect(String(stderr.mock.calls[0]?.[0])).toContain('"error":"<Revoked Proxy>"');
    } finally {
      stderr.mockRestore();
    }
  });

  test('local async: a revoked Proxy fails the task and reaches onFailure', async () => {
    const { handler, failures } = setup(
      () => {
        throw revokedProxy();
      },
      { maxAsyncRetryAttempts: 0 },
    );
    const accepted = await handler(fcHttpEvent({ method: 'POST', headers: { 'x-fc-invocation-type': 'Async' } }), {});
    const taskId = accepted.headers['x-fc-async-task-id'] as string;
    const drained = await Promise.race([handler.drain().then(() => true), tick(2000).then(() => false)]);
    const task = await handler.tasks.get(taskId);
    await handler.close({ timeoutMs: 0, stopWithinMs: 50 });
    expect({ drained, status: task?.status, failures: failures.length }).toEqual({
      drained: true,
      status: 'Failed',
      failures: 1,
    });
  });

  test('local async: an Error whose name getter throws fails the task', async () => {
    const { handler, failures } = setup(
      () => {
        throw errorWithThrowingName();
      },
      { maxAsyncRetryAttempts: 0 },
    );
    await handler(fcHttpEvent({ method: 'POST', headers: { 'x-fc-invocation-type': 'Async' } }), {});
    await handler.drain();
    await handler.close();
    expect(failures.map((r) => r.responseContext.functionError)).toEqual(['UnhandledInvocationError']);
  });

  test('platform async: a revoked Proxy makes the handler throw UnhandledInvocationError, so that FC retries it', async () => {
    const { handler } = setup(
      () => {
        throw revokedProxy();
      },
      { mode: 'platform' },
    );
    await expect(
      handler(fcHttpEvent({ method: 'POST', headers: { 'x-fc-invocation-type': 'Async' } }), {
        retryCount: 0,
      } as never),
    ).rejects.toMatchObject({ code: 'UnhandledInvocationError' });
    await handler.close();
  });

  test('thrownError, thrownText, isFcAsyncError and isInvocationAbort never throw', () => {
    const proxy = revokedProxy();
    expect(thrownError(proxy).message).toBe('A thrown value that could not be read');
    expect(thrownText(proxy)).toEqual({ message: 'A thrown value that could not be read', name: 'Error' });
    expect(thrownText(errorWithThrowingName())).toEqual({ message: 'm', name: 'Error' });
    expect(isFcAsyncError(proxy)).toBe(false);
    expect(isFcAsyncError(errorWithThrowingName())).toBe(false);
    const stop = new AbortController();
    stop.abort(new Error('stopped'));
    const invocation = { signal: stop.signal } as Invocation;
    expect(isInvocationAbort(proxy, invocation)).toBe(false);
  });
});

describe('writeHead', () => {
  async function answer(app: Listener): Promise<FcHttpResult> {
    const { handler } = setup(app);
    const result = await handler(fcHttpEvent(), {});
    await handler.close();
    return result;
  }

  test('a flat header array replaces what setHeader set, and keeps a name it gives twice', async () => {
    const result = await answer((_req, res) => {
      res.setHeader('content-type', 'text/html');
      res.setHeader('x-a', '0');
      res.setHeader('x-kept', 'yes');
      res.writeHead(200, ['Content-Type', 'text/plain', 'x-a', '1', 'X-A', '2']);
      res.end('ok');
    });
    expect(result.headers).toMatchObject({ 'content-type': 'text/plain', 'x-a': '1, 2', 'x-kept': 'yes' });
  });

  test('an array of [name, value] pairs replaces what setHeader set too', async () => {
    const result = await answer((_req, res) => {
      res.setHeader('content-type', 'text/html');
      res.writeHead(200, [['Content-Type', 'text/plain']]);
      res.end('ok');
    });
    expect(result.headers['content-type']).toBe('text/plain');
  });

  test('a flat array of odd length throws ERR_INVALID_ARG_VALUE, and writes no head', async () => {
    const result = await answer((_req, res) => {
      let outcome = 'none';
      try {
        res.writeHead(200, ['X-A', '1', 'X-B']);
      } catch (error) {
        outcome = `${(error as Error).name} ${(error as { code?: string }).code} ${res.headersSent}`;
      }
      res.end(outcome);
    });
    expect(bodyText(result)).toBe('TypeError ERR_INVALID_ARG_VALUE false');
    expect(result.headers['x-a']).toBeUndefined();
  });

  test('the status sent is the one the head was written with, whatever res.statusCode says later', async () => {
    const written = await answer((_req, res) => {
      res.writeHead(201, { 'content-type': 'text/plain' });
      res.write('a');
      res.statusCode = 500;
      res.end('b');
    });
    const implicit = await answer((_req, res) => {
      res.statusCode = 202;
      res.write('a');
      res.statusCode = 500;
      res.end('b');
    });
    expect([written.statusCode, implicit.statusCode]).toEqual([201, 202]);
  });
});

describe('a request body nobody read', () => {
  test.each(['GET', 'POST'])("%s: req ends and closes after the response, in Node's order", async (method) => {
    const events: string[] = [];
    const { handler } = setup((req, res) => {
      req.on('end', () => events.push('req end'));
      req.on('close', () => events.push('req close'));
      res.on('finish', () => events.push('res finish'));
      res.on('close', () => events.push('res close'));
      res.end('ok');
    });
    await handler(fcHttpEvent({ method, body: method === 'POST' ? 'xyz' : undefined }), {});
    await tick(30);
    await handler.close();
    expect(events).toEqual(['res finish', 'res close', 'req end', 'req close']);
  });

  test('a paused request is read away too, without its data reaching a listener', async () => {
    const events: string[] = [];
    await run((req, res) => {
      req.pause();
      req.on('data', () => events.push('data'));
      req.on('close', () => events.push('req close'));
      res.end('ok');
    });
    expect(events).toEqual(['req close']);
  });

  test('a body the app reads is its own: the events come as they did', async () => {
    const events: string[] = [];
    await run((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (chunk: Buffer) => chunks.push(chunk));
      req.on('end', () => {
        events.push(`req end ${Buffer.concat(chunks).toString()}`);
        res.end('ok');
      });
      req.on('close', () => events.push('req close'));
      res.on('close', () => events.push('res close'));
    });
    expect(events).toEqual(['req end xyz', 'res close', 'req close']);
  });
});
