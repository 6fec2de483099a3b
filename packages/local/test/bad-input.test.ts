import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { type AddressInfo, connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import * as $dara from '@darabonba/typescript';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readBody } from '../src/body.js';
import { type Emulator, startEmulator } from '../src/index.js';
import { answerProtocolErrors } from '../src/protocol-errors.js';
import { $FC, sdk, sdkError, startEcho, waitFor } from './helpers.js';

/** Sends raw bytes and resolves with all the server wrote until it closed the connection (at most 10 s). */
function rawExchange(url: string, data: string): Promise<string> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve, reject) => {
    const socket = connect(Number(port), hostname);
    let out = '';
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`no close within 10 s, got: ${out.slice(0, 200)}`));
    }, 10_000);
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => {
      out += chunk;
    });
    socket.on('error', () => {});
    socket.on('close', () => {
      clearTimeout(timer);
      resolve(out);
    });
    socket.write(data);
  });
}

/** Status line and JSON body of a raw HTTP/1.1 answer. */
function parseAnswer(text: string): { status: number; headers: string; body: unknown } {
  const end = text.indexOf('\r\n\r\n');
  const head = text.slice(0, end);
  return {
    status: Number(head.split(' ')[1]),
    headers: head.toLowerCase(),
    body: JSON.parse(text.slice(end + 4)),
  };
}

/** Opens a request, sends part of its body, and drops the connection once the server holds it. */
function abortMidBody(url: string, head: string): Promise<void> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve) => {
    const socket = connect(Number(port), hostname);
    socket.on('error', () => {});
    socket.on('close', () => resolve());
    socket.write(`${head}\r\n\r\nab`, () => socket.destroy());
  });
}

