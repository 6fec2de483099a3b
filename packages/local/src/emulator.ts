import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { basename, extname, relative } from 'node:path';
import { FcAsyncError, holdLateEngines } from '@fc-async/core';
import {
  backendFactory,
  gateBackends,
  lateEngineHold,
  notClusterFailure,
  parseStoreSpec,
  redisName,
  redisPrefixHint,
  type StoreSpec,
} from './backend.js';
import { BodyBudget } from './body.js';
import { closeInDestinationOrder } from './close-order.js';
import { createControlServer } from './control/server.js';
import { applyAsyncConfig, type DestinationContext } from './destinations.js';
import { thrownAt } from './entry.js';
import { failure } from './errors.js';
import { newInstanceId } from './event.js';
import { createLocalFunction, type LocalFunction } from './function.js';
import { createEmulatorLog, type EmulatorLog } from './log.js';
import { closeTimeout, type EmulatorOptions, type ResolvedOptions, resolveOptions } from './options.js';
import { answerProtocolErrors } from './protocol-errors.js';
import { FunctionRegistry } from './registry.js';
import { loadServerlessConfig } from './serverless.js';
import { flushSpans } from './spans.js';
import type { FunctionSpec } from './spec.js';
import { createTriggerServer, type TriggerServer } from './trigger.js';
import { within } from './within.js';

/**
 * A running emulator.
 *
 * @example
 * ```ts
 * const emulator = await startEmulator({ entry: 'app.ts', port: 0, controlPort: 0 });
 * console.log(emulator.triggerUrl, emulator.controlUrl);
 * await emulator.close();
 * ```
 */
export interface Emulator {
  /** The HTTP trigger, e.g. `http://127.0.0.1:9000`. */
  readonly triggerUrl: string;
  /** The control plane (FC API endpoint and dashboard), e.g. `http://127.0.0.1:9001`. */
  readonly controlUrl: string;
  /** Names of the functions served. */
  readonly functions: readonly string[];
  /**
   * Stops accepting requests, lets queued and running tasks finish until `timeoutMs` (with
   * `redis`, only the running ones; then stops them, or keeps them for the next start with a
   * durable store), flushes spans and closes both ports. Idempotent. Tasks delayed past
   * `timeoutMs` (`X-Fc-Async-Delay`, a retry's backoff) are not waited for: once only they are
   * left, it goes on at once.
   */
  close(options?: { timeoutMs?: number | undefined }): Promise<void>;
  /**
   * The destination calls under way (a webhook that is down, still retried), by function, task
   * and side: records of finished tasks that a process quitting now does not deliver.
   */
  owedDeliveries(): { functionName: string; taskId: string; side: 'onSuccess' | 'onFailure' }[];
}

const BACKEND_START_MS = 15_000;

async function specsOf(o: ResolvedOptions, log: EmulatorLog): Promise<FunctionSpec[]> {
  if (o.config) {
    const shown = relative(process.cwd(), o.config) || o.config;
    const config = await loadServerlessConfig(shown.startsWith('..') ? o.config : shown, {
      region: o.region,
      accountId: o.accountId,
    });
    for (const warning of config.warnings) log.notice(`${basename(o.config)}: ${warning}`);
    return config.functions;
  }
  const entry = o.entry as string;
  return [
    {
      name: o.name,
      file: entry,
      handler: `${basename(entry, extname(entry))}.handler`,
      http: {},
      style: 'fc3',
      timeout: o.timeoutSeconds,
    },
  ];
}

/**
 * Listens on `port` of `host`; `flag` names the option in a refusal. `beside`: a server of the
 * emulator's already listening, whose port, when it is the one in use, is named as the cause (the
 * same port given twice), rather than left to look like another program's.
 */
function listen(
  server: Server,
  port: number,
  host: string,
  flag: string,
  beside?: { server: Server; name: string; flag: string },
): Promise<string> {
  return new Promise((resolve, reject) => {
    server.once('error', (error: NodeJS.ErrnoException) => {
      const ours = beside !== undefined && port !== 0 && (beside.server.address() as AddressInfo | null)?.port === port;
      const message =
        error.code !== 'EADDRINUSE'
          ? `Cannot listen on ${host}:${port}: ${error.message}`
          : ours
            ? `Port ${port} on ${host} is taken by ${beside.name} (${beside.flag} ${port}): choose another with ${flag}`
            : `Port ${port} on ${host} is in use: choose another with ${flag}`;
      reject(new FcAsyncError('ListenFailed', message, { cause: error }));
    });
    server.listen(port, host, () => {
      const address = server.address() as AddressInfo;
      const shown = address.family === 'IPv6' ? `[${address.address}]` : address.address;
      resolve(`http://${shown}:${address.port}`);
    });
  });
}

