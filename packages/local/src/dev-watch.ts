import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { connect as connectTcp, Socket } from 'node:net';
import { constants } from 'node:os';
import { isAbsolute, relative } from 'node:path';
import { connect as connectTls } from 'node:tls';
import { Worker } from 'node:worker_threads';
import { type TreeWatch, watchTree } from './watch-tree.js';

/** Quiet time after the last change before restarting: an editor's save, or a build, is several writes. */
const DEBOUNCE_MS = 150;
/** Beyond `--shutdown-timeout`: what the emulator's close may take more (stopped attempts, spans). */
const STOP_GRACE_MS = 20_000;
/** The child's file descriptor of the pipe from the supervisor. */
export const SUPERVISOR_FD = 3;
/**
 * The exit code of an emulator under `--watch` that refused to start for a reason no edit of the
 * watched files fixes (a flag, a port in use, no access key): the supervisor then exits 1 rather
 * than wait for a change (sysexits' EX_CONFIG).
 */
export const REFUSED_EXIT = 78;
/**
 * The exit code of an emulator under `--watch --redis` whose Redis did not answer at its start
 * (sysexits' EX_TEMPFAIL): the supervisor then waits for a change, or for that Redis to come up.
 */
export const REDIS_DOWN_EXIT = 75;
/**
 * The exit code of an emulator under `--watch` that stopped because the reader of its log went
 * away (its stdout or stderr, which it shares with the supervisor, closed: `| head` quit): the
 * supervisor then exits 1 too, as the emulator does without `--watch`, rather than wait for a
 * change with nobody left to read what it writes (sysexits' EX_IOERR).
 */
export const OUTPUT_GONE_EXIT = 74;
/** How often the supervisor asks a Redis that was down whether it answers now, and how long it waits for one answer. */
const REDIS_PROBE_MS = 2000;

/** A folder {@link superviseDev} watches, with what under it does not restart. */
export interface WatchedFolder {
  /** The folder watched, with everything under it. */
  root: string;
  /** Paths whose changes do not restart. */
  ignored: (path: string) => boolean;
  /** What the start's note names: the root by default (one file watched alone: that file). */
  shown?: string;
}

/** What {@link superviseDev} runs and watches. */
export interface SuperviseOptions {
  /** Arguments of the emulator's command after the script (`dev ...`), `--watch` left out. */
  args: string[];
  /**
   * The folders watched: the entry's (or the s.yaml's), then the real folder of an entry that is a
   * symbolic link to a file outside it (see `linkedEntryFolder`), then the tsconfig a TypeScript
   * entry compiles with when it is outside those (its folder, with only that file not ignored).
   */
  watched: readonly WatchedFolder[];
  /** Tasks are in memory (no `--store sqlite:PATH`, no `--redis`): a restart loses those not finished. */
  tasksInMemory: boolean;
  /** `--shutdown-timeout` in ms: a child still there this long (and 20 s) after SIGTERM gets SIGKILL. */
  shutdownTimeoutMs: number;
  /** Prints one line of the supervisor's own. */
  note: (message: string) => void;
  /**
   * `--redis`: an emulator that exits with {@link REDIS_DOWN_EXIT} starts again once this Redis
   * answers (one of `nodes`: a Redis Cluster's startup nodes with `--redis-cluster`); `name` is
   * how notes name it, credentials masked (`Redis at redis://***@10.0.0.5:6379`).
   */
  redis?: { nodes: readonly URL[]; name: string } | undefined;
}

/** A path as the user would type it: from the working folder when it is under it. */
function shown(path: string): string {
  const fromCwd = relative(process.cwd(), path);
  return fromCwd && !fromCwd.startsWith('..') && !isAbsolute(fromCwd) ? fromCwd : path;
}

/** The exit code of a child that ended with `code` or of `signal` (128 + its number, as shells say). */
const exitCode = (code: number | null, signal: NodeJS.Signals | null) =>
  code ?? 128 + (signal ? (constants.signals[signal] ?? 0) : 0);

/**
 * A thread of the emulator run by `fc-async dev --watch` that ends the process with SIGKILL once
 * `graceMs` have passed since the supervisor went (its parent process changed) and the process is
 * still there: the main thread of an app stuck in a synchronous loop runs no signal handler and
 * reads no pipe, and nothing else would stop it then. Polled, as a parent's end gives no event.
 */
const WATCHDOG = `
const { workerData } = require('node:worker_threads');
const parent = process.ppid;
const poll = setInterval(() => {
  if (process.ppid === parent) return;
  clearInterval(poll);
  setTimeout(() => process.kill(process.pid, 'SIGKILL'), workerData.graceMs);
}, workerData.pollMs);
`;

/**
 * In the emulator run by `fc-async dev --watch`: the supervisor's end of the pipe on `fd` closes
 * when the supervisor is gone, however it went (SIGKILL included); the emulator then stops as on
 * SIGTERM (the handler in force decides how), so that it never outlives the supervisor. One stuck
 * in a loop, which cannot, is killed by a watchdog thread `shutdownTimeoutMs` and 20 s later (as
 * the supervisor would have).
 *
 * @example
 * ```ts
 * stopWhenSupervisorGoes(SUPERVISOR_FD, 10_000);
 * ```
 */
