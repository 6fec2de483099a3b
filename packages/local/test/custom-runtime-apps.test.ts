import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { customRuntimeEnv } from '../src/custom-runtime.js';
import { type Emulator, loadServerlessConfig, startEmulator } from '../src/index.js';
import { $FC, alive, fixture, sdk, spawnCli, startCli, waitFor } from './helpers.js';

// A Koa app and a Fastify app, each with fc-async's own custom-runtime pieces (fcAsync + listen),
// served by the emulator from an s.yaml as custom.debian10 processes: their middleware runs in
// platform mode behind the emulator, which plays FC (queue, retries, stop, destinations).
const tmp = mkdtempSync(join(tmpdir(), 'fc-async-custom-runtime-apps-'));
const sinkFile = join(tmp, 'sink.jsonl');

type Record_ = {
  requestContext: { condition: string; approximateInvokeCount: number; functionArn: string };
  requestPayload: string;
  responsePayload?: string;
};

let emulator: Emulator;
let client: ReturnType<typeof sdk>;
const lines: Record<string, unknown>[] = [];
const sinkEnv = process.env.SINK_FILE;

beforeAll(async () => {
  process.env.SINK_FILE = sinkFile;
  emulator = await startEmulator({
    config: fixture('custom-runtime-apps/s.yaml'),
    port: 0,
    controlPort: 0,
    retryBaseMs: 10,
    outDir: tmp,
    logFormat: 'json',
    output: (text) => {
      for (const line of text.trim().split('\n')) if (line) lines.push(JSON.parse(line) as Record<string, unknown>);
    },
  });
  client = sdk(emulator.controlUrl);
}, 60_000);

afterAll(async () => {
  await emulator?.close({ timeoutMs: 3000 });
  rmSync(tmp, { recursive: true, force: true });
  if (sinkEnv === undefined) delete process.env.SINK_FILE;
  else process.env.SINK_FILE = sinkEnv;
});

const jsonl = (file: string) =>
  existsSync(file)
    ? readFileSync(file, 'utf8')
        .split('\n')
        .filter(Boolean)
        .map((l) => JSON.parse(l) as Record_)
    : [];