/**
 * Says which functions serve one fc-async handler (their entries export the handler a module they
 * share made): Node loads that module once, so they share its async engine here, while on FC each
 * function has its own.
 */
function noticeSharedEngines(functions: readonly LocalFunction[], log: EmulatorLog): void {
  const byEngine = new Map<object, string[]>();
  for (const fn of functions) byEngine.set(fn.engine, [...(byEngine.get(fn.engine) ?? []), fn.spec.name]);
  for (const names of byEngine.values()) {
    if (names.length < 2) continue;
    log.notice(
      `${names.join(', ')}: their entries export one fc-async handler (made in a module they share), so here they share its async engine: one task list, each task told once per function, and the asyncInvokeConfig applied last for all of them; on FC each function has its own. Make the handler in each entry to keep them apart`,
    );
  }
}

/**
 * Shuts the functions down, all at once: a Node.js function's `preStop` hook, a custom runtime's
 * process (`GET /pre-stop`, SIGTERM, SIGKILL).
 */
function stopRuntimes(functions: readonly LocalFunction[]): Promise<unknown> {
  return Promise.all(functions.map((f) => f.shutdown?.().catch(() => undefined)));
}

function logTaskEvents(functions: readonly LocalFunction[], log: EmulatorLog): void {
  for (const fn of functions) {
    const name = fn.spec.name;
    // Tasks whose attempt line already told how they ended: their end is not logged again.
    const told = new Set<string>();
    fn.engine.subscribe((e) => {
      if (e.type === 'attempt') {
        if (e.status === 'Stopped' || e.status === 'Expired') {
          // Bounded: a task another instance settles (a shared queue) never comes back here.
          if (told.size >= 10_000) told.clear();
          told.add(e.taskId);
        }
        log.attempt({
          function: name,
          requestId: e.requestId,
          taskId: e.taskId,
          attempt: e.attempt + 1,
          status: e.status,
          durationMs: e.durationMs,
        });
      } else if (e.type === 'delivered') {
        log.delivery({
          function: name,
          requestId: e.requestId,
          taskId: e.taskId,
          destinationStatus: e.destinationStatus,
          side: e.side,
          destinations: e.destinations.map(({ label, status, attempts }) => ({ label, status, attempts })),
        });
      } else if (e.type === 'finished' && (e.status === 'Expired' || e.condition === 'Stopped')) {
        // An attempt stopped while running was logged as that attempt; one stopped while it waited
        // shows the attempts made (0 before any ran, 1 in the backoff after a first one failed).
        if (told.delete(e.taskId)) return;
        log.attempt({
          function: name,
          requestId: e.requestId,
          taskId: e.taskId,
          attempt: e.attempts,
          status: e.status,
          durationMs: 0,
        });
      }
    });
  }
}

/**
 * Starts the local FC emulator: loads the entry (or every Node.js function of an `s.yaml`), serves
 * HTTP functions as FC HTTP triggers on `port` with FC's async invocation (202, task ids, retries,
 * event age, delay, stop, destinations), and the FC API 2023-03-30 subset plus the task dashboard
 * on `controlPort`. Throws an `FcAsyncError` or `TypeError` with a clear message for bad options,
 * a malformed `s.yaml`, an entry that cannot be served, or a port in use.
 *
 * @example
 * ```ts
 * import { startEmulator } from '@fc-async/local';
 *
 * const emulator = await startEmulator({ config: 's.yaml', port: 9000, controlPort: 9001 });
 * process.once('SIGTERM', () => emulator.close({ timeoutMs: 10_000 }));
 * ```
 */
export async function startEmulator(options: EmulatorOptions = {}): Promise<Emulator> {
  const o = resolveOptions(options);
  const log = createEmulatorLog({ format: o.logFormat, write: o.output });
  // A function that ends the process while the emulator starts (process.exit() in an initializer)
  // leaves its last lines in the log's buffer: they are what tells why. Once it serves, see sayWhyOnExit.
  const flushOnExit = () => log.flush();
  process.prependListener('exit', flushOnExit);
  try {
    return await startLogged(o, log);
  } catch (error) {
    // So does a start that fails (an initializer that logged, then threw): fc-async dev exits next.
    log.flush();
    throw error;
  } finally {
    process.off('exit', flushOnExit);
  }
}