export function stopWhenSupervisorGoes(fd: number, shutdownTimeoutMs: number): void {
  const pipe = new Socket({ fd, readable: true, writable: false });
  let gone = false;
  const stop = () => {
    if (gone) return;
    gone = true;
    process.kill(process.pid, 'SIGTERM');
  };
  pipe.on('error', stop).on('end', stop).on('close', stop);
  pipe.resume();
  // The pipe alone does not keep the emulator running.
  pipe.unref();
  const graceMs = shutdownTimeoutMs + STOP_GRACE_MS;
  new Worker(WATCHDOG, { eval: true, workerData: { graceMs, pollMs: 500 } }).unref();
}

/**
 * `fc-async dev --watch`: runs the emulator as a child (the same Node.js flags, so that a
 * TypeScript loader still applies; the same stdout and stderr) and restarts it when a file under
 * one of the `watched` folders changes: one line, SIGTERM (the emulator lets running tasks finish), then a new child
 * once the old one exited (SIGKILL to its group if it is still there 20 s past
 * `shutdownTimeoutMs`: an app stuck in a loop handles no signal). One child at a time: changes during a restart
 * are picked up by the next child. A child that exits by itself (a syntax error in the entry)
 * waits for the next change, unless it exits with {@link REFUSED_EXIT} or {@link OUTPUT_GONE_EXIT}: then the supervisor exits 1. SIGINT and SIGTERM are passed on to the child (a second one makes it
 * quit at once; the first during a restart only calls it off), and SIGHUP (the terminal closed) as well, with the same SIGKILL past its
 * time, and the supervisor exits with its code. The child runs in a process group of its
 * own, out of the reach of the terminal's Ctrl-C, which would otherwise reach it twice.
 *
 * @example
 * ```ts
 * superviseDev({ args: ['dev', 'app.ts'], watched: [{ root: '/app', ignored: () => false }], tasksInMemory: true, shutdownTimeoutMs: 10_000, note: console.error });
 * ```
 */
export function superviseDev(options: SuperviseOptions): void {
  new Supervisor(options).start();
}

class Supervisor {
  #child: ChildProcess | undefined;
  /** The child was asked to stop for a change: start another once it exited. */
  #restart = false;
  /** A signal came: exit once the child did. */
  #quitting = false;
  #killTimer: NodeJS.Timeout | undefined;
  #changed = new Set<string>();
  #debounce: NodeJS.Timeout | undefined;
  #trees: TreeWatch[] = [];
  /** The probe of a Redis that was down, while the supervisor waits for it (see #waitForRedis). */
  #redisWait: (() => void) | undefined;
  #redisProbe: NodeJS.Timeout | undefined;

  constructor(readonly o: SuperviseOptions) {}