describe.each(['koa', 'fastify'])('a %s app on a custom runtime, behind the emulator', (fw) => {
  const call = (path: string, init: RequestInit = {}) => fetch(`${emulator.triggerUrl}/${fw}${path}`, init);
  const async = (path: string, taskId: string, body: unknown) =>
    call(path, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-fc-invocation-type': 'Async', 'x-fc-async-task-id': taskId },
      body: JSON.stringify(body),
    });
  const task = async (id: string) => (await client.getAsyncTask(fw, id, new $FC.GetAsyncTaskRequest({}))).body;
  const ended = (id: string) =>
    waitFor(async () => {
      const t = await task(id);
      return ['Succeeded', 'Failed', 'Stopped'].includes(t?.status as string) ? t : undefined;
    });
  const observed = async () =>
    (await (await call('/observed')).json()) as { fail?: string; long?: string; attempt?: number; how?: string }[];

  it('answers a sync call, the invocation context built from what the emulator sent', async () => {
    const res = await call('/hello');
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ hello: fw, requestId: res.headers.get('x-fc-request-id'), type: 'Sync' });
  });

  it('runs an async call that succeeds: GetAsyncTask has its returnPayload, onSuccess its record', async () => {
    const res = await async('/work', `${fw}_ok`, { n: 1 });
    expect(res.status).toBe(202);
    const t = await ended(`${fw}_ok`);
    expect(t).toMatchObject({ status: 'Succeeded', alreadyRetriedTimes: 0 });
    expect(JSON.parse(t?.returnPayload as string)).toEqual({ done: { n: 1 }, taskId: `${fw}_ok`, attempt: 0 });
    const records = await waitFor(() => {
      const found = jsonl(join(tmp, `${fw}.onSuccess.jsonl`));
      return found.length > 0 ? found : undefined;
    });
    // An HTTP invocation's requestPayload is the request as an event (docs/local-dev.md).
    expect(JSON.parse(records[0]?.requestPayload as string)).toMatchObject({
      method: 'POST',
      url: '/work',
      body: '{"n":1}',
    });
    expect(records[0]?.requestContext.condition).toBe('');
  });

  it('a 500 of the app is marked x-fc-status: 404 by the middleware: retried once, then onFailure (the sink)', async () => {
    const res = await async('/fail', `${fw}_fail`, { broken: fw });
    expect(res.status).toBe(202);
    expect(await ended(`${fw}_fail`)).toMatchObject({ status: 'Failed', alreadyRetriedTimes: 1 });
    expect((await observed()).filter((o) => o.fail === `${fw}_fail`)).toEqual([
      { fail: `${fw}_fail`, attempt: 0 },
      { fail: `${fw}_fail`, attempt: 1 },
    ]);
    const record = await waitFor(() =>
      jsonl(sinkFile).find((r) => r.requestContext.functionArn.endsWith(`functions/${fw}`)),
    );
    expect(record.requestContext).toMatchObject({ condition: 'UnhandledInvocationError', approximateInvokeCount: 2 });
    expect(JSON.parse(record.requestPayload)).toMatchObject({
      method: 'POST',
      url: '/fail',
      body: JSON.stringify({ broken: fw }),
    });
  });

  it("StopAsyncTask ends a long task Stopped, and the app's invocation signal aborts in the child", async () => {
    expect((await async('/long', `${fw}_long`, {})).status).toBe(202);
    await waitFor(async () => ((await task(`${fw}_long`))?.status === 'Running' ? true : undefined));
    const stopped = await client.stopAsyncTask(fw, `${fw}_long`, new $FC.StopAsyncTaskRequest({}));
    expect(stopped.statusCode).toBe(200);
    expect((await ended(`${fw}_long`))?.status).toBe('Stopped');
    const seen = await waitFor(async () => (await observed()).find((o) => o.long === `${fw}_long`));
    expect(seen.how).toBe('aborted');
  });

  it('ListAsyncTasks filters by status', async () => {
    const list = async (status: string) =>
      ((await client.listAsyncTasks(fw, new $FC.ListAsyncTasksRequest({ status }))).body?.tasks ?? []).map(
        (t) => t.taskId,
      );
    expect((await list('Failed')).sort()).toEqual([`${fw}_fail`]);
    expect((await list('Succeeded')).sort()).toEqual([`${fw}_ok`]);
    expect((await list('Stopped')).sort()).toEqual([`${fw}_long`]);
  });
});

/** `n` bytes as faults/server.mjs makes them. */
const pattern = (n: number) => {
  const out = Buffer.alloc(n);
  for (let i = 0; i < n; i++) out[i] = (i * 31 + (i >> 8)) & 0xff;
  return out;
};

/** What the faults fixture's `/echo` answers. */
type Echo = { i: string | null; pid: number };

