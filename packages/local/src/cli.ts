#!/usr/bin/env node
import { existsSync, readFileSync } from 'node:fs';
import { dirname, isAbsolute, relative, resolve } from 'node:path';
import { Command, InvalidArgumentError, Option } from 'commander';
import { backendFactory, parseStoreSpec, redisName } from './backend.js';
import {
  OUTPUT_GONE_EXIT,
  REDIS_DOWN_EXIT,
  REFUSED_EXIT,
  SUPERVISOR_FD,
  stopWhenSupervisorGoes,
  superviseDev,
} from './dev-watch.js';
import { type Emulator, exitOwn, startEmulator } from './emulator.js';
import { entriesLoading, entryTsconfig, thrownAt } from './entry.js';
import { failure } from './errors.js';
import { createEmulatorLog } from './log.js';
import { type EmulatorOptions, resolveOptions, socketHost } from './options.js';
import { freePort } from './ports.js';
import { linkedEntryFolder, watchIgnore } from './watch-tree.js';

const version = (JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string })
  .version;

const integer = (min: number, max: number) => (value: string) => {
  const n = Number(value);
  if (!/^\d+$/.test(value) || n < min || n > max) {
    throw new InvalidArgumentError(`expected an integer from ${min} to ${max}`);
  }
  return n;
};

interface DevFlags {
  port: number;
  host: string;
  controlPort: number;
  controlHost?: string;
  requireSignatures?: boolean;
  config?: string;
  name?: string;
  region: string;
  accountId: string;
  store?: string;
  redis?: string[];
  redisCluster?: boolean;
  redisPrefix?: string;
  concurrency: number;
  maxQueuedTasks: number;
  retryDelay: number;
  timeout: number;
  shutdownTimeout: number;
  logFormat: 'text' | 'json';
  outDir: string;
  maxEventStreams: number;
  maxBodyBytes: number;
  redactHeader?: string[];
  watch?: boolean;
  supervisorFd?: number;
}

/**
 * `text` as one word of a POSIX shell, for a command line a message suggests: as it is when
 * nothing in it is special, else in single quotes (a `'` in it written `'\''`).
 */
function shellWord(text: string): string {
  return /^[\w@%+=:,./-]+$/.test(text) ? text : `'${text.replaceAll("'", "'\\''")}'`;
}

/** The CLI itself ends the process (a refusal, a signal): no function called process.exit(). */
let exitingOnPurpose = false;

function exit(code: number): never {
  exitingOnPurpose = true;
  process.exit(code);
}

function fail(message: string, code = 1): never {
  process.stderr.write(`fc-async: ${message}\n`);
  exit(code);
}

/** `startEmulator()` options whose flag is not the option's name in kebab case. */
const FLAG_OF: Record<string, string> = {
  retryBaseMs: '--retry-delay',
  timeoutSeconds: '--timeout',
  maxBufferedBodyBytes: '--max-body-bytes',
  redactHeaders: '--redact-header',
  entry: 'the entry',
};

/**
 * Why the start failed, in the CLI's words: `startEmulator()` names its options (``Expected
 * `accountId` ...``), the command line has flags (`--account-id`).
 */
function startFailure(error: unknown, command: Command): string {
  const flagOf = (name: string) =>
    FLAG_OF[name] ?? command.options.find((option) => option.attributeName() === name)?.long;
  return failure(error)
    .replace(/^Expected `(\w+)`/, (whole, name: string) => `Expected ${flagOf(name) ?? whole.slice(9)}`)
    .replace(/^(Pass either an entry or )`config`/, '$1--config');
}

/**
 * Refusals of an emulator under `--watch` that no edit of the watched files fixes: no access key
 * for a control host beyond loopback, a port in use, an `--out-dir` that cannot be written, a
 * store package not installed.
 */
const NOT_FIXED_BY_AN_EDIT = new Set(['AccessKeyRequired', 'ListenFailed', 'OutDirNotWritable', 'BackendMissing']);

/**
 * Refusals of an emulator under `--watch --redis` for a Redis that did not answer: the supervisor
 * then waits for a change, or for that Redis to come up (see `REDIS_DOWN_EXIT`).
 */
const REDIS_DOWN = new Set(['RedisUnavailable', 'BackendNotReady', 'BackendUnavailable']);

const codeOf = (error: unknown) => (error instanceof Error ? (error as { code?: unknown }).code : undefined);