  start(): void {
    try {
      for (const { root, ignored } of this.o.watched) {
        this.#trees.push(watchTree(root, ignored, (path) => this.#onChange(path)));
      }
    } catch (error) {
      this.#closeTrees();
      throw error;
    }
    const folders = this.o.watched.map(({ root, shown }) => shown ?? root).join(' and ');
    const memory = ' (tasks are in memory: a restart loses those not finished; --store sqlite:PATH keeps them)';
    this.o.note(`watching ${folders} for changes${this.o.tasksInMemory ? memory : ''}`);
    for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.on(signal, () => this.#onSignal(signal));
    this.#spawn();
  }

  #spawn(): void {
    const child = spawn(process.execPath, [...process.execArgv, process.argv[1] as string, ...this.o.args], {
      // stdin is not the terminal's: in a process group of its own, reading it would stop the child.
      stdio: ['ignore', 'inherit', 'inherit', 'pipe'],
      detached: true,
    });
    (child.stdio[SUPERVISOR_FD] as Socket | null)?.unref();
    child.once('error', (error) => {
      // Not spawned at all: no `exit` follows.
      if (child.pid !== undefined) return;
      this.o.note(`cannot start the emulator: ${error.message}`);
      this.#onExit(1);
    });
    child.once('exit', (code, signal) => this.#onExit(exitCode(code, signal)));
    this.#child = child;
  }

  #onExit(code: number): void {
    this.#child = undefined;
    clearTimeout(this.#killTimer);
    this.#killTimer = undefined;
    if (code === OUTPUT_GONE_EXIT || (code === REFUSED_EXIT && !this.#restart)) this.#exit(1);
    else if (this.#quitting) this.#exit(code);
    else if (this.#restart) {
      // Its ports are free now: the kernel closed its sockets with it, nothing it started holds
      // them (libuv opens sockets close-on-exec) and connections left in TIME_WAIT do not stop
      // a new listen (libuv sets SO_REUSEADDR). So the next child binds at once, no retry.
      this.#restart = false;
      this.#spawn();
    } else if (code === REDIS_DOWN_EXIT && this.o.redis) {
      this.o.note(`waiting for a change, or for ${this.o.redis.name} to come up`);
      this.#waitForRedis(this.o.redis);
    } else this.o.note('waiting for a change');
  }

  /**
   * Asks the Redis every {@link REDIS_PROBE_MS} whether it answers (a PING, any reply; a cluster:
   * any of its startup nodes), and starts the emulator again once it does after it did not: a
   * Redis that answers all along refused the emulator for another reason (its credentials), which
   * a restart would not mend. A change or a signal ends the wait.
   */
  #waitForRedis({ nodes, name }: { nodes: readonly URL[]; name: string }): void {
    let wasDown = false;
    const probe = () => {
      this.#redisProbe = undefined;
      const answers = nodes.map((url) => redisAnswers(url, REDIS_PROBE_MS));
      void Promise.all(answers).then((ups) => {
        const up = ups.includes(true);
        if (this.#child || this.#quitting || this.#redisWait !== probe) return;
        if (up && wasDown) {
          this.#redisWait = undefined;
          this.o.note(`${name} answers, starting`);
          this.#spawn();
          return;
        }
        wasDown ||= !up;
        this.#redisProbe = setTimeout(probe, REDIS_PROBE_MS).unref();
      });
    };
    this.#redisWait = probe;
    probe();
  }

  #stopWaitingForRedis(): void {
    this.#redisWait = undefined;
    clearTimeout(this.#redisProbe);
    this.#redisProbe = undefined;
  }

  #onChange(path: string): void {
    this.#changed.add(path);
    clearTimeout(this.#debounce);
    this.#debounce = setTimeout(() => this.#reload(), DEBOUNCE_MS);
  }

  #reload(): void {
    // A file saved through a temporary one (`sed -i`, some editors): the one that is still there.
    const changed = [...this.#changed];
    const first = changed.find((path) => existsSync(path)) ?? changed[0];
    this.#changed.clear();
    // Already stopping or about to start: the next child loads what changed.
    if (this.#quitting || this.#restart || first === undefined) return;
    this.o.note(`${shown(first)} changed, restarting`);
    this.#stopWaitingForRedis();
    const child = this.#child;
    if (!child) {
      this.#spawn();
      return;
    }
    this.#restart = true;
    child.kill('SIGTERM');
    this.#killLate(child);
  }

  #onSignal(signal: NodeJS.Signals): void {
    const again = this.#quitting;
    this.#quitting = true;
    clearTimeout(this.#debounce);
    const child = this.#child;
    if (!child) {
      this.#exit(0);
      return;
    }
    // One stopping for a restart already finishes its tasks: a first signal only calls the restart off.
    if (again || !this.#restart) child.kill(signal);
    this.#killLate(child);
  }

  /**
   * SIGKILL for a child asked to stop that is still there 20 s past `shutdownTimeoutMs`: an app
   * stuck in a loop handles no signal, nor the closing of the supervisor's pipe.
   */
  #killLate(child: ChildProcess): void {
    if (this.#killTimer !== undefined) return;
    this.#killTimer = setTimeout(() => {
      this.o.note('the emulator did not stop in time: killing it');
      this.#kill(child, 'SIGKILL');
    }, this.o.shutdownTimeoutMs + STOP_GRACE_MS).unref();
  }

  /** The child's group: what it started in its own (an app's `sh -c`) goes with it. */
  #kill(child: ChildProcess, signal: NodeJS.Signals): void {
    try {
      process.kill(-(child.pid as number), signal);
    } catch {
      child.kill(signal);
    }
  }

  #closeTrees(): void {
    for (const tree of this.#trees.splice(0)) tree.close();
  }

  #exit(code: number): void {
    this.#stopWaitingForRedis();
    this.#closeTrees();
    process.exit(code);
  }
}

/**
 * Whether the Redis at `url` answers a PING within `timeoutMs`: any reply counts (`+PONG`, or
 * `-NOAUTH` from one that wants credentials), as it is up. Only the URL's host and port are used
 * (no credentials are sent); TLS for `rediss:`, its certificate not checked: nothing is sent but the PING.
 */
export function redisAnswers(url: URL, timeoutMs: number): Promise<boolean> {
  const host = url.hostname.replace(/^\[(.*)\]$/, '$1');
  const port = Number(url.port || 6379);
  return new Promise((resolve) => {
    const socket =
      url.protocol === 'rediss:'
        ? connectTls({ host, port, servername: host, rejectUnauthorized: false })
        : connectTcp({ host, port });
    const done = (up: boolean) => {
      clearTimeout(timer);
      socket.destroy();
      resolve(up);
    };
    const timer = setTimeout(() => done(false), timeoutMs);
    socket.once(url.protocol === 'rediss:' ? 'secureConnect' : 'connect', () => socket.write('PING\r\n'));
    socket.once('data', () => done(true));
    socket.once('error', () => done(false));
    socket.once('close', () => done(false));
  });
}