describe('faults of the custom-runtime processes', () => {
  let faults: Emulator;
  const log: Record<string, unknown>[] = [];
  const unparsed: string[] = [];
  const at = (fn: string, path: string, init?: RequestInit) => fetch(`${faults.triggerUrl}/${fn}${path}`, init);
  const pid = async (fn: string) => pidFrom(fn, await at(fn, '/pid'));
  const startedOnce = join(tmp, 'started-once');
  beforeAll(async () => {
    process.env.START_ONCE_FILE = startedOnce;
    faults = await startEmulator({
      config: fixture('custom-runtime-apps/s-faults.yaml'),
      port: 0,
      controlPort: 0,
      retryBaseMs: 10,
      outDir: mkdtempSync(join(tmp, 'faults-')),
      logFormat: 'json',
      output: (text) => {
        for (const line of text.split('\n')) {
          if (!line) continue;
          try {
            log.push(JSON.parse(line) as Record<string, unknown>);
          } catch {
            unparsed.push(line.slice(0, 200));
          }
        }
      },
    });
  }, 60_000);
  afterAll(async () => {
    delete process.env.START_ONCE_FILE;
    await faults?.close({ timeoutMs: 3000 });
  });

  it('a child that crashes mid-request: 502 CAExited; the next calls share one new instance', async () => {
    const first = await pid('crashsync');
    const res = await at('crashsync', '/crash', { method: 'POST' });
    expect(res.status).toBe(502);
    expect(await res.json()).toEqual({
      code: 'CAExited',
      message: 'The custom runtime of crashsync exited with code 9',
    });
    const answers = await Promise.all(
      Array.from({ length: 10 }, async (_, i) => (await (await at('crashsync', `/echo?i=${i}`)).json()) as Echo),
    );
    expect(answers.map((a) => a.i)).toEqual(Array.from({ length: 10 }, (_, i) => String(i)));
    const pids = new Set(answers.map((a) => a.pid));
    expect(pids.size).toBe(1);
    expect(pids.has(first)).toBe(false);
    expect(alive(first)).toBe(false);
    expect(log.filter((l) => l.message === 'crashsync: the custom runtime exited')).toHaveLength(1);
    expect(log.filter((l) => String(l.message).startsWith('crashsync: starting a new instance'))).toHaveLength(1);
  });

  it('a sync call past the timeout: 504 FunctionTimeout, and the request to the child is closed, as FC ends it', async () => {
    const started = Date.now();
    const res = await at('hurried', '/slow?ms=4000');
    expect(res.status).toBe(504);
    expect(await res.json()).toMatchObject({ code: 'FunctionTimeout' });
    const closed = await waitFor(() =>
      log.find((l) => l.message === 'hurried: slow: the request was closed before the answer'),
    );
    expect(Date.parse(String(closed.time)) - started).toBeLessThan(3000);
    expect(await (await at('hurried', '/echo?i=next')).json()).toMatchObject({ i: 'next' });
  });

  it('a new instance that fails to start: 502 FunctionNotStarted, the reason only in the log; the next call tries again', async () => {
    const first = await pid('once');
    expect((await at('once', '/crash', { method: 'POST' })).status).toBe(502);
    for (let i = 0; i < 2; i++) {
      const res = await at('once', '/echo');
      expect(res.status).toBe(502);
      const text = await res.text();
      expect(JSON.parse(text)).toEqual({
        code: 'FunctionNotStarted',
        message: "The custom runtime of once exited and could not be started again; the emulator's log says why",
      });
      expect(text).not.toContain('second time');
      expect(text).not.toContain('server.mjs');
    }
    const failures = log.filter((l) => l.message === 'once: the custom runtime could not be started again');
    expect(failures).toHaveLength(2);
    expect(JSON.stringify(failures[0])).toContain('started a second time');
    rmSync(startedOnce);
    const echo = (await (await at('once', '/echo?i=back')).json()) as Echo;
    expect(echo.i).toBe('back');
    expect(echo.pid).not.toBe(first);
  });

  it('an async attempt that crashes the child fails and is retried, then the task fails; others go on', async () => {
    const res = await at('crashasync', '/crash', {
      method: 'POST',
      headers: { 'x-fc-invocation-type': 'Async', 'x-fc-async-task-id': 'crash_1' },
    });
    expect(res.status).toBe(202);
    const task = await waitFor(async () => {
      const t = (await (
        await fetch(`${faults.controlUrl}/2023-03-30/functions/crashasync/async-tasks/crash_1`)
      ).json()) as {
        status: string;
        alreadyRetriedTimes: number;
      };
      return t.status === 'Failed' ? t : undefined;
    });
    expect(task.alreadyRetriedTimes).toBe(1);
    // The retry ran on a new instance, which the same request crashed too.
    expect(log.filter((l) => l.message === 'crashasync: the custom runtime exited')).toHaveLength(2);
    expect(await (await at('faulty', '/echo?i=7')).json()).toMatchObject({ i: '7' });
  });

  it("a 10 MB line and binary junk on the child's stdout: log lines stay bounded, valid, and go on", async () => {
    expect(await (await at('faulty', '/spew')).text()).toBe('spewed');
    await waitFor(() => log.find((l) => l.message === 'faulty: after the junk'));
    const long = log.find((l) => String(l.message).startsWith('faulty: xxxx')) as { message: string };
    expect(long.message.length).toBeLessThanOrEqual('faulty: '.length + 8192 + 1);
    expect(long.message.endsWith('…')).toBe(true);
    expect(log.some((l) => String(l.message).startsWith('faulty: \u0000\u0001\u0002'))).toBe(true);
    expect(unparsed).toEqual([]);
  });

  it('a 20 MB answer and a streamed (chunked) answer come back whole, byte for byte', async () => {
    const big = await at('faulty', '/big?mb=20');
    expect(big.status).toBe(200);
    const bytes = Buffer.from(await big.arrayBuffer());
    expect(bytes.length).toBe(20 * 1024 * 1024);
    expect(bytes.equals(pattern(20 * 1024 * 1024))).toBe(true);
    const streamed = await at('faulty', '/stream');
    const expected = `${Array.from({ length: 20 }, (_, i) => `chunk ${i}\n`).join('')}end\n`;
    expect(await streamed.text()).toBe(expected);
  });

  it("an answer past 32 MB (FC's limit) is cut: 502 CAResponseTooLarge, and the child goes on", async () => {
    const big = await at('faulty', '/big?mb=33');
    expect(big.status).toBe(502);
    expect(await big.json()).toMatchObject({ code: 'CAResponseTooLarge' });
    expect((await at('faulty', '/echo?i=after')).status).toBe(200);
  });

  it('50 requests in parallel are each answered with their own answer', async () => {
    const answers = await Promise.all(
      Array.from({ length: 50 }, async (_, i) => (await (await at('faulty', `/echo?i=${i}`)).json()) as { i: string }),
    );
    expect(answers.map((a) => a.i)).toEqual(Array.from({ length: 50 }, (_, i) => String(i)));
  });

  it('close() with requests in flight: they finish first, then no process is left (SIGTERM ignored: killed)', async () => {
    const pids = [await pid('faulty'), await pid('stubborn')];
    expect(pids.every(alive)).toBe(true);
    const starts = () => log.filter((l) => l.message === 'faulty: slow: started its work').length;
    const before = starts();
    const inFlight = Array.from({ length: 5 }, () =>
      at('faulty', '/slow?ms=1500').then(
        async (r) => ({ status: r.status, text: await r.text() }),
        (error: Error) => ({ error: error.message }),
      ),
    );
    // Under way in the child when close() comes: each has started there (not a moment has passed).
    await waitFor(() => (starts() - before === 5 ? true : undefined));
    await faults.close({ timeoutMs: 3000 });
    // the requests under way finished before the child was stopped
    expect(await Promise.all(inFlight)).toEqual(Array.from({ length: 5 }, () => ({ status: 200, text: 'slow done' })));
    // the stubborn child ignored SIGTERM: it was killed after the bound
    expect(pids.filter(alive)).toEqual([]);
    expect(log.some((l) => l.message === 'stubborn: ignoring SIGTERM')).toBe(true);
  }, 30_000);
});