/**
 * The control plane's key, from the environment. `take`: removed from it as well, before any
 * function loads: functions run in this process, and one that logs its environment (a debug
 * route, an error reporter) would give away the key that guards the control plane (`--watch`'s
 * supervisor keeps it for the emulators it starts).
 */
function credentialsFromEnv(take = false): EmulatorOptions['credentials'] {
  const accessKeyId = process.env.FC_ASYNC_ACCESS_KEY_ID;
  const accessKeySecret = process.env.FC_ASYNC_ACCESS_KEY_SECRET;
  if (take) {
    delete process.env.FC_ASYNC_ACCESS_KEY_ID;
    delete process.env.FC_ASYNC_ACCESS_KEY_SECRET;
  }
  if (!accessKeyId && !accessKeySecret) return undefined;
  if (!accessKeyId || !accessKeySecret)
    fail('set both FC_ASYNC_ACCESS_KEY_ID and FC_ASYNC_ACCESS_KEY_SECRET, or neither');
  return { accessKeyId, accessKeySecret };
}

/** The `startEmulator()` options of the flags. */
function emulatorOptions(
  entry: string | undefined,
  flags: DevFlags,
  credentials: EmulatorOptions['credentials'],
): EmulatorOptions {
  return {
    entry,
    config: flags.config,
    name: flags.name,
    port: flags.port,
    host: flags.host,
    controlPort: flags.controlPort,
    controlHost: flags.controlHost,
    credentials,
    requireSignatures: flags.requireSignatures,
    region: flags.region,
    accountId: flags.accountId,
    store: flags.store,
    redis: flags.redis,
    redisCluster: flags.redisCluster,
    redisPrefix: flags.redisPrefix,
    concurrency: flags.concurrency,
    maxQueuedTasks: flags.maxQueuedTasks,
    retryBaseMs: flags.retryDelay,
    timeoutSeconds: flags.timeout,
    logFormat: flags.logFormat,
    outDir: flags.outDir,
    maxEventStreams: flags.maxEventStreams,
    maxBufferedBodyBytes: flags.maxBodyBytes,
    redactHeaders: flags.redactHeader,
  };
}

/** One line on stderr that is not an emulator's log line, JSON with `--log-format json`. */
function notice(flags: DevFlags, note: string): void {
  process.stderr.write(
    `${flags.logFormat === 'json' ? JSON.stringify({ time: new Date().toISOString(), level: 'info', message: note }) : note}\n`,
  );
}

/**
 * A second signal this soon after the first is the same Ctrl-C told twice (the terminal signals
 * the whole process group, and a wrapper such as `npm start`'s tsx passes it on as well), not a
 * second press.
 */
const SAME_CTRL_C_MS = 500;

/** What stops the emulator once it serves: a signal (SIGINT, SIGTERM, SIGHUP), or the reader of its log going away. */
interface Stopper {
  signal(signal: NodeJS.Signals): void;
  outputGone(): void;
}

/**
 * Ctrl-C / SIGTERM / SIGHUP: stop accepting, let tasks finish within the bound, flush spans; twice
 * quits at once. The log's reader gone (`| head` quit): the same stop, then exit `outputGoneCode`.
 */
function stopHandler(emulator: Emulator, flags: DevFlags, outputGoneCode: number): Stopper {
  let stoppedAt: number | undefined;
  let exitCode = 0;
  const stop = (why: string, again: string) => {
    stoppedAt = Date.now();
    notice(
      flags,
      `${why}: finishing running tasks for up to ${flags.shutdownTimeout} s, then stopping what is left; press Ctrl-C ${again}to quit now`,
    );
    emulator.close({ timeoutMs: flags.shutdownTimeout * 1000 }).then(
      () => process.exit(exitCode),
      (error: unknown) => fail(`shutdown failed: ${error instanceof Error ? error.message : String(error)}`),
    );
  };
  return {
    signal(signal) {
      if (stoppedAt === undefined) {
        stop(signal, 'again ');
        return;
      }
      if (Date.now() - stoppedAt < SAME_CTRL_C_MS) return;
      notice(
        flags,
        flags.store?.startsWith('sqlite:') || flags.redis !== undefined
          ? `${signal} again: quitting now; tasks not finished stay in the store for the next start`
          : `${signal} again: quitting now; tasks not finished are dropped (no Stopped record, no onFailure)${droppedDeliveries(emulator)}`,
      );
      process.exit(130);
    },
    outputGone() {
      // Each later write fails as well: the first one decides.
      if (exitCode !== 0) return;
      exitCode = outputGoneCode;
      // Accepted tasks still run to their end (or their stop), as on SIGTERM; one stop already
      // under way (a signal's) goes on, and ends with this code.
      if (stoppedAt === undefined) stop('fc-async: the reader of the log went away (stdout or stderr closed)', '');
    },
  };
}