describe('readBody', () => {
  let server: Server;
  let url: string;
  let settled: Promise<unknown>;
  beforeAll(async () => {
    let resolveSettled: (value: unknown) => void = () => {};
    settled = new Promise((resolve) => {
      resolveSettled = resolve;
    });
    server = createServer((req) => {
      readBody(req, 1024).then(resolveSettled, resolveSettled);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(() => new Promise((resolve) => server.close(resolve)));

  it('reports a client that drops the connection mid-body as a 400 RequestAborted, not an internal error', async () => {
    await abortMidBody(url, 'POST / HTTP/1.1\r\nHost: localhost\r\nContent-Length: 100');
    expect(await settled).toMatchObject({ name: 'FcAsyncError', code: 'RequestAborted', statusCode: 400 });
  });
});

describe('the emulator under malformed HTTP', () => {
  let emulator: Emulator;
  const lines: Record<string, unknown>[] = [];
  beforeAll(async () => {
    emulator = await startEcho({
      logFormat: 'json',
      output: (text) => {
        for (const line of text.split('\n')) if (line) lines.push(JSON.parse(line) as Record<string, unknown>);
      },
    });
  });
  afterAll(() => emulator.close());

  const stillAnswers = async () => {
    expect((await fetch(`${emulator.triggerUrl}/after`)).status).toBe(200);
    expect((await fetch(`${emulator.controlUrl}/api/functions`)).status).toBe(200);
  };

  it.each([
    ['an invalid Content-Length', 'POST / HTTP/1.1\r\nHost: localhost\r\nContent-Length: abc\r\n\r\n', 400],
    [
      'two different Content-Lengths',
      'POST / HTTP/1.1\r\nHost: localhost\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab',
      400,
    ],
    [
      'a bad chunk size',
      'POST / HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\r\nZZ\r\nab\r\n0\r\n\r\n',
      400,
    ],
    ['a header name with a space', 'GET / HTTP/1.1\r\nHost: localhost\r\nBad Name: x\r\n\r\n', 400],
    ['a head over 64 KB', `GET / HTTP/1.1\r\nHost: localhost\r\nX-Big: ${'a'.repeat(70_000)}\r\n\r\n`, 431],
  ])('answers %s on the trigger with a JSON { code, message }', async (_label, request, status) => {
    const answer = parseAnswer(await rawExchange(emulator.triggerUrl, request));
    expect(answer.status).toBe(status);
    expect(answer.headers).toContain('content-type: application/json');
    expect(answer.body).toEqual({
      code: status === 431 ? 'RequestHeaderFieldsTooLarge' : 'InvalidArgument',
      message: expect.stringMatching(/^The request is not valid HTTP\/1\.1: .+/),
    });
    await stillAnswers();
  });

  it('answers the same on the control plane as { Code, Message, RequestId }', async () => {
    const answer = parseAnswer(
      await rawExchange(emulator.controlUrl, 'POST / HTTP/1.1\r\nHost: localhost\r\nContent-Length: abc\r\n\r\n'),
    );
    expect(answer.status).toBe(400);
    expect(answer.body).toEqual({
      Code: 'InvalidArgument',
      Message: expect.stringMatching(/^The request is not valid HTTP\/1\.1: .+/),
      RequestId: expect.stringMatching(/^1-/),
    });
    expect(answer.headers).toContain(
      `x-fc-request-id: ${(answer.body as { RequestId: string }).RequestId}`.toLowerCase(),
    );
    await stillAnswers();
  });

  it('answers CONNECT 405 instead of dropping the connection', async () => {
    for (const base of [emulator.triggerUrl, emulator.controlUrl]) {
      const answer = parseAnswer(await rawExchange(base, 'CONNECT localhost:1 HTTP/1.1\r\nHost: localhost:1\r\n\r\n'));
      expect(answer.status).toBe(405);
      expect(JSON.stringify(answer.body)).toContain('MethodNotAllowed');
    }
    await stillAnswers();
  });

  it('answers HEAD /api/events at once, and serves the next request on the connection', async () => {
    const answer = await rawExchange(
      emulator.controlUrl,
      'HEAD /api/events HTTP/1.1\r\nHost: localhost\r\n\r\nGET /api/functions HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n',
    );
    const [head, second] = answer.split(/\r\n\r\n(?=HTTP\/1\.1)/);
    expect(head).toMatch(/^HTTP\/1\.1 200 OK\r\n/);
    expect(head?.toLowerCase()).toContain('content-type: text/event-stream');
    expect(parseAnswer(second ?? '')).toMatchObject({ status: 200, body: { functions: [{ name: 'echo' }] } });
  });

  it("holds requests to FC's trigger limits: headers up to 8 KB, path plus query up to 4 KB", async () => {
    const within = await fetch(`${emulator.triggerUrl}/${'p'.repeat(4000)}?q=1`, {
      headers: { 'x-big': 'a'.repeat(7 * 1024) },
    });
    expect(within.status).toBe(200);

    const bigHeaders = await fetch(`${emulator.triggerUrl}/hello`, { headers: { 'x-big': 'a'.repeat(9 * 1024) } });
    expect(bigHeaders.status).toBe(431);
    expect(await bigHeaders.json()).toEqual({
      code: 'RequestHeaderFieldsTooLarge',
      message: expect.stringMatching(/^The request headers are \d+ bytes, above FC's limit of 8192$/),
    });

    const longPath = await fetch(`${emulator.triggerUrl}/${'p'.repeat(4100)}`);
    expect(longPath.status).toBe(414);
    expect(await longPath.json()).toEqual({
      code: 'URITooLong',
      message: "The path plus query is 4101 bytes, above FC's limit of 4096",
    });
    await stillAnswers();
  });

  it("answers a path plus query Node's own head limit (16 KB) refused 414 too, as FC does", async () => {
    const longPath = await fetch(`${emulator.triggerUrl}/${'p'.repeat(17_000)}`);
    expect([longPath.status, ((await longPath.json()) as { code: string }).code]).toEqual([414, 'URITooLong']);
    await stillAnswers();
  });

  it('keeps every header line of a request (Node drops those past 1,000 without a word): under 8 KB served whole, over refused 431', async () => {
    // 1,200 short lines (7 KB) before the ones that matter: Content-Length and the async header were dropped,
    // the async call ran sync, and its body never reached the app.
    const filler = (n: number) => 'a: 1\r\n'.repeat(n);
    const within = await rawExchange(
      emulator.triggerUrl,
      `POST /many HTTP/1.1\r\nHost: localhost\r\n${filler(1200)}X-Fc-Invocation-Type: Async\r\nX-Fc-Async-Task-Id: many_headers\r\nContent-Length: 2\r\nConnection: close\r\n\r\nab`,
    );
    expect(within).toMatch(/^HTTP\/1\.1 202 /);
    const task = await waitFor(async () => {
      const res = await fetch(`${emulator.controlUrl}/2023-03-30/functions/echo/async-tasks/many_headers`);
      const t = (await res.json()) as { status?: string; returnPayload?: string };
      return t.status === 'Succeeded' ? t : undefined;
    });
    const { event } = JSON.parse(task.returnPayload ?? '{}') as { event: { body: string; isBase64Encoded: boolean } };
    expect(Buffer.from(event.body, event.isBase64Encoded ? 'base64' : 'utf8').toString()).toBe('ab');
    const over = await rawExchange(
      emulator.triggerUrl,
      `POST /many HTTP/1.1\r\nHost: localhost\r\n${filler(2100)}Content-Length: 2\r\nConnection: close\r\n\r\nab`,
    );
    expect(over).toMatch(/^HTTP\/1\.1 431 [\s\S]*"code":"RequestHeaderFieldsTooLarge"/);
    await stillAnswers();
  });

  it('shows the function the path of an absolute-form request target', async () => {
    const answer = parseAnswer(
      await rawExchange(
        emulator.triggerUrl,
        'GET http://localhost/hello?x=1 HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n',
      ),
    );
    expect(answer.status).toBe(200);
    expect(answer.body).toMatchObject({ event: { rawPath: '/hello', queryParameters: { x: '1' } } });
  });

  it('logs no error for clients that drop the connection mid-body, and keeps answering', async () => {
    const heads = [
      'POST /abort HTTP/1.1\r\nHost: localhost\r\nContent-Length: 100',
      'POST /abort HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\r\n5',
      'POST /abort HTTP/1.1\r\nHost: localhost\r\nX-Fc-Invocation-Type: Async\r\nContent-Length: 100',
    ];
    const invoke = 'POST /2023-03-30/functions/echo/invocations HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 100';
    await Promise.all(
      Array.from({ length: 300 }, (_, i) =>
        i % 4 === 3
          ? abortMidBody(emulator.controlUrl, invoke)
          : abortMidBody(emulator.triggerUrl, heads[i % 3] as string),
      ),
    );
    await stillAnswers();
    expect(lines.filter((l) => l.level === 'error')).toEqual([]);
  });
});

describe('pipelined requests', () => {
  it('are answered in order, each with its own answer, whatever the function returned', async () => {
    const emulator = await startEcho();
    try {
      // All four are read in one turn, and their answers written together at its end.
      const request = (method: string, path: string, extra = '') =>
        `${method} ${path} HTTP/1.1\r\nHost: localhost\r\n${extra}Content-Length: 0\r\n\r\n`;
      const pipelined = () =>
        rawExchange(
          emulator.triggerUrl,
          request('GET', '/one') +
            request('GET', '/bad-status') +
            request('POST', '/job', 'X-Fc-Invocation-Type: Async\r\n') +
            request('GET', '/two', 'Connection: close\r\n'),
        );
      const texts = await Promise.all(Array.from({ length: 8 }, pipelined));
      const taskIds = new Set<string>();
      for (const text of texts) {
        // The 202 has no body: read it as JSON null.
        const [one, bad, job, two] = text
          .split(/(?=HTTP\/1\.1 )/)
          .map((answer) => parseAnswer(answer.endsWith('\r\n\r\n') ? `${answer}null` : answer));
        expect([one?.status, bad?.status, job?.status, two?.status]).toEqual([200, 502, 202, 200]);
        expect(one?.body).toMatchObject({ event: { rawPath: '/one' } });
        expect(bad?.body).toEqual({ errorType: 'RangeError', errorMessage: 'Invalid status code: 1000' });
        taskIds.add(/x-fc-async-task-id: (\S+)/.exec(job?.headers ?? '')?.[1] ?? '');
        expect(two?.body).toMatchObject({ event: { rawPath: '/two' } });
      }
      expect(taskIds.size).toBe(8);
      expect(taskIds.has('')).toBe(false);
    } finally {
      await emulator.close();
    }
  });
});

describe('a malformed request pipelined after an accepted one', () => {
  it.each([
    ['the trigger', 'triggerUrl', 'POST /job', 'first'],
    ['the control plane', 'controlUrl', 'POST /2023-03-30/functions/echo/invocations', 'api_first'],
  ] as const)('%s answers the first its 202, then the refusal', async (_label, url, line, taskId) => {
    const emulator = await startEcho();
    try {
      const text = await rawExchange(
        emulator[url],
        `${line} HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Fc-Invocation-Type: Async\r\nX-Fc-Async-Task-Id: ${taskId}\r\nContent-Length: 2\r\n\r\n{}` +
          'GET /x HTTP/1.1\r\nHost: 127.0.0.1\r\nBad Header: x\r\n\r\n',
      );
      const answers = text.split(/(?=HTTP\/1\.1 )/).map((answer) => answer.split('\r\n')[0]);
      expect(answers).toEqual(['HTTP/1.1 202 Accepted', 'HTTP/1.1 400 Bad Request']);
      const task = await fetch(`${emulator.controlUrl}/2023-03-30/functions/echo/async-tasks/${taskId}`);
      expect(task.status).toBe(200);
    } finally {
      await emulator.close();
    }
  });
});

describe('a malformed request pipelined after two slow ones', () => {
  it('is refused after both their answers, in order', async () => {
    const server = createServer((req, res) => {
      req.resume();
      req.on('end', () => setTimeout(() => res.end(`answer ${req.url}`), req.url === '/a' ? 50 : 200));
    });
    answerProtocolErrors(server, (code, message) => ({ body: { code, message } }));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      const { port } = server.address() as AddressInfo;
      const text = await rawExchange(
        `http://127.0.0.1:${port}`,
        'GET /a HTTP/1.1\r\nHost: x\r\n\r\nGET /b HTTP/1.1\r\nHost: x\r\n\r\nGET /c HTTP/1.1\r\nHost: x\r\nContent-Length: zz\r\n\r\n',
      );
      const statuses = [...text.matchAll(/HTTP\/1\.1 (\d+)/g)].map((m) => m[1]);
      expect(statuses).toEqual(['200', '200', '400']);
      expect(text.match(/answer \/\w/g)).toEqual(['answer /a', 'answer /b']);
    } finally {
      server.close();
    }
  });
});

describe('InvokeFunction with an HTTP event as payload', () => {
  let emulator: Emulator;
  let client: ReturnType<typeof sdk>;
  beforeAll(async () => {
    emulator = await startEcho();
    client = sdk(emulator.controlUrl);
  });
  afterAll(() => emulator.close());

  const invoke = (event: unknown, headers: ConstructorParameters<typeof $FC.InvokeFunctionHeaders>[0] = {}) =>
    client.invokeFunctionWithOptions(
      'echo',
      new $FC.InvokeFunctionRequest({ body: Readable.from(Buffer.from(JSON.stringify(event))) }),
      new $FC.InvokeFunctionHeaders(headers),
      new $dara.RuntimeOptions({}),
    );

  it.each([
    ['a body marked base64 that is not', { rawPath: '/', body: '!!!', isBase64Encoded: true }],
    ['a method that is not an HTTP token', { rawPath: '/' }, 'G E T'],
    ['headers that are a string', { rawPath: '/', headers: 'x' }],
  ])('refuses an event with %s with 400 InvalidArgument', async (_label, fields, method = 'GET') => {
    const error = await sdkError(invoke({ ...fields, requestContext: { http: { method } } }));
    expect(error).toMatchObject({ code: 'InvalidArgument', statusCode: 400 });
  });

  it('answers 202 with the task id when the event itself asks for an async call', async () => {
    const event = {
      rawPath: '/',
      headers: { 'X-Fc-Invocation-Type': 'Async', 'X-Fc-Async-Task-Id': 'from_event_1' },
      requestContext: { http: { method: 'POST' } },
    };
    const accepted = await invoke(event);
    expect(accepted.statusCode).toBe(202);
    expect(accepted.headers?.['x-fc-async-task-id']).toBe('from_event_1');
  });
});

describe('an --out-dir destination records cannot be written to', () => {
  const root = mkdtempSync(join(tmpdir(), 'fc-async-out-dir-'));
  writeFileSync(join(root, 'index.mjs'), "export const handler = async () => 'ok';\n");
  writeFileSync(join(root, 'a-file'), 'not a folder');
  const outDir = join(root, 'a-file', 'records'); // under a regular file: cannot be created
  afterAll(() => rmSync(root, { recursive: true, force: true }));

  it.each([
    ['under a regular file', outDir, 'ENOTDIR'],
    // A writable file is no folder either: each record's append there failed ENOTDIR, and was lost.
    ['a regular file itself', join(root, 'a-file'), 'ENOTDIR'],
    // Node's recursive mkdir never returns there: the folder is made one level at a time.
    ['below /proc', '/proc/fc-async-x/records', 'ENOENT'],
  ])(
    'refuses the start when a destination of the s.yaml would write %s, instead of losing its first record',
    async (_where, dir, code) => {
      const config = join(root, 's.yaml');
      writeFileSync(
        config,
        [
          'resources:',
          '  jobs:',
          '    component: fc3',
          '    props:',
          '      functionName: jobs',
          '      code: ./',
          '      handler: index.handler',
          '      asyncInvokeConfig:',
          '        destinationConfig:',
          '          onFailure:',
          '            destination: acs:mns:cn-hangzhou:123:/queues/failed/messages',
          '',
        ].join('\n'),
      );
      const started = startEmulator({ config, outDir: dir, port: 0, controlPort: 0, output: () => {} });
      await expect(started).rejects.toMatchObject({
        code: 'OutDirNotWritable',
        message: expect.stringContaining(`Destination records cannot be written to ${dir} (${code})`),
      });
    },
  );

  it('refuses PutAsyncInvokeConfig with such a destination and keeps the config in force', async () => {
    const emulator = await startEcho({ outDir });
    try {
      const client = sdk(emulator.controlUrl);
      const put = (destination: string) =>
        client.putAsyncInvokeConfig(
          'echo',
          new $FC.PutAsyncInvokeConfigRequest({
            body: new $FC.PutAsyncInvokeConfigInput({
              maxAsyncRetryAttempts: 1,
              destinationConfig: new $FC.DestinationConfig({ onFailure: new $FC.Destination({ destination }) }),
            }),
          }),
        );
      expect(await sdkError(put('acs:mns:cn-hangzhou:123:/queues/failed/messages'))).toMatchObject({
        code: 'OutDirNotWritable',
        statusCode: 500,
      });
      const get = client.getAsyncInvokeConfig('echo', new $FC.GetAsyncInvokeConfigRequest({}));
      expect(await sdkError(get)).toMatchObject({ code: 'AsyncConfigNotExists', statusCode: 404 });
    } finally {
      await emulator.close();
    }
  });
});
