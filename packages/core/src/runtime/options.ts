import { constants } from 'node:os';
import { checkEnv, checkLogger, kindOf } from '../handler-options.js';
import type { Logger } from '../logger.js';

/**
 * Options of every adapter's `listen(app, options)`.
 *
 * @example
 * ```ts
 * import express from 'express';
 * import { listen } from '@fc-async/express';
 * const app = express();
 * declare const db: { connect(): Promise<void> };
 * await listen(app, { preStopTimeoutMs: 20_000, onInitialize: () => db.connect() });
 * ```
 */
export interface FcListenOptions {
  /**
   * The port, a number from 0 to 65535 (or its digits in a string, such as `process.env.PORT`;
   * left unset when that is undefined). FC's custom runtime sets `FC_CUSTOM_LISTEN_PORT`; local
   * tools `FC_SERVER_PORT`.
   * @default FC_CUSTOM_LISTEN_PORT, then FC_SERVER_PORT, then 9000
   */
  port?: number | string | undefined;
  /** @default '0.0.0.0' (FC reaches the instance from outside its network namespace) */
  host?: string | undefined;
  /**
   * Where `FC_*` variables are read.
   * @default process.env
   */
  env?: Record<string, string | undefined> | undefined;
  /** @default a JSON-lines logger on stdout/stderr */
  logger?: Logger | undefined;
  /**
   * Budget of `GET /pre-stop`: half of it to let async tasks finish (the rest are stopped and
   * sent to onFailure), then pre-stop hooks (span flush) until it runs out. Keep it below the
   * PreStop timeout of the function's lifecycle config.
   * @default 10000
   */
  preStopTimeoutMs?: number | undefined;
  /**
   * Budget of the graceful shutdown (a signal, or `close()`): in-flight requests, then what
   * pre-stop does, then the app's own close.
   * @default 30000
   */
  shutdownTimeoutMs?: number | undefined;
  /**
   * Signals that shut down gracefully and then exit the process (0 when everything finished in
   * time, 1 when something had to be cut). `[]` installs no handler. A name the process cannot
   * catch (SIGKILL, SIGSTOP, a misspelt one) is a TypeError.
   * @default ['SIGTERM', 'SIGINT']
   */
  signals?: readonly NodeJS.Signals[] | undefined;
  /** Runs on FC's `POST /initialize` (the function's initializer); a throw answers 500. */
  onInitialize?: (() => unknown) | undefined;
  /** Runs on pre-stop and shutdown with the hooks from `addPreStopHook`, after the async queue. */
  onPreStop?: (() => unknown) | undefined;
}

export interface ResolvedListenOptions {
  port: number;
  host: string;
  logger: Logger | undefined;
  preStopTimeoutMs: number;
  shutdownTimeoutMs: number;
  signals: readonly NodeJS.Signals[];
  onInitialize: (() => unknown) | undefined;
  onPreStop: (() => unknown) | undefined;
}

/**
 * `options.port`: a number, or its digits in a string (`process.env.PORT` passed as it is, as
 * Node's own `listen()` takes it); anything else is refused.
 */
function portFrom(name: string, value: unknown): number {
  const n = typeof value === 'string' && /^\d+$/.test(value.trim()) ? Number(value) : value;
  if (typeof n === 'number' && Number.isInteger(n) && n >= 0 && n <= 65535) return n;
  const got = typeof value === 'string' ? `the string ${JSON.stringify(value)}` : `\`${String(value)}\``;
  throw new TypeError(`Expected \`${name}\` to be a port number from 0 to 65535, got ${got}`);
}

/** A port from an environment variable, where every value is text: digits only. */
function envPortFrom(name: string, value: string): number {
  const n = /^\d+$/.test(value.trim()) ? Number(value) : Number.NaN;
  if (Number.isInteger(n) && n <= 65535) return n;
  throw new TypeError(`Expected \`${name}\` to be a port number from 0 to 65535, got \`${value}\``);
}

function budget(name: string, value: unknown, fallback: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 1 || value > 3_600_000) {
    throw new TypeError(`Expected \`${name}\` to be an integer from 1 to 3600000, got \`${String(value)}\``);
  }
  return value;
}

/** A signal name this platform knows, other than SIGKILL and SIGSTOP (listening to those throws). */
function isCatchable(signal: unknown): boolean {
  return (
    typeof signal === 'string' &&
    Object.hasOwn(constants.signals, signal) &&
    signal !== 'SIGKILL' &&
    signal !== 'SIGSTOP'
  );
}

const LISTEN_KEYS = new Set([
  'port',
  'host',
  'env',
  'logger',
  'preStopTimeoutMs',
  'shutdownTimeoutMs',
  'signals',
  'onInitialize',
  'onPreStop',
]);

function hook(name: string, value: unknown): (() => unknown) | undefined {
  if (value !== undefined && typeof value !== 'function') {
    throw new TypeError(`Expected \`${name}\` to be a function, got \`${typeof value}\``);
  }
  return value as (() => unknown) | undefined;
}

/**
 * Validates `listen()` options eagerly and applies defaults (the caller's object is left as is).
 * The port: `options.port`, then `FC_CUSTOM_LISTEN_PORT`, then `FC_SERVER_PORT`, then 9000.
 */
export function resolveListenOptions(
  options: FcListenOptions,
  processEnv: Record<string, string | undefined>,
): ResolvedListenOptions {
  if (typeof options !== 'object' || options === null || Array.isArray(options)) {
    throw new TypeError(`Expected \`options\` to be an object, got \`${kindOf(options)}\``);
  }
  for (const key of Object.keys(options)) {
    if (!LISTEN_KEYS.has(key)) throw new TypeError(`Unknown listen() option \`${key}\``);
  }
  const env = options.env === undefined ? processEnv : options.env;
  checkEnv(env);
  checkLogger(options.logger);
  let port = 9000;
  if (options.port !== undefined) port = portFrom('port', options.port);
  else if (env.FC_CUSTOM_LISTEN_PORT) port = envPortFrom('FC_CUSTOM_LISTEN_PORT', env.FC_CUSTOM_LISTEN_PORT);
  else if (env.FC_SERVER_PORT) port = envPortFrom('FC_SERVER_PORT', env.FC_SERVER_PORT);
  const host = options.host ?? '0.0.0.0';
  if (typeof host !== 'string' || host === '') {
    throw new TypeError(`Expected \`host\` to be a non-empty string, got \`${String(host)}\``);
  }
  const signals = options.signals ?? ['SIGTERM', 'SIGINT'];
  if (!Array.isArray(signals)) {
    throw new TypeError(`Expected \`signals\` to be an array of signal names, got \`${String(signals)}\``);
  }
  const uncatchable = signals.findIndex((s) => !isCatchable(s));
  if (uncatchable !== -1) {
    throw new TypeError(
      `Expected \`signals\` to be an array of signal names a process can catch, got \`${String(signals[uncatchable])}\``,
    );
  }
  return {
    port,
    host,
    logger: options.logger,
    preStopTimeoutMs: budget('preStopTimeoutMs', options.preStopTimeoutMs, 10_000),
    shutdownTimeoutMs: budget('shutdownTimeoutMs', options.shutdownTimeoutMs, 30_000),
    signals,
    onInitialize: hook('onInitialize', options.onInitialize),
    onPreStop: hook('onPreStop', options.onPreStop),
  };
}