/** How many task ids {@link droppedDeliveries} names; the count covers the rest. */
const NAMED_DELIVERIES = 10;

/**
 * With the store in memory, the destination records a quit drops (finished tasks whose webhook is
 * still being retried): `; 2 destination records not delivered: t1 (onSuccess), t2 (onFailure)`,
 * the task ids and the emulator's function when it serves several. Nothing when none is owed.
 */
function droppedDeliveries(emulator: Emulator): string {
  const owed = emulator.owedDeliveries();
  if (owed.length === 0) return '';
  const several = emulator.functions.length > 1;
  const named = owed
    .slice(0, NAMED_DELIVERIES)
    .map((o) => `${several ? `${o.functionName}/` : ''}${o.taskId} (${o.side})`)
    .join(', ');
  const more = owed.length > NAMED_DELIVERIES ? ` and ${owed.length - NAMED_DELIVERIES} more` : '';
  return `; ${owed.length} destination ${owed.length === 1 ? 'record' : 'records'} not delivered: ${named}${more}`;
}

/** Node's exit code when the main module's top-level await is left unsettled with nothing more to run. */
const UNSETTLED_TOP_LEVEL_AWAIT = 13;

/**
 * The process ending while the emulator starts, by no doing of the CLI's, said as every other
 * refusal to start is, in one line with exit code 1:
 * - an entry whose top-level await waits for what nothing will settle (a promise never resolved,
 *   no timer or socket left): Node ends the process with its code 13 and no word;
 * - an entry (or what it imports) that calls process.exit() while it loads, or an app that does
 *   before the ports open: the process would end with the code it chose, 0 as well, and no word.
 * Returns the undoing.
 */
function sayEndDuringStart(): () => void {
  const onExit = (code: number) => {
    if (exitingOnPurpose) return;
    const entries = entriesLoading();
    // Node 20 sets process.exitCode in an 'exit' listener of its own, after the event's code.
    if (code === UNSETTLED_TOP_LEVEL_AWAIT || process.exitCode === UNSETTLED_TOP_LEVEL_AWAIT) {
      process.stderr.write(
        entries.length > 0
          ? `fc-async: ${entries.map(({ file, waiting }) => `${file}: its loading never finished: ${waiting} waits for a promise that nothing settles`).join('; ')}\n`
          : 'fc-async: the start never finished: it waited for a promise that nothing settles\n',
      );
    } else {
      // The 'exit' event runs inside process.exit(): the first frame of the project's own code called it.
      const at = thrownAt(new Error());
      const where = at === undefined ? '' : ` at ${at}`;
      process.stderr.write(
        entries.length > 0
          ? `fc-async: ${entries.map(({ file }) => file).join(', ')}: process.exit(${code}) was called${where} while it loaded, so nothing is served\n`
          : `fc-async: process.exit(${code}) was called${where} before the emulator listened, so nothing is served\n`,
      );
    }
    process.exitCode = 1;
  };
  process.on('exit', onExit);
  return () => process.off('exit', onExit);
}

/**
 * `gone` once whoever reads the log is gone (a closed pipe: `| head` or `| jq` quit), called
 * again at each later write that fails.
 */
function whenOutputGone(gone: () => void): void {
  for (const stream of [process.stdout, process.stderr]) {
    stream.on('error', (error: NodeJS.ErrnoException) => {
      if (error.code === 'EPIPE') gone();
    });
  }
}

/** Errors the app leaves unhandled are reported, not fatal: the emulator keeps serving. */
function reportStrayErrors(format: 'text' | 'json'): void {
  // As the emulator's own log lines: a time, the error's fields (its stack under it in text), control
  // characters escaped (an app's message cannot forge a line or send escape codes to the terminal).
  const log = createEmulatorLog({ format });
  const report = (kind: string) => (error: unknown) => log.logger.error(kind, { error });
  process.on('unhandledRejection', report('unhandled rejection in the app'));
  process.on('uncaughtException', report('uncaught exception in the app'));
}