describe('the environment of a custom runtime', () => {
  it("keeps the emulator's port in FC_SERVER_PORT and FC_CUSTOM_LISTEN_PORT whatever the s.yaml sets", () => {
    const fn = {
      name: 'f',
      handler: 'index.handler',
      region: 'cn-hangzhou',
      accountId: '1',
      qualifier: 'LATEST',
      memorySize: 128,
      timeout: 3,
    };
    const env = customRuntimeEnv(fn, 'i-1', 43210, { FC_SERVER_PORT: '9000', FC_CUSTOM_LISTEN_PORT: '9000', A: 'b' });
    expect(env).toMatchObject({ FC_SERVER_PORT: '43210', FC_CUSTOM_LISTEN_PORT: '43210', A: 'b' });
  });
});

describe('many sync calls to a custom runtime, in a process of their own', () => {
  it('leave no abort listener behind: no MaxListenersExceededWarning', async () => {
    const run = await startCli(['--config', fixture('custom-runtime-apps/s-faults.yaml')]);
    try {
      for (let i = 0; i < 30; i++) expect((await fetch(`${run.trigger}/faulty/echo?i=${i}`)).status).toBe(200);
    } finally {
      await run.stop('SIGTERM');
    }
    expect(run.stderr.join('')).not.toContain('MaxListenersExceededWarning');
  }, 30_000);
});

