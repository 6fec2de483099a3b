import { once } from 'node:events';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { type AddressInfo, connect } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { type BridgeResponse, createFcHandler, createFcRuntime, type FcServer, listenFc } from '../src/index.js';
import { memoryLogger } from './helpers.js';

const servers: Server[] = [];
const open: FcServer[] = [];
afterEach(async () => {
  for (const s of open.splice(0)) await s.close();
  for (const s of servers.splice(0)) {
    s.closeAllConnections();
    await new Promise((r) => s.close(r));
  }
});

/** A loopback server running `listener`; resolves with its port. */
async function serve(listener: (req: IncomingMessage, res: ServerResponse) => unknown): Promise<number> {
  const server = createServer(listener);
  servers.push(server);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return (server.address() as AddressInfo).port;
}

describe('the middleware runtime, when the client left before the body was read', () => {
  it('settles an async request with 400 RequestAborted instead of waiting forever', async () => {
    // What an earlier async middleware (auth, rate limit) does: the client is gone by the time
    // fc-async reads the body, so the body's `data`, `end` and `close` events have all passed.
    const runtime = createFcRuntime({ logger: memoryLogger(), env: {} });
    let settle!: (answer: BridgeResponse | undefined) => void;
    const answered = new Promise<BridgeResponse | undefined>((r) => {
      settle = r;
    });
    const port = await serve(async (req, res) => {
      await new Promise((r) => req.once('close', r));
      settle(await runtime.handle(req, { app: {}, listener: () => () => undefined }, res));
    });
    const socket = connect(port, '127.0.0.1');
    await once(socket, 'connect');
    socket.write('POST /job HTTP/1.1\r\nhost: x\r\nx-fc-invocation-type: Async\r\ncontent-length: 100\r\n\r\n{"half":');
    setImmediate(() => socket.destroy());
    const answer = await answered;
    expect(answer?.statusCode).toBe(400);
    expect(JSON.parse(String(answer?.body))).toMatchObject({ code: 'RequestAborted' });
    await runtime.close({ timeoutMs: 50 });
  }, 5_000);
});

describe('listen(): signals', () => {
  it('refuses a signal that cannot be caught, or a misspelt one, before it listens', async () => {
    const probe = createServer();
    await new Promise<void>((r) => probe.listen(0, '127.0.0.1', r));
    const { port } = probe.address() as AddressInfo;
    await new Promise((r) => probe.close(r));
    const options = { logger: memoryLogger(), host: '127.0.0.1', port };
    const ok = (_req: IncomingMessage, res: ServerResponse) => res.end('ok');
    for (const signals of [['SIGKILL'], ['SIGTERM', 'SIGTREM'], ['SIGSTOP'], [undefined]]) {
      await expect(listenFc(ok, { ...options, signals: signals as NodeJS.Signals[] })).rejects.toThrow(
        new TypeError(
          `Expected \`signals\` to be an array of signal names a process can catch, got \`${signals.at(-1)}\``,
        ),
      );
    }
    // Nothing was left listening: the port is still free.
    const fc = await listenFc(ok, { ...options, signals: [] });
    open.push(fc);
    expect(fc.port).toBe(port);
  });
});

describe('tasks.list() with a query of the wrong shape', () => {
  it('answers 400 InvalidArgument naming the field, never a TypeError from inside', async () => {
    const handler = createFcHandler((_req, res) => res.end('ok'), { logger: memoryLogger(), env: {} });
    const runtime = createFcRuntime({ logger: memoryLogger(), env: {} });
    const bad: [unknown, string][] = [
      [null, 'query must be an object, got null'],
      [5, 'query must be an object, got 5'],
      ['Failed', 'query must be an object, got the string "Failed"'],
      [[], 'query must be an object, got an array'],
      [{ status: 'Succeded' }, 'status must be one of Enqueued, Dequeued, Running'],
      [{ status: 7 }, 'status must be one of'],
      [{ prefix: 7 }, 'prefix must be a string, got 7'],
      [{ includePayload: 'yes' }, 'includePayload must be a boolean, got the string "yes"'],
      // A web route passing its query string on: every value a string, named as one.
      [{ limit: '100' }, 'limit must be an integer from 1 to 100, got the string "100"'],
      [
        { startedTimeBegin: '1700000000000' },
        'startedTimeBegin must be epoch milliseconds, got the string "1700000000000"',
      ],
      [{ sortOrderByTime: 'DESC' }, 'sortOrderByTime must be asc or desc, got the string "DESC"'],
    ];
    for (const tasks of [handler.tasks, runtime.tasks]) {
      for (const [query, message] of bad) {
        const listing = tasks.list(query as never);
        await expect(listing).rejects.toMatchObject({ code: 'InvalidArgument', statusCode: 400 });
        await expect(listing).rejects.toThrow(message);
      }
    }
    await handler.close({ timeoutMs: 50 });
    await runtime.close({ timeoutMs: 50 });
  });
});

describe('tasks.get() and tasks.stop() with a task id that is not a string', () => {
  it('reject with a TypeError naming taskId instead of answering "not found"', async () => {
    const handler = createFcHandler((_req, res) => res.end('ok'), { logger: memoryLogger(), env: {} });
    for (const id of [undefined, null, 42, {}, ['t1']]) {
      const expected = `Expected \`taskId\` to be a string, got \`${id === null ? 'null' : Array.isArray(id) ? 'array' : typeof id}\``;
      await expect(handler.tasks.get(id as never)).rejects.toThrow(new TypeError(expected));
      await expect(handler.tasks.stop(id as never)).rejects.toThrow(new TypeError(expected));
    }
    // An unknown id of the right type keeps its answers: undefined, and 404 AsyncTaskNotFound.
    expect(await handler.tasks.get('nope')).toBeUndefined();
    await expect(handler.tasks.stop('nope')).rejects.toMatchObject({ code: 'AsyncTaskNotFound', statusCode: 404 });
    await handler.close({ timeoutMs: 50 });
  });
});