/** The options of the emulator `--watch` runs: those given on the command line, `--watch` left out. */
function childArgs(command: Command, entry: string | undefined, ports: { port: number; controlPort: number }) {
  const args = ['dev'];
  const own = new Set(['watch', 'supervisorFd', 'port', 'controlPort']);
  for (const option of command.options) {
    const key = option.attributeName();
    if (own.has(key) || command.getOptionValueSource(key) !== 'cli') continue;
    const value: unknown = command.getOptionValue(key);
    if (value === true) args.push(option.long as string);
    // A repeatable flag (--redact-header): once per value, as it was given.
    else if (Array.isArray(value)) for (const item of value) args.push(option.long as string, String(item));
    else if (value !== undefined && value !== false) args.push(option.long as string, String(value));
  }
  args.push('--port', String(ports.port), '--control-port', String(ports.controlPort));
  args.push('--supervisor-fd', String(SUPERVISOR_FD));
  return entry === undefined ? args : [...args, '--', entry];
}

/**
 * `--watch`: the emulator in a child, restarted when a file of the project changes (the entry's
 * folder, or the s.yaml's). Ports given as 0 are picked here once, so that restarts keep them.
 */
async function watchDev(entry: string | undefined, flags: DevFlags, command: Command): Promise<void> {
  // A half-set access key, a bad flag value or none for a control host beyond loopback: refused
  // once here, as without --watch, rather than by each child (no edit of the project fixes them).
  const credentials = credentialsFromEnv();
  try {
    resolveOptions(emulatorOptions(entry, flags, credentials));
  } catch (error) {
    // Unless the s.yaml to serve is not there yet: writing it is the change that starts the emulator.
    if (codeOf(error) !== 'NothingToServe') fail(startFailure(error, command));
  }
  let store: ReturnType<typeof parseStoreSpec>;
  try {
    store = parseStoreSpec(flags.store, flags.redis, undefined, flags.redisPrefix, flags.redisCluster);
    // A prefix bullmq() refuses (it loads @fc-async/bullmq to ask): no edit of the project fixes it either.
    if ((store.kind === 'redis' || store.kind === 'redis-cluster') && store.prefix !== undefined) {
      await backendFactory(store, []);
    }
  } catch (error) {
    fail(failure(error));
  }
  const root = resolve(entry !== undefined ? dirname(entry) : flags.config ? dirname(flags.config) : '.');
  const host = socketHost(flags.host);
  const controlHost = socketHost(flags.controlHost ?? '127.0.0.1');
  // An address not on this machine (or no address at all): one line, as the emulator says it.
  const pick = (on: string) =>
    freePort(on).catch((error: unknown) =>
      fail(`Cannot listen on ${on}: ${error instanceof Error ? error.message : String(error)}`),
    );
  const port = flags.port || (await pick(host));
  let controlPort = flags.controlPort;
  // Only a port given as 0 is picked, apart from the trigger's: a port given twice is refused by the emulator.
  while (!controlPort || (flags.controlPort === 0 && controlPort === port && controlHost === host))
    controlPort = await pick(controlHost);
  try {
    // An entry that is a symbolic link to a file elsewhere: that file's folder is what Node loads.
    const linked = entry === undefined ? undefined : linkedEntryFolder(resolve(entry), root);
    const folders = linked === undefined ? [root] : [root, linked];
    superviseDev({
      args: childArgs(command, entry, { port, controlPort }),
      watched: [
        ...folders.map((folder) => ({
          root: folder,
          ignored: watchIgnore({
            root: folder,
            outDir: resolve(flags.outDir),
            sqlitePath: store.kind === 'sqlite' ? store.path : undefined,
          }),
        })),
        ...tsconfigWatch(entry, folders),
      ],
      tasksInMemory: store.kind === 'memory',
      redis:
        store.kind === 'redis' || store.kind === 'redis-cluster'
          ? { nodes: store.kind === 'redis' ? [store.url] : store.nodes, name: redisName(store) as string }
          : undefined,
      shutdownTimeoutMs: flags.shutdownTimeout * 1000,
      note: (message) => notice(flags, `fc-async: ${message}`),
    });
  } catch (error) {
    fail(`cannot watch ${root}: ${error instanceof Error ? error.message : String(error)}`);
  }
}

/**
 * The tsconfig a TypeScript entry compiles with, watched alone (its folder, nothing under it) when
 * it is outside the watched folders (`tsconfig.json` above `src/`): an edit restarts, and a
 * tsconfig that failed to load the entry is taken again once fixed.
 */
