import { type AddressInfo, createServer, type Server, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import {
  createFcHandler,
  type Destination,
  fcFunctionDestination,
  functionDestination,
  httpDestination,
  TERMINAL_STATUSES,
} from '../src/index.js';
import { asyncEvent, context, memoryLogger, ok, tick } from './helpers.js';

// Destinations that go quiet (accept and never answer, trickle, never settle): each is cut at its
// own timeout, the task ends, its destination status says Failed, and close() is bounded.

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0)) await c();
});

const PENDING = 'still waiting';

function within<T>(work: Promise<T>, ms: number): Promise<T | typeof PENDING> {
  let timer: NodeJS.Timeout | undefined;
  const bound = new Promise<typeof PENDING>((resolve) => {
    timer = setTimeout(() => resolve(PENDING), ms);
  });
  return Promise.race([work, bound]).finally(() => clearTimeout(timer));
}

/** A loopback TCP server that accepts each connection and then does `behave` (or nothing) on it. */
async function quietServer(behave: (socket: Socket) => void = () => {}): Promise<string> {
  const sockets = new Set<Socket>();
  const server: Server = createServer((socket) => {
    sockets.add(socket);
    socket.on('error', () => undefined);
    socket.resume();
    behave(socket);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  cleanups.push(() => {
    for (const socket of sockets) socket.destroy();
    return new Promise((resolve) => server.close(resolve));
  });
  const address = server.address() as AddressInfo;
  return `http://127.0.0.1:${address.port}`;
}

/** Headers started, then one byte every 100 ms, never finishing. */
function trickle(socket: Socket): void {
  socket.write('HTTP/1.1 200 OK\r\n');
  const timer = setInterval(() => socket.write('x'), 100);
  socket.on('close', () => clearInterval(timer));
}

async function runOne(onSuccess: Destination) {
  const logger = memoryLogger();
  const handler = createFcHandler(ok, { logger, env: {}, async: { mode: 'local' }, destinations: { onSuccess } });
  cleanups.push(() => within(handler.close({ timeoutMs: 100 }), 5000));
  expect((await handler(asyncEvent({ taskId: 'quiet' }), context)).statusCode).toBe(202);
  const deadline = Date.now() + 8000;
  let task = await handler.tasks.get('quiet');
  while (Date.now() < deadline && !(task && TERMINAL_STATUSES.has(task.status) && task.destinationStatus)) {
    await tick(25);
    task = await handler.tasks.get('quiet');
  }
  const errors = logger.entries.filter((e) => e.level === 'error').map((e) => e.fields?.code);
  return { task: [task?.status, task?.destinationStatus], errors, handler };
}

describe('a destination that goes quiet is cut at its own timeout', () => {
  it('httpDestination to a receiver that takes the connection and never answers', async () => {
    const url = await quietServer();
    const { task, errors } = await runOne(httpDestination(url, { timeoutMs: 200, retries: 0 }));
    expect({ task, errors }).toEqual({ task: ['Succeeded', 'Failed'], errors: ['DestinationTimeout'] });
  }, 15_000);

  it('httpDestination to a receiver that starts its headers and trickles them forever', async () => {
    const url = await quietServer(trickle);
    const { task, errors } = await runOne(httpDestination(url, { timeoutMs: 200, retries: 0 }));
    expect({ task, errors }).toEqual({ task: ['Succeeded', 'Failed'], errors: ['DestinationTimeout'] });
  }, 15_000);

  it('fcFunctionDestination with a client whose call never settles (it ignores the SDK runtime timeouts)', async () => {
    let calls = 0;
    const client = {
      invokeFunctionWithOptions: () => {
        calls++;
        return new Promise<never>(() => {});
      },
    };
    const destination = fcFunctionDestination('acs:fc:cn-hangzhou:123:functions/dest-succ', client, {
      timeoutMs: 200,
      retries: 0,
    });
    const { task, errors } = await runOne(destination);
    expect({ task, errors, calls }).toEqual({
      task: ['Succeeded', 'Failed'],
      errors: ['DestinationTimeout'],
      calls: 1,
    });
  }, 15_000);

  it('fcFunctionDestination to an FC endpoint that trickles its answer headers', async () => {
    const url = await quietServer(trickle);
    const destination = fcFunctionDestination(
      'dest-succ',
      { accessKeyId: 'ak', accessKeySecret: 'sk', endpoint: url },
      { timeoutMs: 200, retries: 0 },
    );
    const { task, errors } = await runOne(destination);
    expect({ task, errors }).toEqual({ task: ['Succeeded', 'Failed'], errors: ['DestinationTimeout'] });
  }, 15_000);

  it('functionDestination whose promise never settles, with timeoutMs', async () => {
    const { task, errors } = await runOne(
      functionDestination(() => new Promise(() => {}), { timeoutMs: 200, retries: 0 }),
    );
    expect({ task, errors }).toEqual({ task: ['Succeeded', 'Failed'], errors: ['DestinationTimeout'] });
  }, 15_000);
});