/** {@link startEmulator} once its options are resolved and its log made. */
async function startLogged(o: ResolvedOptions, log: EmulatorLog): Promise<Emulator> {
  const specs = await specsOf(o, log);
  const store = parseStoreSpec(o.store, o.redis, o.cwd, o.redisPrefix, o.redisCluster);
  const backends = gateBackends(
    await backendFactory(
      store,
      specs.map((s) => s.name),
    ),
  );
  const instanceId = newInstanceId();
  const functions: LocalFunction[] = [];
  let registry: FunctionRegistry | undefined;
  let destinations: DestinationContext | undefined;
  // Bounded: a backend that never connected would keep close() waiting for it. Custom runtimes'
  // processes are stopped whatever happens (stop() bounds itself).
  // What an entry makes once it has loaded is an inner handler too: see lateEngineHold.
  const releaseLate = holdLateEngines(
    lateEngineHold((backend) =>
      log.notice(
        `an fc-async handler or fcAsync() made after its entry loaded (in a timer, a callback, an import() the entry did not await, on a request) names an async backend of its own (${backend}), which is not started: the emulator plays FC in front of the app, its engine takes the async calls and runs every attempt, and that handler keeps what it runs in memory; made while the entry loads (at its top level, top-level awaits included), the emulator tells its function and says so at start`,
      ),
    ),
  );
  const closeAll = async () => {
    releaseLate();
    await within(
      Promise.all(functions.map((f) => f.handler.close({ timeoutMs: 1000 }).catch(() => undefined))),
      3000,
      () => undefined,
    );
    await stopRuntimes(functions);
  };
  try {
    for (const spec of specs) {
      const deps = {
        log,
        region: o.region,
        accountId: o.accountId,
        instanceId,
        concurrency: o.concurrency,
        maxQueuedTasks: o.maxQueuedTasks,
        retryBaseMs: o.retryBaseMs,
        redactHeaders: o.redactHeaders,
        ports: [
          { port: o.port, flag: '--port' },
          { port: o.controlPort, flag: '--control-port' },
        ].filter((p) => p.port > 0),
      };
      // An entry's own engines start with the emulator's backends: see gateBackends.
      const engineHold = backends.engineHold(() =>
        log.notice(
          `${spec.name}: its fc-async handler waited for its async backend while the entry loaded, so the backend started before the async config applied: what it recovers on this start follows the handler's own options`,
        ),
      );
      functions.push(await createLocalFunction(spec, { ...deps, backend: backends.backendFor(spec.name), engineHold }));
    }
    // The backends start once the config is in force: what a persistent one owes follows it.
    registry = new FunctionRegistry(functions);
    destinations = { functions: registry.byName, outDir: o.outDir, log };
    for (const fn of functions) applyAsyncConfig(fn, destinations);
    noticeSharedEngines(functions, log);
    logTaskEvents(functions, log);
    backends.open();
    await within(Promise.all(functions.map((f) => f.engine.whenReady())), BACKEND_START_MS, () => {
      throw new FcAsyncError(
        'BackendNotReady',
        `The task backend did not start within ${BACKEND_START_MS / 1000} s${reachable(store)}`,
      );
    }).catch((error: unknown) => {
      throw store.kind === 'redis' || store.kind === 'redis-cluster' ? redisNotReady(store, error) : error;
    });
  } catch (error) {
    backends.open();
    await closeAll();
    throw error;
  }

  // One budget of request body bytes for both ports.
  const bodies = new BodyBudget(o.maxBufferedBodyBytes);
  const trigger = createTriggerServer(registry, log, bodies);
  answerProtocolErrors(trigger, (code, message) => ({ body: { code, message } }));
  const auth = { required: o.requireSignatures, credentials: o.credentials };
  const control = createControlServer({
    registry,
    log,
    auth,
    destinations,
    bodies,
    maxEventStreams: o.maxEventStreams,
  });
  let triggerUrl: string;
  let controlUrl: string;
  try {
    triggerUrl = await listen(trigger, o.port, o.host, '--port');
    controlUrl = await listen(control.server, o.controlPort, o.controlHost, '--control-port', {
      server: trigger,
      name: 'the HTTP trigger',
      flag: '--port',
    });
  } catch (error) {
    trigger.close();
    control.server.close();
    await closeAll();
    throw error;
  }
  log.ready({
    trigger: triggerUrl,
    control: `${controlUrl}/`,
    functions: functions.map((f) => ({
      name: f.spec.name,
      url: f.spec.http ? `${triggerUrl}${registry.prefix(f)}` : undefined,
      kind: f.kind,
      ...(f.spec.customRuntime ? { command: f.spec.customRuntime.command } : { handler: f.spec.handler }),
    })),
  });
  log.flush();
  const persistent = o.store?.startsWith('sqlite:') === true || o.redis !== undefined;
  const unwatchExit = sayWhyOnExit(log, persistent);

  let closing: Promise<void> | undefined;
  const close = async (timeoutMs: number) => {
    unwatchExit();
    releaseLate();
    trigger.closing = true;
    const triggerClosed = new Promise((resolve) => trigger.close(resolve));
    trigger.closeIdleConnections();
    // Destination functions close last, so that records of tasks ending meanwhile reach them. Sync
    // calls under way get the same time to be answered; one still waiting then is given up (its
    // signal aborts, ShuttingDown) and its app the same time again to end its work (a child
    // process); one still waiting after that is answered 503. The custom runtimes stop even when a
    // backend fails to close.
    const bound = Math.min(timeoutMs, 2_147_483_647);
    await Promise.all([closeInDestinationOrder(functions, timeoutMs), giveUpSyncCalls(trigger, bound)]);
    trigger.cutInFlight();
    await stopRuntimes(functions);
    await flushSpans(Math.min(timeoutMs, 5000), log);
    trigger.closeAllConnections();
    control.hub.close();
    control.server.closeAllConnections();
    await Promise.all([triggerClosed, new Promise((resolve) => control.server.close(resolve))]);
    log.flush();
  };
  return {
    triggerUrl,
    controlUrl,
    functions: functions.map((f) => f.spec.name),
    owedDeliveries: () =>
      functions.flatMap((f) => f.engine.owedDeliveries().map((owed) => ({ functionName: f.spec.name, ...owed }))),
    close(closeOptions = {}) {
      let timeoutMs: number;
      try {
        timeoutMs = closeTimeout(closeOptions);
      } catch (error) {
        return Promise.reject(error);
      }
      closing ??= close(timeoutMs);
      return closing;
    },
  };
}