function tsconfigWatch(entry: string | undefined, folders: string[]) {
  const tsconfig = entry === undefined ? undefined : entryTsconfig(resolve(entry));
  if (tsconfig === undefined) return [];
  const under = (folder: string) => {
    const path = relative(folder, tsconfig);
    return !path.startsWith('..') && !isAbsolute(path);
  };
  const folder = dirname(tsconfig);
  // TSX_TSCONFIG_PATH may name a file in no folder at all: the emulator's start says so.
  if (folders.some(under) || !existsSync(folder)) return [];
  return [{ root: folder, ignored: (path: string) => path !== folder && path !== tsconfig, shown: tsconfig }];
}

/** Commander's error on one line: its `(Did you mean --port?)` goes on the line of the problem. */
const oneLine = (text: string) =>
  text
    .trim()
    .replace(/\s*\n\s*\(Did you mean (.+?)\?\)/g, '; did you mean $1?')
    .replace(/\s*\n\s*/g, ' ');

/**
 * With an s.yaml, flags that set what each of its functions has its own of: one line naming
 * those given, instead of dropping them without a word.
 */
function overriddenFlags(entry: string | undefined, flags: DevFlags, command: Command): void {
  if (entry !== undefined || flags.supervisorFd !== undefined) return;
  if (flags.config === undefined && !['s.yaml', 's.yml'].some((file) => existsSync(file))) return;
  const given = (key: string) => command.getOptionValueSource(key) === 'cli';
  const unused = ['name', 'timeout'].filter(given).map((key) => `--${key}`);
  const parts: string[] = [];
  if (unused.length > 0) parts.push(`${unused.join(' and ')} ${unused.length > 1 ? 'are' : 'is'} not used`);
  if (given('region')) parts.push('--region applies only to functions whose s.yaml names no region');
  if (parts.length > 0) {
    notice(flags, `fc-async: the s.yaml gives each function its own settings: ${parts.join('; ')}`);
  }
}

const program = new Command('fc-async')
  .description('Local Function Compute emulator for fc-async apps')
  .version(version)
  // A bad flag is one line like every other refusal to start, pointing at --help (not the whole help).
  .configureOutput({
    outputError: (text, write) =>
      write(
        `fc-async: ${oneLine(text.replace(/^error: /, ''))} (see fc-async ${/unknown command/.test(text) ? '' : 'dev '}--help)\n`,
      ),
  });