describe('fc-async dev killed with SIGKILL', () => {
  it('leaves no custom runtime behind, one that ignores SIGTERM included', async () => {
    const run = await startCli(['--config', fixture('custom-runtime-apps/s-faults.yaml')]);
    const pidOf = async (fn: string) => pidFrom(fn, await fetch(`${run.trigger}/${fn}/pid`));
    const pids = [await pidOf('faulty'), await pidOf('stubborn')];
    expect(pids.every(alive)).toBe(true);
    await run.stop('SIGKILL');
    // SIGTERM at once, SIGKILL 3 s later for the one that ignores it (then a zombie until init
    // reaps it: gone, see alive()).
    await waitFor(() => (pids.some(alive) ? undefined : true), 8000);
    expect(pids.filter(alive)).toEqual([]);
  }, 30_000);
});

describe('alive(), which the tests above wait on', () => {
  it('counts a zombie (ended, not reaped yet) as gone, and a running process as alive', async () => {
    // `sh` starts a short `sleep` in the background, prints its pid, and becomes a long `sleep` that
    // never reaps it. The short one still runs when `sh` execs (a `true` there could end first and be
    // reaped by `sh` itself, leaving no zombie): it becomes one a second later.
    const parent = spawn('sh', ['-c', 'sleep 1 & echo $!; exec sleep 30'], { stdio: ['ignore', 'pipe', 'ignore'] });
    try {
      const [line] = (await once(parent.stdout as NodeJS.ReadableStream, 'data')) as [Buffer];
      const zombie = Number(line.toString().trim());
      await waitFor(() => (readFileSync(`/proc/${zombie}/stat`, 'utf8').includes(') Z ') ? true : undefined));
      expect(alive(zombie)).toBe(false);
      expect(alive(parent.pid as number)).toBe(true);
    } finally {
      parent.kill('SIGKILL');
    }
  });
});

describe('Ctrl-C while fc-async dev starts its custom runtimes', () => {
  it('exits and leaves no custom runtime behind', async () => {
    const pidFile = join(tmp, 'ctrl-c.pid');
    const cli = spawnCli(
      ['dev', '--config', fixture('custom-runtime-apps/s-never-listens.yaml'), '--port', '0', '--control-port', '0'],
      {
        env: { MUTE_PID_FILE: pidFile },
      },
    );
    const exited = new Promise<number | null>((resolve) => cli.once('exit', (code) => resolve(code)));
    const pid = await waitFor(() =>
      existsSync(pidFile) ? Number(readFileSync(pidFile, 'utf8')) || undefined : undefined,
    );
    expect(alive(pid)).toBe(true);
    cli.kill('SIGINT');
    expect(await exited).toBe(130);
    await waitFor(() => (alive(pid) ? undefined : true), 5000);
  }, 30_000);
});

/**
 * Starts the emulator on `yaml`, whose custom runtime writes its pid to the file named by the
 * environment variable `pidVar`; expects the start to fail with `message` and no process left.
 */
async function failsToStart(yaml: string, pidVar: string, message: unknown): Promise<void> {
  const pidFile = join(tmp, `${pidVar}.pid`);
  process.env[pidVar] = pidFile;
  try {
    const started = startEmulator({
      config: fixture(`custom-runtime-apps/${yaml}`),
      port: 0,
      controlPort: 0,
      outDir: mkdtempSync(join(tmp, 'fails-')),
      logFormat: 'json',
      output: () => {},
    });
    await expect(started).rejects.toMatchObject({ code: 'CustomRuntimeStartFailed', message });
    expect(alive(Number(readFileSync(pidFile, 'utf8')))).toBe(false);
  } finally {
    delete process.env[pidVar];
  }
}