/**
 * Waits up to `bound` ms for the sync calls under way; gives up those still waiting (their
 * signals abort with `ShuttingDown`) and waits up to `bound` again for their apps to settle.
 */
async function giveUpSyncCalls(trigger: TriggerServer, bound: number): Promise<void> {
  await within(trigger.idle(), bound, () => undefined);
  const reason = new FcAsyncError('ShuttingDown', 'The emulator shut down before the function answered', {
    statusCode: 503,
  });
  if (trigger.giveUpInFlight(reason) > 0) await within(trigger.idle(), bound, () => undefined);
}

/** The process is ending for a reason of the emulator's own: no function is to blame. */
let ownExit = false;

/** What a backend start that said nothing in time asks of Redis: `: is Redis reachable at HOST:PORT?`. */
function reachable(store: StoreSpec): string {
  if (store.kind === 'redis') return `: is Redis reachable at ${store.url.host}?`;
  if (store.kind === 'redis-cluster') return `: is ${redisName(store)} reachable?`;
  return '';
}

/**
 * A backend start that failed under `--redis`: one message naming the Redis (its URL with the
 * credentials masked, a cluster's startup nodes' addresses) and the code, the backend's own error
 * as its cause. The code stays the backend's (`RedisUnavailable`), `BackendNotReady` for one that
 * said nothing in time. A refusal of a prefix without a hash tag on a Redis Cluster says which
 * flag gives one (`--redis-prefix`), that of a Redis that is no cluster under `--redis-cluster`
 * which flag to leave out.
 */
function redisNotReady(store: StoreSpec & { kind: 'redis' | 'redis-cluster' }, error: unknown): FcAsyncError<string> {
  const code = (error as { code?: unknown } | undefined)?.code;
  const named = typeof code === 'string' && /^[A-Z]\w*$/.test(code) ? code : 'BackendNotReady';
  const name = redisName(store) as string;
  // Said in the CLI's words, Redis's own answer as the cause.
  const notCluster = notClusterFailure(error);
  return new FcAsyncError(
    named,
    `${name[0]?.toUpperCase()}${name.slice(1)} is not ready (${named}): ${notCluster ?? failure(error)}${redisPrefixHint(error, store.prefix)}`,
    { cause: notCluster === undefined ? error : (error as Error).cause },
  );
}

/**
 * Ends the process for a reason of the emulator's own (the reader of its log went away), without
 * the notice that blames a function calling `process.exit()`.
 *
 * @example
 * ```ts
 * process.stdout.on('error', () => exitOwn(1));
 * ```
 */
export function exitOwn(code: number): never {
  ownExit = true;
  process.exit(code);
}

/**
 * The functions run in the emulator's process: one that calls `process.exit()` ends every function
 * with it. Say so, with the caller's place (the `exit` event runs inside that call) and what
 * becomes of the tasks, and write out the log lines still buffered (lost otherwise). Returns what
 * stops the watch, for a close begun on purpose.
 */
function sayWhyOnExit(log: EmulatorLog, persistent: boolean): () => void {
  const onExit = (code: number) => {
    if (ownExit) return;
    // The `exit` event runs inside process.exit(): the first frame of the project's own code called it.
    const at = thrownAt(new Error());
    log.flush();
    log.logger.error(
      `the process exits (code ${code}) while the emulator serves: a function called process.exit()? ${
        persistent
          ? 'tasks not finished stay in the store for the next start'
          : 'tasks not finished are lost (in memory: use --store sqlite:PATH to keep them)'
      }`,
      at ? { at } : undefined,
    );
    log.flush();
  };
  process.once('exit', onExit);
  return () => process.off('exit', onExit);
}