program
  .command('dev')
  .description('serve an app or an s.yaml as FC HTTP functions, with async invocation, the FC task API and a dashboard')
  .argument('[entry]', 'module exporting an Express, Koa or Fastify app, or an FC handler (JS or TS)')
  .option('--port <port>', 'HTTP trigger port (0: any free port)', integer(0, 65_535), 9000)
  .option('--host <host>', 'HTTP trigger address', '127.0.0.1')
  .option('--control-port <port>', 'FC API and dashboard port (0: any free port)', integer(0, 65_535), 9001)
  .option(
    '--control-host <host>',
    'FC API and dashboard address beyond 127.0.0.1 (needs FC_ASYNC_ACCESS_KEY_ID/SECRET)',
  )
  .option('--require-signatures', 'refuse unsigned FC API requests on loopback too (needs the access key)')
  .option('--config <file>', 'Serverless Devs s.yaml (default: ./s.yaml when no entry is given)')
  .option('--name <function>', 'function name of the entry (default: the entry file name)')
  .option('--region <region>', 'region in ARNs and x-fc-region', 'cn-hangzhou')
  .option('--account-id <id>', 'account id in ARNs and x-fc-account-id', '0')
  .option('--store <store>', 'where tasks live: memory or sqlite:PATH (needs @fc-async/sqlite)')
  .option(
    '--redis <url>',
    'keep tasks in Redis through BullMQ (needs @fc-async/bullmq); with --redis-cluster, a node of the cluster (repeatable)',
    (url: string, urls: string[] | undefined) => [...(urls ?? []), url],
  )
  .option(
    '--redis-cluster',
    "the --redis URLs are nodes of a Redis Cluster in direct connection mode (open-source cluster, ElastiCache cluster mode, ApsaraDB/Tair direct connection); their password and rediss:// TLS apply to every node; the prefix defaults to '{fc-async}'",
  )
  .option(
    '--redis-prefix <prefix>',
    "with --redis, each function's BullMQ prefix is <prefix>:<function> (default: fc-async, '{fc-async}' with --redis-cluster); on a Redis Cluster a hash tag such as '{fc-async}'",
  )
  .option('--concurrency <n>', 'async attempts running at once, per function', integer(1, 10_000), 10)
  .option(
    '--max-queued-tasks <n>',
    'waiting tasks per function before async calls get 429',
    integer(1, 10_000_000),
    10_000,
  )
  .option('--retry-delay <ms>', 'delay before the first retry; doubles per retry', integer(1, 3_600_000), 1000)
  .option('--timeout <seconds>', 'timeout of the entry function (s.yaml functions use theirs)', integer(1, 86_400), 60)
  .option('--shutdown-timeout <seconds>', 'on Ctrl-C, how long running tasks may take', integer(0, 86_400), 10)
  .addOption(
    new Option('--log-format <format>', 'log lines for people or machines').choices(['text', 'json']).default('text'),
  )
  .option('--out-dir <dir>', 'folder of JSONL files for destinations not reachable locally', '.fc-async')
  .option('--max-event-streams <n>', 'dashboard live streams open at once', integer(1, 10_000), 64)
  .option(
    '--max-body-bytes <bytes>',
    "request body bytes held at once, both ports together (from 32 MiB, FC's largest body)",
    integer(32 * 1024 * 1024, Number.MAX_SAFE_INTEGER),
    256 * 1024 * 1024,
  )
  .option(
    '--redact-header <name>',
    "keep this request header out of async task records and replays, on top of authorization, proxy-authorization, x-acs-security-token, cookies and FC's credentials (repeatable)",
    (name: string, names: string[] | undefined) => [...(names ?? []), name],
  )
  .option(
    '--watch',
    'restart when a file of the project changes (tasks survive with --store sqlite:PATH or --redis URL)',
  )
  // The pipe from the --watch supervisor, whose closing stops this emulator.
  .addOption(new Option('--supervisor-fd <fd>').argParser(integer(3, 1023)).hideHelp())
  .action(async (entry: string | undefined, flags: DevFlags, command: Command) => {
    if (entry !== undefined && /\.ya?ml$/i.test(entry)) {
      fail(`${entry} is a YAML file, not a module to serve: serve an s.yaml with --config ${shellWord(entry)}`);
    }
    overriddenFlags(entry, flags, command);
    if (flags.watch) return watchDev(entry, flags, command);
    if (flags.supervisorFd !== undefined) stopWhenSupervisorGoes(flags.supervisorFd, flags.shutdownTimeout * 1000);
    const supervised = flags.supervisorFd !== undefined;
    // The log's reader gone while functions start: nothing is accepted yet, so exit at once.
    const outputGoneCode = supervised ? OUTPUT_GONE_EXIT : 1;
    let onOutputGone = (): void => {
      exitingOnPurpose = true;
      exitOwn(outputGoneCode);
    };
    whenOutputGone(() => onOutputGone());
    reportStrayErrors(flags.logFormat);
    // Ctrl-C while functions start: exit through process.exit, whose hook stops the custom
    // runtimes already started (they run in process groups of their own, out of the signal's reach).
    // One listener throughout: one removed and another added drops a signal that came in between
    // (its libuv handle is closed with it), and the ready line may well be answered by a SIGTERM.
    let onSignal = (_signal: NodeJS.Signals): void => exit(130);
    // SIGHUP: the terminal closed. Node's default would end the process at once, dropping the
    // tasks accepted and skipping the exit hooks; it stops as on SIGTERM instead.
    for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.on(signal, () => onSignal(signal));
    let emulator: Emulator;
    const unsettled = sayEndDuringStart();
    try {
      emulator = await startEmulator(emulatorOptions(entry, flags, credentialsFromEnv(true)));
      unsettled();
    } catch (error) {
      unsettled();
      // Under --watch: the supervisor exits too, rather than wait for a change that cannot help.
      const code = codeOf(error) as string;
      const redisDown = supervised && flags.redis !== undefined && REDIS_DOWN.has(code);
      fail(
        startFailure(error, command),
        supervised && NOT_FIXED_BY_AN_EDIT.has(code) ? REFUSED_EXIT : redisDown ? REDIS_DOWN_EXIT : 1,
      );
    }
    const stopper = stopHandler(emulator, flags, outputGoneCode);
    onSignal = stopper.signal;
    onOutputGone = stopper.outputGone;
  });

await program.parseAsync(process.argv);