describe('a custom runtime that never listens', () => {
  it('fails start-up after its bound, naming the function and the port, and leaves no process', async () => {
    await failsToStart(
      's-never-listens.yaml',
      'MUTE_PID_FILE',
      expect.stringMatching(/^mute: the custom runtime `node \.\/server\.mjs` .* did not listen on port \d+ within/),
    );
  }, 60_000);
});

describe("FC's custom health check of a custom runtime", () => {
  it('starts serving once the check passes successThreshold times in a row, not before', async () => {
    const log: Record<string, unknown>[] = [];
    const emulator = await startEmulator({
      config: fixture('custom-runtime-apps/s-health.yaml'),
      port: 0,
      controlPort: 0,
      outDir: mkdtempSync(join(tmp, 'health-')),
      logFormat: 'json',
      output: (text) => {
        for (const l of text.trim().split('\n')) if (l) log.push(JSON.parse(l) as Record<string, unknown>);
      },
    });
    try {
      // READY_AFTER=2: probes 1 and 2 answer 503, 3 and 4 pass (successThreshold 2).
      // The child's output comes through a pipe, not with the answers: wait for the fourth line.
      const probes = await waitFor(() => {
        const seen = log.map((l) => l.message).filter((m) => String(m).includes('health probe'));
        return seen.length >= 4 ? seen : undefined;
      });
      expect(probes).toEqual([
        'slow-ready: health probe 1: not ready',
        'slow-ready: health probe 2: not ready',
        'slow-ready: health probe 3: ready',
        'slow-ready: health probe 4: ready',
      ]);
      const r = await fetch(`${emulator.triggerUrl}/echo?i=1`);
      expect(await r.json()).toMatchObject({ i: '1' });
    } finally {
      await emulator.close();
    }
  }, 30_000);

  it('fails start-up after failureThreshold failing probes, naming the check, and leaves no process', async () => {
    await failsToStart(
      's-never-ready.yaml',
      'NEVER_READY_PID_FILE',
      expect.stringContaining('failed its health check 2 times in a row (GET /ready answered 2xx in none'),
    );
  }, 30_000);

  it('refuses a health check outside FC ranges, naming the field', async () => {
    const dir = mkdtempSync(join(tmp, 'bad-health-'));
    const yaml = readFileSync(fixture('custom-runtime-apps/s-health.yaml'), 'utf8')
      .replace('timeoutSeconds: 1', 'timeoutSeconds: 9')
      .replace('code: ./faults', `code: ${JSON.stringify(fixture('custom-runtime-apps/faults'))}`);
    const file = join(dir, 's.yaml');
    writeFileSync(file, yaml);
    await expect(loadServerlessConfig(file, { env: {} })).rejects.toMatchObject({
      code: 'InvalidConfig',
      message: expect.stringContaining(
        'customRuntimeConfig.healthCheckConfig.timeoutSeconds must be a whole number from 1 to 3, got 9',
      ),
    });
  });
});

describe('the journeys above, in the log', () => {
  it('left no error, warning or stderr line (the stops and failures included)', () => {
    expect(lines.filter((l) => l.level === 'error' || l.level === 'warn' || l.stream === 'stderr')).toEqual([]);
  });
});

/** The pid a custom runtime's `/pid` answers, or an error that says what it answered instead. */
async function pidFrom(fn: string, response: Response): Promise<number> {
  const text = await response.text();
  const pid = Number(text);
  if (response.status !== 200 || !Number.isInteger(pid) || pid <= 0) {
    throw new Error(`${fn}/pid answered ${response.status}: ${text.slice(0, 300)}`);
  }
  return pid;
}
