import { type ChildProcess, spawn } from 'node:child_process';
import { accessSync, constants, existsSync } from 'node:fs';
import { Agent } from 'node:http';
import { connect } from 'node:net';
import { delimiter, join } from 'node:path';
import { FcAsyncError, type NodeHandler, newRequestId } from '@fc-async/core';
import { boundedLines } from './child-output.js';
import { type ChildTarget, customRuntimeListener, exchange } from './custom-proxy.js';
import { type FunctionIdentity, newInstanceId, serviceNameEnv } from './event.js';
import type { EmulatorLog } from './log.js';
import { freePort } from './ports.js';
import type { FunctionSpec, HealthCheck } from './spec.js';
import { within } from './within.js';

/** A started custom runtime: the listener that forwards to it, and how to stop it. */
export interface CustomRuntime {
  readonly listener: NodeHandler;
  /**
   * Lets the requests under way finish (5 s at most), then `GET /pre-stop` (when configured),
   * SIGTERM, SIGKILL; resolves once the process is gone.
   */
  stop(): Promise<void>;
}

/** One process of a custom runtime (FC's instance), which may have exited. */
interface Instance extends CustomRuntime {
  exited(): boolean;
}

/** How long the process may take to accept connections, and to go after SIGTERM, ms. */
const START_MS = 30_000;
const TERM_MS = 3000;
/** How long a stop lets the requests under way finish before `GET /pre-stop` and SIGTERM, ms. */
const DRAIN_MS = 5000;
/** The longest line of the child's output the log keeps, bytes (the rest is cut, `…`). */
const MAX_LINE = 8192;
/** What the child gets of the emulator's environment: what finds programs and sets the locale, no secrets. */
const INHERITED = ['PATH', 'HOME', 'USER', 'LOGNAME', 'SHELL', 'LANG', 'LANGUAGE', 'LC_ALL', 'TZ', 'TMPDIR'];

/**
 * What the emulator spawns for a custom runtime (`node -e`, the command as its arguments): it runs
 * the command in its own process group, the group this process leads, and takes the group down
 * once the emulator is gone however it went (SIGKILL included: the pipe on its stdin closes):
 * SIGTERM, then SIGKILL 3 s later. Signals sent to the group reach the command, which handles
 * them as it does on FC; this process waits for it and ends as it ended (code or signal).
 */
const SUPERVISOR = `
const { spawn } = require('node:child_process');
const [program, ...args] = process.argv.slice(1);
for (const name of ['SIGTERM', 'SIGINT', 'SIGHUP']) process.on(name, () => {});
const child = spawn(program, args, { stdio: ['ignore', 'inherit', 'inherit'] });
child.on('error', (error) => {
  process.stderr.write('could not be started: ' + error.message + '\\n');
  process.exit(127);
});
child.on('exit', (code, signal) => {
  if (signal) {
    process.removeAllListeners(signal);
    process.kill(process.pid, signal);
  } else process.exit(code ?? 1);
});
process.stdin.on('close', () => {
  try { process.kill(-process.pid, 'SIGTERM'); } catch {}
  setTimeout(() => process.kill(-process.pid, 'SIGKILL'), ${TERM_MS}).unref();
});
process.stdin.resume();
`;

const live = new Set<ChildProcess>();
let exitHook = false;

/** Signals the child's process group (it may have started others: `npm start`, `sh -c`). */
function signal(child: ChildProcess, name: NodeJS.Signals): void {
  try {
    process.kill(-(child.pid as number), name);
  } catch {
    child.kill(name);
  }
}

/**
 * Resolves once no process of the group is left, reaped included (a command killed with its
 * supervisor is reaped by init, a moment later), or after `ms`.
 */
