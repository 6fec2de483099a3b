import { once } from 'node:events';
import { connect } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Emulator, startEmulator } from '../src/index.js';
import { fixture, waitFor } from './helpers.js';

// Clients that half-close after their request (`nc -N`, an HTTP/1.0 client's shutdown(SHUT_WR))
// and wait for the answer: a custom runtime and a built-in runtime answer them alike, on the
// trigger and on the control port. Each function of the fixture answers after a moment, as a
// real invocation does (Node's default ended the socket before such an answer).

type Answer = { status: number; headers: Record<string, string>; body: string };

let emulator: Emulator;
const log: Record<string, unknown>[] = [];

beforeAll(async () => {
  emulator = await startEmulator({
    config: fixture('half-close/s.yaml'),
    port: 0,
    controlPort: 0,
    logFormat: 'json',
    output: (text) => {
      for (const line of text.split('\n')) if (line) log.push(JSON.parse(line) as Record<string, unknown>);
    },
  });
}, 60_000);

afterAll(async () => {
  await emulator?.close({ timeoutMs: 3000 });
});

/** A raw HTTP/1.1 message to `url`'s host: `head` lines, then `body`. */
function message(url: string, head: string[], body = ''): string {
  const lines = [...head, `host: ${new URL(url).host}`];
  if (body || head[0]?.startsWith('POST')) lines.push(`content-length: ${Buffer.byteLength(body)}`);
  return `${lines.join('\r\n')}\r\n\r\n${body}`;
}

/**
 * Sends `request` on a new connection, half-closes it at once, and resolves with the answer once
 * the emulator has ended its side too (an emulator that ends it without an answer gives status 0).
 */
async function halfClosed(url: string, request: string): Promise<Answer> {
  const { hostname, port } = new URL(url);
  const socket = connect({ host: hostname, port: Number(port), allowHalfOpen: true });
  await once(socket, 'connect');
  const chunks: Buffer[] = [];
  socket.on('data', (chunk: Buffer) => chunks.push(chunk));
  const ended = once(socket, 'end');
  socket.end(request);
  await ended;
  socket.destroy();
  return parse(Buffer.concat(chunks).toString('utf8'));
}

/** One HTTP/1.1 answer with a Content-Length body (what the emulator sends). */
function parse(text: string): Answer {
  const split = text.indexOf('\r\n\r\n');
  if (split < 0) return { status: 0, headers: {}, body: text };
  const [statusLine = '', ...lines] = text.slice(0, split).split('\r\n');
  const headers: Record<string, string> = {};
  for (const line of lines) {
    const colon = line.indexOf(':');
    headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
  }
  return { status: Number(statusLine.split(' ')[1]), headers, body: text.slice(split + 4) };
}

describe.each(['custom', 'builtin'])('a client that half-closes after its request, %s runtime', (fn) => {
  const trigger = () => emulator.triggerUrl;

  it('gets the answer of a sync GET', async () => {
    const answer = await halfClosed(trigger(), message(trigger(), [`GET /${fn}/hello HTTP/1.1`]));
    expect(answer.status).toBe(200);
    expect(JSON.parse(answer.body)).toEqual({ runtime: fn, method: 'GET', path: '/hello', body: '', taskId: null });
  });

  it('gets the answer of a sync POST with a body', async () => {
    const request = message(trigger(), [`POST /${fn}/echo HTTP/1.1`, 'content-type: application/json'], '{"n":1}');
    const answer = await halfClosed(trigger(), request);
    expect(answer.status).toBe(200);
    expect(JSON.parse(answer.body)).toEqual({
      runtime: fn,
      method: 'POST',
      path: '/echo',
      body: '{"n":1}',
      taskId: null,
    });
  });

  it('gets 202 for an async POST, and the task succeeds with the answer', async () => {
    const taskId = `half_${fn}`;
    const head = [
      `POST /${fn}/job HTTP/1.1`,
      'content-type: application/json',
      'x-fc-invocation-type: Async',
      `x-fc-async-task-id: ${taskId}`,
    ];
    const answer = await halfClosed(trigger(), message(trigger(), head, '{"n":2}'));
    expect(answer.status).toBe(202);
    expect(answer.headers['x-fc-async-task-id']).toBe(taskId);
    const task = await waitFor(async () => {
      const res = await fetch(`${emulator.controlUrl}/2023-03-30/functions/${fn}/async-tasks/${taskId}`);
      const t = (await res.json()) as { status: string; returnPayload?: string };
      return ['Succeeded', 'Failed', 'Stopped'].includes(t.status) ? t : undefined;
    });
    expect(task.status).toBe('Succeeded');
    expect(JSON.parse(task.returnPayload as string)).toEqual({
      runtime: fn,
      method: 'POST',
      path: '/job',
      body: '{"n":2}',
      taskId,
    });
  });

  it('gets the answer of a sync InvokeFunction on the control port', async () => {
    const event = JSON.stringify({
      version: 'v1',
      rawPath: '/invoked',
      headers: {},
      queryParameters: {},
      body: '{"n":3}',
      isBase64Encoded: false,
      requestContext: { http: { method: 'POST', path: '/invoked' } },
    });
    const control = emulator.controlUrl;
    const answer = await halfClosed(
      control,
      message(control, [`POST /2023-03-30/functions/${fn}/invocations HTTP/1.1`], event),
    );
    expect(answer.status).toBe(200);
    expect(answer.headers['x-fc-http-status']).toBe('200');
    expect(JSON.parse(answer.body)).toEqual({
      runtime: fn,
      method: 'POST',
      path: '/invoked',
      body: '{"n":3}',
      taskId: null,
    });
  });
});

describe('a client that closes both ways during a sync call to a custom runtime', () => {
  it('is not answered; the call runs to its end in the child, is logged, and the emulator goes on', async () => {
    const { hostname, port } = new URL(emulator.triggerUrl);
    const socket = connect({ host: hostname, port: Number(port), allowHalfOpen: true });
    await once(socket, 'connect');
    const closed = once(socket, 'close');
    socket.write(message(emulator.triggerUrl, ['GET /custom/slow?ms=500 HTTP/1.1']));
    await waitFor(() => log.find((l) => l.message === 'custom: slow: started'));
    socket.destroy();
    await closed;
    const call = await waitFor(() => log.find((l) => l.kind === 'invocation' && l.path === '/slow'));
    // FC's invocation is not the client's connection: the child's request is not closed.
    expect(call).toMatchObject({ function: 'custom', type: 'Sync', status: 200 });
    expect(log.filter((l) => String(l.message).includes('closed before the answer'))).toEqual([]);
    expect(log.filter((l) => l.level === 'error')).toEqual([]);
    const next = await halfClosed(emulator.triggerUrl, message(emulator.triggerUrl, ['GET /custom/after HTTP/1.1']));
    expect(next.status).toBe(200);
  });
});
