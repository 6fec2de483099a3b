import { createServer } from 'node:http';
import { connect, type Socket } from 'node:net';
import { until } from '@fc-async/test-kit/wait';
import { afterEach, describe, expect, it } from 'vitest';
import { EventHub } from '../src/control/dashboard.js';
import type { FunctionRegistry } from '../src/registry.js';

// The live stream under a pulse: the hub writes a turn's events to a stream together, and every
// event still reaches it, as a message of its own, in the order the engines emitted them.

type Listener = (event: Record<string, unknown>) => void;

const cleanup: (() => unknown)[] = [];
afterEach(async () => {
  for (const step of cleanup.splice(0).reverse()) await step();
});

/** A hub over two fake functions whose events the test emits, served on a free port. */
async function hubOf() {
  const listeners = new Map<string, Listener>();
  const fn = (name: string) => ({
    spec: { name },
    engine: {
      subscribe: (listener: Listener) => {
        listeners.set(name, listener);
        return () => listeners.delete(name);
      },
    },
  });
  const registry = { all: [fn('a'), fn('b')] } as unknown as FunctionRegistry;
  const hub = new EventHub(registry);
  let attached = 0;
  const server = createServer((req, res) => {
    hub.attach(req, res);
    attached++;
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  cleanup.push(() => new Promise((resolve) => server.close(resolve)));
  cleanup.push(() => server.closeAllConnections());
  cleanup.push(() => hub.close());
  const emit = (name: string, event: Record<string, unknown>) => listeners.get(name)?.(event);
  return { hub, port, emit, attached: () => attached };
}

/** A stream read from a raw socket: its messages' data, parsed, and whether it ended. */
function open(port: number, attached: () => number) {
  const socket: Socket = connect(port, '127.0.0.1');
  cleanup.push(() => socket.destroy());
  const before = attached();
  socket.write(`GET /api/events HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\n\r\n`);
  let text = '';
  socket.setEncoding('latin1');
  socket.on('data', (chunk: string) => {
    text += chunk;
  });
  return {
    ready: () => until(() => (attached() > before ? true : undefined), 'the stream to be attached'),
    /** The data of every message so far (chunked framing removed: data lines are what the page reads). */
    messages: () =>
      [...text.matchAll(/^data: (.*)$/gm)].map((m) => JSON.parse(m[1] as string) as Record<string, unknown>),
    /** The answer ended (its last, empty chunk came), or the connection closed. */
    ended: () => text.endsWith('\r\n0\r\n\r\n') || socket.destroyed,
  };
}

const accepted = (i: number) => ({ type: 'accepted', taskId: `t${i}`, requestId: `1-${i}`, delayMs: 0 });
const finished = (i: number) => ({ type: 'finished', taskId: `t${i}`, requestId: `1-${i}`, status: 'Succeeded' });

describe('the live stream under a burst of events', () => {
  it('delivers every event of a turn and of the next ones, each a message of its own, in order', async () => {
    const { port, emit, attached } = await hubOf();
    const stream = open(port, attached);
    await stream.ready();
    const sent: Record<string, unknown>[] = [];
    const send = (name: string, event: Record<string, unknown>) => {
      emit(name, event);
      sent.push({ function: name, ...event });
    };
    // Two functions' events interleaved in one turn, then more over the next turns.
    for (let i = 0; i < 2000; i++) send(i % 3 === 0 ? 'b' : 'a', accepted(i));
    for (let turn = 0; turn < 5; turn++) {
      await new Promise((resolve) => setImmediate(resolve));
      for (let i = 0; i < 300; i++) send('a', finished(turn * 300 + i));
    }
    await until(() => (stream.messages().length >= sent.length ? true : undefined), `${sent.length} messages`);
    expect(stream.messages()).toEqual(sent);
  });

  it('sends what happened before a shutdown to the streams before they end', async () => {
    const { hub, port, emit, attached } = await hubOf();
    const stream = open(port, attached);
    await stream.ready();
    for (let i = 0; i < 50; i++) emit('a', accepted(i));
    hub.close();
    await until(() => (stream.ended() ? true : undefined), 'the stream to end');
    expect(stream.messages().map((m) => m.taskId)).toEqual(Array.from({ length: 50 }, (_, i) => `t${i}`));
  });

  it('gives a stream opened during a turn the events after it, and the streams already open all of them', async () => {
    const { port, emit, attached } = await hubOf();
    const first = open(port, attached);
    await first.ready();
    for (let i = 0; i < 10; i++) emit('a', accepted(i));
    const second = open(port, attached);
    await second.ready();
    for (let i = 10; i < 20; i++) emit('a', accepted(i));
    await until(() => (first.messages().length >= 20 ? true : undefined), 'the first stream to get 20 messages');
    await until(() => (second.messages().length >= 10 ? true : undefined), 'the second stream to get 10 messages');
    expect(first.messages().map((m) => m.taskId)).toEqual(Array.from({ length: 20 }, (_, i) => `t${i}`));
    // t0..t9 happened before the second stream was open: it gets no backlog.
    expect(second.messages().map((m) => m.taskId)).toEqual(Array.from({ length: 10 }, (_, i) => `t${i + 10}`));
  });
});