async function groupGone(pgid: number, ms: number): Promise<void> {
  const until = Date.now() + ms;
  while (Date.now() < until) {
    try {
      process.kill(-pgid, 0);
    } catch {
      return;
    }
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

const accepts = (port: number) =>
  new Promise<boolean>((resolve) => {
    const socket = connect(port, '127.0.0.1');
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });

/**
 * FC's own folders of programs: a custom runtime's built-in languages (`/var/fc/lang/nodejs20/bin`)
 * and the official layers' (`/opt/nodejs20/bin`, `/opt/python3.10/bin`, `/opt/bin`). Group 1: the
 * program's name.
 */
const FC_PROGRAM = /^\/(?:var\/fc\/lang\/[^/]+|opt(?:\/[^/]+)?)\/bin\/([^/]+)$/;

/**
 * The program to spawn: a bare name (`node`) is looked up in the child's PATH, then in the
 * emulator's (an s.yaml PATH often names FC layer folders, `/opt/nodejs20/bin`, that are not here).
 * A path in one of FC's folders of programs that this machine does not have
 * (`/var/fc/lang/nodejs20/bin/node`, which FC's templates name) is looked up the same way by its
 * name, and `fcPath` says so; `missing` names one found nowhere. A bare name found nowhere is
 * spawned as given, and fails saying so (ENOENT).
 */
function programPath(
  program: string,
  childPath: string | undefined,
): { path: string; fcPath?: string; missing?: string } {
  let name = program;
  if (program.includes('/')) {
    const fc = FC_PROGRAM.exec(program)?.[1];
    if (fc === undefined || existsSync(program)) return { path: program };
    name = fc;
  }
  for (const dir of [childPath, process.env.PATH].join(delimiter).split(delimiter)) {
    if (!dir) continue;
    const path = join(dir, name);
    try {
      accessSync(path, constants.X_OK);
      return name === program ? { path } : { path, fcPath: program };
    } catch {}
  }
  return name === program ? { path: program } : { path: program, missing: name };
}

/**
 * A word of the start command as it reads here: FC mounts the function's code at `/code`, so an
 * s.yaml's `/code/bootstrap` is the code folder's `bootstrap` on this machine.
 */
export function onThisMachine(word: string, codeDir: string): string {
  if (word === '/code') return codeDir;
  return word.startsWith('/code/') ? join(codeDir, word.slice('/code/'.length)) : word;
}

/** The environment FC gives a custom runtime, with the function's variables; never the emulator's credentials. */
export function customRuntimeEnv(
  fn: FunctionIdentity,
  instanceId: string,
  port: number,
  own: Record<string, string> = {},
) {
  const env: Record<string, string> = {};
  for (const name of INHERITED) if (process.env[name] !== undefined) env[name] = process.env[name] as string;
  return Object.assign(env, {
    FC_FUNCTION_NAME: fn.name,
    FC_FUNCTION_HANDLER: fn.handler,
    FC_FUNCTION_MEMORY_SIZE: String(fn.memorySize),
    FC_REGION: fn.region,
    FC_ACCOUNT_ID: fn.accountId,
    FC_QUALIFIER: fn.qualifier,
    FC_INSTANCE_ID: instanceId,
    ...serviceNameEnv(fn),
    ...own,
    // Last: the port the emulator forwards to, whatever the function's variables say.
    FC_CUSTOM_LISTEN_PORT: String(port),
    FC_SERVER_PORT: String(port),
  });
}

/**
 * Starts a custom runtime as FC does (see {@link startInstance}) and, as FC does, starts a new
 * instance at the next invocation once one has exited: the invocation under way when it exited
 * fails (`502 CAExited`), the next ones wait for the new instance. An instance that cannot be
 * started again answers `502 FunctionNotStarted`, the reason in the log, and the next invocation
 * tries again. Throws `CustomRuntimeStartFailed` when the first instance cannot be started.
 */
export async function startCustomRuntime(
  spec: FunctionSpec,
  fn: FunctionIdentity,
  deps: { log: EmulatorLog; instanceId: string; ports?: readonly EmulatorPort[] | undefined },
): Promise<CustomRuntime> {
  let instance = await startInstance(spec, fn, deps, deps.instanceId, true);
  let restarting: Promise<Instance> | undefined;
  let stopping = false;
  const restart = () =>
    (restarting ??= (async () => {
      deps.log.notice(`${fn.name}: starting a new instance of the custom runtime (the last one exited)`, {
        function: fn.name,
      });
      try {
        instance = await startInstance(spec, fn, deps, newInstanceId());
        return instance;
      } catch (error) {
        deps.log.logger.error(`${fn.name}: the custom runtime could not be started again`, {
          function: fn.name,
          error,
        });
        throw new FcAsyncError(
          'FunctionNotStarted',
          `The custom runtime of ${fn.name} exited and could not be started again; the emulator's log says why`,
          { statusCode: 502, cause: error },
        );
      } finally {
        restarting = undefined;
      }
    })());
  return {
    async listener(req, res) {
      const current = instance.exited() && !stopping ? await restart() : instance;
      return current.listener(req, res);
    },
    async stop() {
      stopping = true;
      await restarting?.catch(() => undefined);
      await instance.stop();
    },
  };
}

/**
 * Starts one instance of a custom runtime: its command in its code folder with FC's environment,
 * its output into the emulator's log line by line, then waits until it accepts connections and
 * sends `POST /initialize` when an initializer is configured. Throws `CustomRuntimeStartFailed`
 * naming the function, the command and the last lines of its stderr; the process is gone by then.
 * `first`: the function's first instance, whose start tells of a program run in place of FC's.
 */
async function startInstance(
  spec: FunctionSpec,
  fn: FunctionIdentity,
  deps: { log: EmulatorLog; ports?: readonly EmulatorPort[] | undefined },
  instanceId: string,
  first = false,
): Promise<Instance> {
  const config = spec.customRuntime as NonNullable<FunctionSpec['customRuntime']>;
  const [program, ...args] = config.command.map((word) => onThisMachine(word, spec.file)) as [string, ...string[]];
  const port = await freePort();
  // An app that listens on its s.yaml port whatever FC_SERVER_PORT says (`app.listen(9000)`, as
  // start-web-framework's express does; FC gives it that port) is followed there, once it does,
  // when nothing was listening there before it started.
  const fixed = config.port === port || (await accepts(config.port)) ? undefined : config.port;
  const env = customRuntimeEnv(fn, instanceId, port, spec.environmentVariables);
  const spawned = programPath(program, env.PATH);
  if (spawned.missing !== undefined) {
    // Spawned, it would fail `spawn /var/fc/lang/... ENOENT`, as if that path were looked up alone.
    throw new FcAsyncError(
      'CustomRuntimeStartFailed',
      `${fn.name}: the custom runtime \`${config.command.join(' ')}\` (in ${spec.file}) could not be started: ${program} is where FC keeps that program; this machine has none there, and no ${spawned.missing} in the function's PATH nor in fc-async dev's: install it, or name a program this machine has`,
    );
  }
  if (spawned.fcPath !== undefined && first)
    deps.log.notice(
      `${fn.name}: ${spawned.fcPath} is where FC keeps that program; this machine has none there, so ${spawned.path} runs`,
      { function: fn.name },
    );
  const child = spawn(process.execPath, ['-e', SUPERVISOR, spawned.path, ...args], {
    cwd: spec.file,
    env,
    // stdin: a pipe the supervisor watches, never written to; it closes when the emulator exits.
    stdio: ['pipe', 'pipe', 'pipe'],
    detached: true,
  });
  live.add(child);
  if (!exitHook) {
    exitHook = true;
    process.on('exit', () => {
      for (const c of live) signal(c, 'SIGKILL');
    });
  }
  const stderr: string[] = [];
  // Whether its output said a port was taken (EADDRINUSE): then its s.yaml port may be why it exited.
  let addressInUse = false;
  let spawnError: Error | undefined;
  let stopping = false;
  let exited: () => void = () => undefined;
  const target: ChildTarget & { exit: ChildTarget['exit']; port: number } = {
    name: fn.name,
    command: config.command,
    port,
    agent: new Agent({ keepAlive: true }),
    exit: undefined,
    exited: new Promise<void>((resolve) => {
      exited = resolve;
    }),
    pending: new Set(),
  };
  const gone = new Promise<void>((resolve) => {
    child.once('error', (error) => {
      spawnError = error;
      if (child.pid === undefined) resolve();
    });
    child.once('exit', (code, sig) => {
      target.exit = { code, signal: sig };
      exited();
      live.delete(child);
      if (!stopping)
        deps.log.logger.error(`${fn.name}: the custom runtime exited`, { function: fn.name, code, signal: sig });
      resolve();
    });
  });
  // After `exit`, once the pipes closed: every line of stderr has been read.
  const closed = new Promise((resolve) => child.once('close', resolve));
  for (const [stream, level] of [
    [child.stdout, 'info'],
    [child.stderr, 'warn'],
  ] as const) {
    boundedLines(stream, MAX_LINE, (text) => {
      if (level === 'warn' && stderr.push(text) > 10) stderr.shift();
      if (ADDRESS_IN_USE.test(text)) addressInUse = true;
      deps.log.logger[level](`${fn.name}: ${text}`, {
        function: fn.name,
        stream: level === 'warn' ? 'stderr' : 'stdout',
      });
    });
  }

  const kill = async () => {
    stopping = true;
    target.agent.destroy();
    if (child.pid === undefined) return;
    if (!target.exit) signal(child, 'SIGTERM');
    await within(gone, TERM_MS, () => undefined);
    signal(child, 'SIGKILL'); // what is left of the group, or a process that ignored SIGTERM
    await within(gone, TERM_MS, () => undefined);
    await groupGone(child.pid, TERM_MS);
  };
  const headers = (path: string) => ({
    'x-fc-request-id': newRequestId(),
    'x-fc-function-name': fn.name,
    'x-fc-function-handler': fn.handler,
    'x-fc-function-memory': String(fn.memorySize),
    'x-fc-region': fn.region,
    'x-fc-account-id': fn.accountId,
    'x-fc-qualifier': fn.qualifier,
    ...(fn.logProject === undefined
      ? {}
      : { 'x-fc-service-logproject': fn.logProject, 'x-fc-service-logstore': fn.logStore as string }),
    'x-fc-control-path': path,
  });
  const hook = (method: string, path: string, timeout: number) =>
    within(exchange(target, { method, path, headers: headers(path) }), timeout * 1000, () => {
      throw new Error(`did not answer ${method} ${path} within ${timeout} s`);
    });

  const ports = { configured: config.port, fixed, own: deps.ports ?? [] };
  try {
    const followed = config.healthCheck
      ? await passHealthCheck(target, () => spawnError, config.healthCheck, hook, ports)
      : await waitListening(target, () => spawnError, ports);
    if (followed) {
      deps.log.notice(
        `${fn.name}: the custom runtime listens on its s.yaml port ${target.port}, not on FC_SERVER_PORT; requests go there (a second emulator serving it would find the port taken)`,
        { function: fn.name },
      );
    }
    if (config.initializer) {
      const answer = await hook('POST', '/initialize', config.initializer.timeout);
      if (answer.statusCode >= 300 || answer.headers['x-fc-status'] === '404') {
        throw new Error(`answered POST /initialize with HTTP ${answer.statusCode}`);
      }
    }
  } catch (error) {
    await kill();
    await within(closed, 1000, () => undefined);
    const tail = stderr.length > 0 ? `; its last stderr lines: ${stderr.join(' | ')}` : '';
    const problem = error instanceof Error ? error.message : String(error);
    // Read once its output is: a port taken is why it exited only when it said so (EADDRINUSE).
    const note = error instanceof EndedEarly && addressInUse ? takenNote(target, ports) : '';
    throw new FcAsyncError(
      'CustomRuntimeStartFailed',
      `${fn.name}: the custom runtime \`${config.command.join(' ')}\` (in ${spec.file}) ${problem}${note}${tail}`,
      { cause: error },
    );
  }

  let stopped: Promise<void> | undefined;
  return {
    listener: customRuntimeListener(target, !spec.http, fn.timeout),
    exited: () => target.exit !== undefined,
    stop() {
      stopped ??= (async () => {
        // As FC does before it stops an instance: the requests under way finish first (bounded).
        await within(Promise.allSettled([...target.pending]), DRAIN_MS, () => undefined);
        if (config.preStop && !target.exit) {
          stopping = true;
          await hook('GET', '/pre-stop', Math.min(config.preStop.timeout, 30)).catch((error: unknown) =>
            deps.log.logger.warn(`${fn.name}: GET /pre-stop failed`, { function: fn.name, error }),
          );
        }
        await kill();
      })();
      return stopped;
    },
  };
}

/**
 * What a program's output says when the port it listens on is taken: Node.js's `EADDRINUSE`
 * (Windows' `WSAEADDRINUSE`), the `Address already in use` of Python, Go, Java and others.
 */
const ADDRESS_IN_USE = /EADDRINUSE|address already in use/i;

/** A child that exited before it listened or was ready ({@link gone}). */
class EndedEarly extends Error {}

/**
 * Why the child cannot be waited for any longer (it could not start, or it exited before it
 * `listened` or `was ready`), if so.
 */
function gone(t: ChildTarget, failed: () => Error | undefined, before: 'listened' | 'was ready'): Error | undefined {
  const error = failed();
  if (error) return new Error(`could not be started: ${error.message}`);
  if (!t.exit) return undefined;
  const how = t.exit.signal ? `was killed by ${t.exit.signal}` : `exited with code ${t.exit.code}`;
  return new EndedEarly(`${how} before it ${before} on port ${t.port}`);
}

/**
 * FC's custom health check (see {@link HealthCheck}): resolves after `successThreshold` passing
 * probes in a row; throws after `failureThreshold` failing ones in a row, or when the child exits.
 * A child that listens on `ports.fixed` rather than on the port it was given is probed there
 * ({@link followFixedPort}): it resolves true then.
 */
async function passHealthCheck(
  t: ChildTarget & { port: number },
  failed: () => Error | undefined,
  check: HealthCheck,
  hook: (method: string, path: string, timeout: number) => Promise<{ statusCode: number }>,
  ports: Ports,
): Promise<boolean> {
  const pause = async (seconds: number) => {
    const until = Date.now() + seconds * 1000;
    while (Date.now() < until) {
      const error = gone(t, failed, 'was ready');
      if (error) throw error;
      await new Promise((resolve) => setTimeout(resolve, Math.min(50, until - Date.now())));
    }
  };
  await pause(check.initialDelaySeconds);
  let passed = 0;
  let failures = 0;
  let followed = false;
  for (;;) {
    const error = gone(t, failed, 'was ready');
    if (error) throw error;
    let ok = await accepts(t.port);
    if (!ok && (await followFixedPort(t, ports))) ok = followed = true;
    if (ok && check.httpGetUrl) {
      const answer = await hook('GET', check.httpGetUrl, check.timeoutSeconds).catch(() => undefined);
      ok = answer !== undefined && answer.statusCode >= 200 && answer.statusCode < 300;
    }
    if (ok) {
      failures = 0;
      if (++passed >= check.successThreshold) return followed;
    } else {
      passed = 0;
      if (++failures >= check.failureThreshold) {
        const what = check.httpGetUrl
          ? `GET ${check.httpGetUrl} answered 2xx`
          : `it accepted connections on port ${t.port}`;
        throw new Error(
          `failed its health check ${failures} times in a row (${what} in none; customRuntimeConfig.healthCheckConfig)`,
        );
      }
    }
    await pause(check.periodSeconds);
  }
}

/** A port of the emulator's own, which a custom runtime must not take: its trigger port, its control port. */
export interface EmulatorPort {
  port: number;
  flag: string;
}

/** The s.yaml port of a custom runtime, `fixed` when it was free as the child started, and the emulator's own. */
interface Ports {
  configured: number;
  fixed: number | undefined;
  own: readonly EmulatorPort[];
}

/**
 * Points `t` at `ports.fixed` when the child listens there (its s.yaml port, free when it started)
 * rather than on the port it was given: true when it did. Throws when that port is one of the
 * emulator's `own`.
 */
async function followFixedPort(t: ChildTarget & { port: number }, ports: Ports): Promise<boolean> {
  if (ports.fixed === undefined || t.port === ports.fixed || !(await accepts(ports.fixed))) return false;
  const own = ports.own.find((p) => p.port === ports.fixed);
  if (own) {
    throw new Error(
      `listens on its s.yaml port ${ports.fixed}, not on FC_SERVER_PORT, and ${ports.fixed} is fc-async dev's ${own.flag}: give fc-async dev another ${own.flag} (${own.flag} ${ports.fixed === 8080 ? 8081 : 8080}), or make the app listen on process.env.FC_SERVER_PORT`,
    );
  }
  t.port = ports.fixed;
  return true;
}

/**
 * Why a child that exited saying a port was taken may not have listened: its s.yaml port was taken
 * when it started (an app that listens there whatever FC_SERVER_PORT says then fails, EADDRINUSE),
 * and by whom if known.
 */
function takenNote(t: ChildTarget & { port: number }, ports: Ports): string {
  if (!configuredTaken(t, ports)) return '';
  const own = ports.own.find((p) => p.port === ports.configured);
  const by = own
    ? `fc-async dev's ${own.flag} listens there`
    : "another function's custom runtime or another program listens there";
  return ` (FC_SERVER_PORT); its s.yaml port ${ports.configured} was taken when it started (${by}): make the app listen on process.env.FC_SERVER_PORT`;
}

/** Whether the child's s.yaml port, other than the port it was given, was taken when it started. */
function configuredTaken(t: ChildTarget & { port: number }, ports: Ports): boolean {
  return ports.fixed === undefined && ports.configured !== t.port;
}

/**
 * Resolves once the child accepts connections: false on the port it was given, true once it
 * listens on `fixed` instead ({@link followFixedPort}), which `t.port` then names. Throws when it
 * exited, could not start, took too long, or took a port of the emulator's `own`.
 */
async function waitListening(
  t: ChildTarget & { port: number },
  failed: () => Error | undefined,
  ports: Ports,
): Promise<boolean> {
  const deadline = Date.now() + START_MS;
  for (;;) {
    const error = gone(t, failed, 'listened');
    if (error) throw error;
    if (await accepts(t.port)) return false;
    if (await followFixedPort(t, ports)) return true;
    if (Date.now() > deadline) {
      const taken = configuredTaken(t, ports) ? ', which was taken when it started' : '';
      throw new Error(
        `did not listen on port ${t.port} within ${START_MS / 1000} s: locally it must listen on FC_CUSTOM_LISTEN_PORT (or FC_SERVER_PORT), not a fixed port ${ports.configured}${taken}`,
      );
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}
