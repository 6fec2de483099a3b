import { inspect } from 'node:util';
import { objectOption } from './destinations/validate.js';
import { isError } from './errors.js';

/**
 * The logger fc-async writes to: the message first, then the fields of the entry (`requestId`,
 * `error`...). `console`, the FC context logger and {@link createConsoleLogger} take that order.
 * pino, bunyan and Fastify's `app.log` take the fields first (a string after the message is a
 * format argument to them, and the fields are lost): wrap them in {@link objectFirstLogger}.
 *
 * @example
 * ```ts
 * import pino from 'pino';
 * const logger: Logger = objectFirstLogger(pino());
 * declare const app: NodeHandler;
 * createFcHandler(app, { logger });
 * ```
 */
export interface Logger {
  debug(message: string, fields?: Record<string, unknown>): void;
  info(message: string, fields?: Record<string, unknown>): void;
  warn(message: string, fields?: Record<string, unknown>): void;
  error(message: string, fields?: Record<string, unknown>): void;
}

/**
 * A logger that takes the fields first and the message second, as pino, bunyan and Fastify's
 * `app.log` (a pino logger) do.
 *
 * @example
 * ```ts
 * import pino from 'pino';
 * const log: ObjectFirstLog = pino();
 * ```
 */
export interface ObjectFirstLog {
  debug(fields: Record<string, unknown>, message: string): void;
  info(fields: Record<string, unknown>, message: string): void;
  warn(fields: Record<string, unknown>, message: string): void;
  error(fields: Record<string, unknown>, message: string): void;
}

/**
 * A {@link Logger} writing to an object-first logger (pino, bunyan, Fastify's `app.log`):
 * `logger.info(message, fields)` calls `log.info(fields, message)`. Errors in the fields are
 * written as `{ name, message, code, stack }` (pino and bunyan serialize an error under `err`
 * only, and would write `{}` for fc-async's `error`).
 *
 * @example
 * ```ts
 * import Fastify from 'fastify';
 * import { createHandler } from '@fc-async/fastify';
 * const app = Fastify({ logger: true });
 * export const handler = createHandler(app, { logger: objectFirstLogger(app.log) });
 * ```
 */
export function objectFirstLogger(log: ObjectFirstLog): Logger {
  if (typeof log !== 'object' || log === null) {
    throw new TypeError(`Expected \`log\` to be a logger object (pino, bunyan, app.log), got \`${String(log)}\``);
  }
  for (const level of Object.keys(LEVELS) as LogLevel[]) {
    if (typeof log[level] !== 'function') {
      throw new TypeError(`Expected \`log\` to have a \`${level}\` method, got \`${typeof log[level]}\``);
    }
  }
  // Called as methods: pino's methods read their logger from `this`.
  return {
    debug: (message, fields) => log.debug(serialise(fields), message),
    info: (message, fields) => log.info(serialise(fields), message),
    warn: (message, fields) => log.warn(serialise(fields), message),
    error: (message, fields) => log.error(serialise(fields), message),
  };
}

/**
 * The levels of {@link createConsoleLogger}, lowest first.
 *
 * @example
 * ```ts
 * const level: LogLevel = process.env.LOG_LEVEL === 'debug' ? 'debug' : 'info';
 * const logger = createConsoleLogger({ level });
 * ```
 */
export type LogLevel = 'debug' | 'info' | 'warn' | 'error';
const LEVELS: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40 };

/**
 * A logger writing one JSON line per entry to stderr (warn, error) or stdout, from `level` up.
 * Errors in `fields` are written as `{ name, message, code, stack }`.
 *
 * @example
 * ```ts
 * const logger = createConsoleLogger({ level: 'debug' });
 * logger.info('ready', { port: 9000 });
 * ```
 */
export function createConsoleLogger(options: { level?: LogLevel | undefined } = {}): Logger {
  const level = objectOption('options', options, 'createConsoleLogger()', ['level']).level ?? 'info';
  if (!Object.hasOwn(LEVELS, level)) {
    throw new TypeError(`Expected \`level\` to be 'debug', 'info', 'warn' or 'error', got \`${String(level)}\``);
  }
  const min = LEVELS[level];
  const write = (level: LogLevel, message: string, fields?: Record<string, unknown>) => {
    if (LEVELS[level] < min) return;
    const line = JSON.stringify({ level, time: new Date().toISOString(), message, ...serialise(fields) });
    (LEVELS[level] >= LEVELS.warn ? process.stderr : process.stdout).write(`${line}\n`);
  };
  return {
    debug: (m, f) => write('debug', m, f),
    info: (m, f) => write('info', m, f),
    warn: (m, f) => write('warn', m, f),
    error: (m, f) => write('error', m, f),
  };
}

