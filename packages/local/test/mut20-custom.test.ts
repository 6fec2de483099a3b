import { mkdtempSync, readFileSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import { Agent, get, type IncomingHttpHeaders } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { boundedLines } from '../src/child-output.js';
import { type Emulator, loadServerlessConfig, startEmulator } from '../src/index.js';
import { alive, waitFor } from './helpers.js';

// Found by mutation testing (session 20): custom-runtime behaviour no other test pinned. One
// small server, its behaviour chosen per function by MODE.

const SERVER = `
import { appendFileSync, existsSync } from 'node:fs';
import { createServer } from 'node:http';
const mode = process.env.MODE ?? '';
if (mode === 'many-stderr-lines') {
  for (let i = 1; i <= 12; i++) console.error('line ' + String(i).padStart(2, '0'));
  process.exit(3);
}
if (mode === 'no-newline') {
  process.stderr.write('fatal: the last words, with no newline');
  process.exit(3);
}
const again = process.env.PID_FILE !== undefined && existsSync(process.env.PID_FILE);
if (process.env.PID_FILE) appendFileSync(process.env.PID_FILE, process.pid + '\\n');
const sequence = (process.env.READY_SEQUENCE ?? '').split(',');
let probes = 0;
let initHeaders;
const server = createServer((req, res) => {
  const url = new URL(req.url, 'http://localhost');
  const chunks = [];
  req.on('data', (chunk) => chunks.push(chunk));
  req.on('end', () => {
    if (url.pathname === '/ready') {
      res.statusCode = sequence[probes++] === '1' ? 200 : 503;
      return res.end();
    }
    if (url.pathname === '/echo') {
      const body = Buffer.concat(chunks).toString();
      const { 'content-length': length = null, 'transfer-encoding': te = null } = req.headers;
      return res.end(JSON.stringify({ body, length, te }));
    }
    if (url.pathname === '/hop-by-hop') {
      res.writeHead(200, { connection: 'close', 'keep-alive': 'timeout=1', 'x-kept': 'yes' });
      return res.end('hop');
    }
    if (url.pathname === '/bytes') return res.end(Buffer.alloc(Number(url.searchParams.get('n')), 97));
    if (url.pathname === '/crash') {
      res.end('bye');
      return setTimeout(() => process.exit(7), 10);
    }
    if (url.pathname === '/initialize') {
      initHeaders = req.headers;
      if (mode === 'init-404') res.statusCode = 404;
      if (mode === 'init-x-fc-status') res.setHeader('x-fc-status', '404');
      return res.end();
    }
    if (url.pathname === '/seen') {
      const env = Object.fromEntries(['PATH', 'HOME', 'LANG', 'TZ'].map((k) => [k, process.env[k] ?? null]));
      return res.end(JSON.stringify({ env, initHeaders, argv: process.argv.slice(1), probes }));
    }
    if (url.pathname === '/crlf') return process.stdout.write('a windows line\\r\\n', () => res.end('ok'));
    if (url.pathname === '/slow') {
      console.log('slow work started');
      const work = setTimeout(() => {
        console.log('slow: finished its work');
        res.end('slow done');
      }, Number(url.searchParams.get('ms')));
      return res.on('close', () => {
        if (res.writableFinished) return;
        clearTimeout(work);
        console.log('slow: the request was closed before the answer');
      });
    }
    res.statusCode = 404;
    res.end();
  });
});
setTimeout(
  () => server.listen(Number(process.env.FC_CUSTOM_LISTEN_PORT), '127.0.0.1'),
  Number((again && process.env.AGAIN_LISTEN_AFTER_MS) || process.env.LISTEN_AFTER_MS || 0),
);
`;

const root = mkdtempSync(join(tmpdir(), 'fc-async-mut20-custom-'));
writeFileSync(join(root, 'server.mjs'), SERVER);

/** What a function of {@link yaml} adds to the plain one. */
interface Variant {
  initializer?: boolean;
  env?: Record<string, string>;
  command?: string[];
  /** `customRuntimeConfig.healthCheckConfig`, a YAML flow mapping. */
  health?: string;
  /** More props, as YAML lines at the props' indent. */
  props?: string;
}

/** An s.yaml of one custom-runtime function `fn` in MODE `mode`. */
function yaml(fn: string, mode: string, variant: Variant = {}): string {
  const file = join(root, `${fn}.yaml`);
  const env = JSON.stringify({ MODE: mode, ...variant.env });
  const command = JSON.stringify(variant.command ?? ['node', './server.mjs']);
  const initializer = variant.initializer
    ? '      instanceLifecycleConfig: { initializer: { handler: "true", timeout: 5 } }\n'
    : '';
  writeFileSync(
    file,
    `edition: 3.0.0
name: mut20
resources:
  ${fn}:
    component: fc3
    props:
      functionName: ${fn}
      region: cn-shanghai
      runtime: custom.debian10
      code: ./
      customRuntimeConfig: { command: ${command}${variant.health ? `, healthCheckConfig: ${variant.health}` : ''} }
      environmentVariables: ${env}
${initializer}${variant.props ?? ''}      triggers: [{ triggerName: http, triggerType: http, triggerConfig: { authType: anonymous, methods: [GET, POST] } }]
`,
  );
  return file;
}

/** An emulator of `config`, with its JSON log lines. */
async function serve(config: string): Promise<{ emulator: Emulator; log: Record<string, unknown>[] }> {
  const log: Record<string, unknown>[] = [];
  const emulator = await startEmulator({
    config,
    port: 0,
    controlPort: 0,
    outDir: mkdtempSync(join(root, 'out-')),
    logFormat: 'json',
    output: (text) => {
      for (const line of text.split('\n')) if (line) log.push(JSON.parse(line) as Record<string, unknown>);
    },
  });
  return { emulator, log };
}

/** What a start of `config` that fails is refused with. */
async function refusal(config: string): Promise<{ code?: string; message: string }> {
  try {
    const { emulator } = await serve(config);
    await emulator.close({ timeoutMs: 1000 });
  } catch (error) {
    return error as { code?: string; message: string };
  }
  throw new Error('expected the start to fail');
}

afterAll(() => rmSync(root, { recursive: true, force: true }));

describe('a custom runtime that fails to start', () => {
  it('an initializer answering 404 (no /initialize route) refuses the start, naming the status', async () => {
    expect(await refusal(yaml('noinit', 'init-404', { initializer: true }))).toMatchObject({
      code: 'CustomRuntimeStartFailed',
      message: expect.stringContaining('answered POST /initialize with HTTP 404'),
    });
  });

  it('an initializer answering 200 with x-fc-status: 404 (a failure, as FC reads it) refuses the start', async () => {
    expect(await refusal(yaml('failinit', 'init-x-fc-status', { initializer: true }))).toMatchObject({
      code: 'CustomRuntimeStartFailed',
      message: expect.stringContaining('answered POST /initialize with HTTP 200'),
    });
  });

  it('the refusal quotes the last 10 lines of its stderr, in order', async () => {
    const { message } = await refusal(yaml('chatty', 'many-stderr-lines'));
    const lines = Array.from({ length: 10 }, (_, i) => `line ${String(i + 3).padStart(2, '0')}`);
    expect(message).toMatch(/exited with code 3 before it listened on port \d+/);
    expect(message.endsWith(`; its last stderr lines: ${lines.join(' | ')}`)).toBe(true);
  });

  it('the refusal quotes a last stderr line the child wrote without a newline before it exited', async () => {
    const { message } = await refusal(yaml('abrupt', 'no-newline'));
    expect(message).toContain('its last stderr lines: fatal: the last words, with no newline');
  });
});

describe('a custom runtime served', () => {
  let emulator: Emulator;
  let log: Record<string, unknown>[];
  beforeAll(async () => {
    ({ emulator, log } = await serve(
      yaml('web', 'plain', { initializer: true, command: ['node', '/code/server.mjs', '/code'] }),
    ));
  });
  afterAll(() => emulator?.close({ timeoutMs: 1000 }));

  it("the child gets what finds programs and sets the locale from the emulator's environment", async () => {
    const { env } = (await (await fetch(`${emulator.triggerUrl}/seen`)).json()) as { env: Record<string, string> };
    expect(env.PATH).toBe(process.env.PATH);
    expect(env.HOME).toBe(process.env.HOME ?? null);
    expect(env.LANG).toBe(process.env.LANG ?? null);
  });

  it('POST /initialize brings an FC request id, as every invocation does', async () => {
    const { initHeaders } = (await (await fetch(`${emulator.triggerUrl}/seen`)).json()) as {
      initHeaders: Record<string, string>;
    };
    expect(initHeaders['x-fc-request-id']).toMatch(/^1-[0-9a-f]{8}-/);
    expect(initHeaders['x-fc-control-path']).toBe('/initialize');
  });

  it('`/code` in the command, alone or leading a path, is the code folder here (FC mounts the code there)', async () => {
    const { argv } = (await (await fetch(`${emulator.triggerUrl}/seen`)).json()) as { argv: string[] };
    expect(argv.map((a) => realpathSync(a))).toEqual([join(realpathSync(root), 'server.mjs'), realpathSync(root)]);
  });

  it('a request body reaches the child whole, with its content-length: chunked, or empty', async () => {
    const body = new ReadableStream({
      start(controller) {
        controller.enqueue(new TextEncoder().encode('one '));
        controller.enqueue(new TextEncoder().encode('two'));
        controller.close();
      },
    });
    const echo = async (init: RequestInit) => (await fetch(`${emulator.triggerUrl}/echo`, init)).json();
    expect(await echo({ method: 'POST', body, duplex: 'half' } as RequestInit)).toEqual({
      body: 'one two',
      length: '7',
      te: null,
    });
    expect(await echo({ method: 'POST' })).toEqual({ body: '', length: '0', te: null });
  });

  it("an answer of exactly FC's 32 MiB comes back whole; one byte more is 502 CAResponseTooLarge", async () => {
    const limit = 32 * 1024 * 1024;
    const whole = await fetch(`${emulator.triggerUrl}/bytes?n=${limit}`);
    expect(whole.status).toBe(200);
    expect((await whole.arrayBuffer()).byteLength).toBe(limit);
    const over = await fetch(`${emulator.triggerUrl}/bytes?n=${limit + 1}`);
    expect(over.status).toBe(502);
    expect(await over.json()).toMatchObject({ code: 'CAResponseTooLarge' });
  });

  it("the child's hop-by-hop headers (connection: close) are not relayed: the client's connection stays open", async () => {
    const agent = new Agent({ keepAlive: true });
    try {
      const answer = await new Promise<{ headers: IncomingHttpHeaders; body: string }>((resolve, reject) => {
        get(`${emulator.triggerUrl}/hop-by-hop`, { agent }, (res) => {
          let body = '';
          res.setEncoding('utf8');
          res.on('data', (chunk: string) => {
            body += chunk;
          });
          res.on('end', () => resolve({ headers: res.headers, body }));
        }).on('error', reject);
      });
      expect(answer.body).toBe('hop');
      expect(answer.headers['x-kept']).toBe('yes');
      expect(answer.headers.connection).toBe('keep-alive');
      expect(answer.headers['keep-alive']).not.toBe('timeout=1');
    } finally {
      agent.destroy();
    }
  });

  it('a line the child ends with CRLF is logged without the carriage return', async () => {
    expect(await (await fetch(`${emulator.triggerUrl}/crlf`)).text()).toBe('ok');
    const line = await waitFor(() => log.find((l) => String(l.message).startsWith('web: a windows line')));
    expect(line).toMatchObject({ message: 'web: a windows line', stream: 'stdout' });
  });
});

describe("an s.yaml PATH that names FC's layer folders only", () => {
  it("starts a bare `node` found in the emulator's PATH, the child getting the s.yaml's PATH", async () => {
    const { emulator } = await serve(yaml('layered', 'plain', { env: { PATH: '/opt/nodejs20/bin' } }));
    try {
      const { env } = (await (await fetch(`${emulator.triggerUrl}/seen`)).json()) as { env: Record<string, string> };
      expect(env.PATH).toBe('/opt/nodejs20/bin');
    } finally {
      await emulator.close({ timeoutMs: 1000 });
    }
  });
});

describe('a sync call past the timeout of a custom runtime', () => {
  it('closes the request to the child at the timeout: work that would end later is cut', async () => {
    const { emulator, log } = await serve(yaml('hurry', 'plain', { props: '      timeout: 1\n' }));
    try {
      // 1.7 s of work: past the function's 1 s, and not past twice that.
      const res = await fetch(`${emulator.triggerUrl}/slow?ms=1700`);
      expect(res.status).toBe(504);
      expect(await res.json()).toMatchObject({ code: 'FunctionTimeout' });
      const ended = await waitFor(() => log.find((l) => String(l.message).startsWith('hurry: slow: ')), 5000);
      expect(ended.message).toBe('hurry: slow: the request was closed before the answer');
    } finally {
      await emulator.close({ timeoutMs: 1000 });
    }
  });
});

describe('stopping a custom runtime', () => {
  it('a request under way when close() gives up on its caller still finishes in the child before SIGTERM', async () => {
    const { emulator, log } = await serve(yaml('busy', 'plain'));
    const call = fetch(`${emulator.triggerUrl}/slow?ms=1500`).then(
      (r) => r.status,
      () => 'cut',
    );
    // Under way in the child when close() comes: it has started there (not a moment has passed).
    await waitFor(() => log.find((l) => l.message === 'busy: slow work started'));
    await emulator.close({ timeoutMs: 100 });
    await call;
    // The child was let finish (5 s at most) before it was stopped.
    expect(log.some((l) => l.message === 'busy: slow: finished its work')).toBe(true);
  });
});

describe('a custom runtime that exited, restarting when close() comes', () => {
  it('close() waits for the new instance and stops it: no process is left', async () => {
    const pidFile = join(root, 'phoenix.pids');
    const pids = () => readFileSync(pidFile, 'utf8').split('\n').filter(Boolean).map(Number);
    // The second instance listens 2.5 s after it started: the restart is still under way once
    // close() has given up on the call waiting for it (twice its 300 ms) and stops the runtime.
    const { emulator, log } = await serve(
      yaml('phoenix', 'plain', { env: { PID_FILE: pidFile, AGAIN_LISTEN_AFTER_MS: '2500' } }),
    );
    expect(await (await fetch(`${emulator.triggerUrl}/crash`)).text()).toBe('bye');
    await waitFor(() => log.find((l) => l.message === 'phoenix: the custom runtime exited'));
    const next = fetch(`${emulator.triggerUrl}/seen`).then(
      (r) => r.status,
      () => 'cut',
    );
    const second = await waitFor(() => pids()[1]);
    await emulator.close({ timeoutMs: 300 });
    await next;
    expect(alive(second)).toBe(false);
  });
});

describe("FC's custom health check", () => {
  it('counts passing and failing probes in a row: fail, pass, fail, pass, pass is ready at the fifth', async () => {
    const { emulator } = await serve(
      yaml('flaky', 'plain', {
        env: { READY_SEQUENCE: '0,1,0,1,1' },
        // The first probe a second after the start: the child listens by then.
        health:
          '{ httpGetUrl: /ready, initialDelaySeconds: 1, periodSeconds: 1, failureThreshold: 2, successThreshold: 2 }',
      }),
    );
    try {
      const { probes } = (await (await fetch(`${emulator.triggerUrl}/seen`)).json()) as { probes: number };
      expect(probes).toBe(5);
    } finally {
      await emulator.close({ timeoutMs: 1000 });
    }
  });

  it('probes only after initialDelaySeconds: a child that listens a moment after it starts is not failed', async () => {
    const { emulator } = await serve(
      yaml('late', 'plain', {
        env: { LISTEN_AFTER_MS: '300' },
        health: '{ initialDelaySeconds: 2, failureThreshold: 1 }',
      }),
    );
    try {
      expect((await fetch(`${emulator.triggerUrl}/seen`)).status).toBe(200);
    } finally {
      await emulator.close({ timeoutMs: 1000 });
    }
  });
});

describe('reading a custom runtime from an s.yaml: the defaults and refusals of FC', () => {
  /** The functions of an s.yaml written from `text`. */
  const load = (name: string, text: string) => {
    const file = join(root, `${name}.yaml`);
    writeFileSync(file, text);
    return loadServerlessConfig(file, { env: {} });
  };
  const fc3 = (props: string) => `edition: 3.0.0
name: defaults
resources:
  f:
    component: fc3
    props:
      functionName: f
      region: cn-shanghai
      runtime: custom.debian10
      code: ./
${props}`;

  it('FC 3.0: port 9000, a hook without a timeout gets 3 s, a health check gets FC defaults', async () => {
    const { functions } = await load(
      'fc3-defaults',
      fc3(`      customRuntimeConfig: { command: [node, ./server.mjs], healthCheckConfig: { httpGetUrl: /ready } }
      instanceLifecycleConfig: { initializer: { handler: "true" }, preStop: { handler: "true" } }
`),
    );
    expect(functions[0]?.customRuntime).toEqual({
      command: ['node', './server.mjs'],
      port: 9000,
      initializer: { timeout: 3 },
      preStop: { timeout: 3 },
      healthCheck: {
        httpGetUrl: '/ready',
        initialDelaySeconds: 0,
        periodSeconds: 3,
        timeoutSeconds: 1,
        failureThreshold: 3,
        successThreshold: 1,
      },
    });
  });

  it("FC 2.0: the function's initializer, initializationTimeout and customHealthCheckConfig", async () => {
    const { functions } = await load(
      'fc2-hooks',
      `edition: 1.0.0
name: fc2
services:
  s:
    component: fc
    props:
      region: cn-hangzhou
      service: { name: svc }
      function:
        name: f
        codeUri: ./
        runtime: custom
        initializer: "true"
        initializationTimeout: 7
        customHealthCheckConfig: { httpGetUrl: /health, successThreshold: 2 }
        customRuntimeConfig: { command: [node, ./server.mjs] }
`,
    );
    expect(functions[0]?.customRuntime).toMatchObject({
      initializer: { timeout: 7 },
      healthCheck: { httpGetUrl: '/health', successThreshold: 2 },
    });
  });

  it.each([
    [
      'a hook timeout of 0',
      `      customRuntimeConfig: { command: [node, ./server.mjs] }
      instanceLifecycleConfig: { initializer: { handler: "true", timeout: 0 } }
`,
      'instanceLifecycleConfig.initializer.timeout must be a positive number of seconds, got 0',
    ],
    [
      'a health check URL that is not a path',
      `      customRuntimeConfig: { command: [node, ./server.mjs], healthCheckConfig: { httpGetUrl: ready } }
`,
      'customRuntimeConfig.healthCheckConfig.httpGetUrl must be a path starting with /',
    ],
  ])('refuses %s, naming the field', async (_what, props, message) => {
    await expect(load('refused', fc3(props))).rejects.toMatchObject({
      code: 'InvalidConfig',
      message: expect.stringContaining(message),
    });
  });
});

describe('built-in runtime handlers beside the custom runtimes', () => {
  it('(event, context) returning at once answers with that; one that never answers gets 504 FunctionTimeout', async () => {
    const dir = mkdtempSync(join(root, 'sync-handler-'));
    writeFileSync(
      join(dir, 'index.js'),
      "exports.handler = (event, context) => 'got ' + event.toString() + ' in ' + context.function.name;\n",
    );
    writeFileSync(join(dir, 'stuck.js'), 'exports.handler = () => new Promise(() => {});\n');
    const file = join(dir, 's.yaml');
    writeFileSync(
      file,
      `edition: 3.0.0
name: sync-handler
resources:
  plain:
    component: fc3
    props:
      functionName: plain
      region: cn-shanghai
      runtime: nodejs20
      handler: index.handler
      timeout: 3
      code: ./
  stuck:
    component: fc3
    props:
      functionName: stuck
      region: cn-shanghai
      runtime: nodejs20
      handler: stuck.handler
      timeout: 1
      code: ./
      triggers: [{ triggerName: http, triggerType: http, triggerConfig: { authType: anonymous, methods: [GET] } }]
`,
    );
    const { emulator } = await serve(file);
    try {
      const res = await fetch(`${emulator.controlUrl}/2023-03-30/functions/plain/invocations`, {
        method: 'POST',
        body: '{"n":1}',
      });
      expect({ status: res.status, text: await res.text() }).toEqual({ status: 200, text: 'got {"n":1} in plain' });
      // One that never answers: FC's 504 FunctionTimeout, a function error.
      const stuck = await fetch(`${emulator.triggerUrl}/stuck`);
      expect(stuck.status).toBe(504);
      expect(stuck.headers.get('x-fc-error-type')).toBe('UnhandledInvocationError');
      expect(await stuck.json()).toMatchObject({ code: 'FunctionTimeout' });
    } finally {
      await emulator.close({ timeoutMs: 1000 });
    }
  });
});

describe("the child's output, line by line", () => {
  /** The lines `boundedLines` gives for `chunks`, at most `max` bytes each. */
  const linesOf = (max: number, chunks: string[]) => {
    const stream = new PassThrough();
    const lines: string[] = [];
    boundedLines(stream, max, (line) => lines.push(line));
    for (const chunk of chunks) stream.write(chunk);
    stream.end();
    return new Promise<string[]>((resolve) => stream.once('end', () => resolve(lines)));
  };

  it('a line of exactly the bound is kept whole; a longer one is cut and marked', async () => {
    expect(await linesOf(4, ['abcd\nabcde\n'])).toEqual(['abcd', 'abcd…']);
  });

  it('CRLF ends a line as LF does; a last line without a newline still comes out at the end', async () => {
    expect(await linesOf(100, ['one\r\ntw', 'o\r\nthree'])).toEqual(['one', 'two', 'three']);
  });
});