/**
 * A logger that drops everything.
 *
 * @example
 * ```ts
 * declare const app: NodeHandler;
 * createFcHandler(app, { logger: silentLogger });
 * ```
 */
export const silentLogger: Logger = Object.freeze({
  debug() {},
  info() {},
  warn() {},
  error() {},
});

function serialise(fields: Record<string, unknown> | undefined): Record<string, unknown> {
  if (!fields) return {};
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(fields)) out[key] = logValue(value);
  return out;
}

/**
 * What a JSON log line holds of a field's value: an Error's fields ({@link errorFields}), JSON's
 * own view of the rest, and the text of its inspection for what JSON cannot hold (a circular
 * object, a BigInt, a `toJSON` that throws or gives nothing: what an app may throw), so that
 * `JSON.stringify` of a line made of such values never throws (in an `uncaughtException`
 * listener, a throw ends the process).
 *
 * @example
 * ```ts
 * const loop: Record<string, unknown> = {};
 * loop.self = loop;
 * JSON.stringify({ message: 'app failed', error: logValue(new Error('down')), loop: logValue(loop) });
 * ```
 */
export function logValue(value: unknown): unknown {
  if (isError(value)) return logValue(errorFields(value));
  if (typeof value === 'symbol') return value.toString();
  if (typeof value !== 'object' && typeof value !== 'bigint') return value;
  try {
    const text = JSON.stringify(value);
    if (text !== undefined) return JSON.parse(text);
  } catch {
    // Inspected below.
  }
  return inspect(value, { depth: 3, breakLength: Number.POSITIVE_INFINITY });
}

/**
 * A URL, or what was meant to be one, fit for an error message or a log line: a URL's credentials
 * and its query and fragment are masked (`redis://***@host:6379/0`, `https://host/cb?***`). One
 * that is no URL for its port alone and has no `@` (`redis://host:99999`) is masked alike; any
 * other value that is no URL (a mistyped `redis//:secret@host`, `redis://:secret@host:99999`) is
 * shown up to its first `:`, `@`, `?` or `#` only, as where a secret ends cannot be told. Scheme,
 * host, port and path stay.
 *
 * @example
 * ```ts
 * maskUrl('redis://:hunter2@127.0.0.1:6379/0'); // 'redis://***@127.0.0.1:6379/0'
 * maskUrl('hooks.example.com/cb?token=abc'); // 'hooks.example.com/cb***'
 * maskUrl('redis://127.0.0.1:99999'); // 'redis://127.0.0.1:99999'
 * ```
 */
export function maskUrl(value: string): string {
  let url: URL | undefined;
  try {
    url = new URL(value);
  } catch {
    url = undefined;
  }
  if (url?.host) {
    const credentials = url.username || url.password ? '***@' : '';
    // `new URL('ftp://x').pathname` is `/`: not added where the value had none.
    const path = url.pathname === '/' && !/^[^/?#]*\//.test(value.slice(value.indexOf('//') + 2)) ? '' : url.pathname;
    // What follows the path, whatever it holds (a token), as the kind it is: `?***`, `#***`.
    return `${url.protocol}//${credentials}${url.host}${path}${url.search ? '?***' : ''}${url.hash ? '#***' : ''}`;
  }
  // A URL refused for its port (`redis://h:99999`) holds no secret where it has no `@`: shown, but its
  // query and fragment. With an `@` anywhere, where credentials end cannot be told: masked.
  const address = PLAIN_ADDRESS.exec(value);
  if (address && !value.includes('@')) {
    const rest = value.slice(address[0].length);
    return `${address[0]}${rest.startsWith('?') ? '?***' : ''}${rest.includes('#') ? '#***' : ''}`;
  }
  const cut = value.search(/[:@?#]/);
  return cut === -1 ? value : `${value.slice(0, cut)}***`;
}

/** `scheme://host:port/path`, up to a query or fragment: a host name or `[IPv6]` and a port of digits. */
const PLAIN_ADDRESS =
  /^[A-Za-z][A-Za-z0-9+.-]*:\/\/(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9._~-]+)(?::\d*)?(?:\/[^?#]*)?(?=[?#]|$)/;

/**
 * A plain-object view of an error for log lines.
 *
 * @example
 * ```ts
 * errorFields(new Error('boom')); // { name: 'Error', message: 'boom', stack: 'Error: boom\n    at ...' }
 * ```
 */
export function errorFields(error: Error): Record<string, unknown> {
  // An app's error may have getters that throw: a log line must not end the process.
  const read = (key: 'name' | 'message' | 'stack' | 'code'): unknown => {
    try {
      return (error as unknown as Record<string, unknown>)[key];
    } catch {
      return `(${key} could not be read)`;
    }
  };
  const code = read('code');
  return {
    name: read('name'),
    message: read('message'),
    ...(code === undefined ? {} : { code }),
    stack: read('stack'),
  };
}
