import { type Logger, logValue } from '@fc-async/core';

/**
 * `text`: aligned lines for people; `json`: one JSON object per line.
 *
 * @example
 * ```ts
 * await startEmulator({ entry: 'app.ts', logFormat: 'json' satisfies LogFormat });
 * ```
 */
export type LogFormat = 'text' | 'json';

/** One invocation: a request on the HTTP trigger, or an InvokeFunction call. */
export interface InvocationLine {
  function: string;
  requestId: string;
  type: 'Sync' | 'Async';
  status: number;
  method: string;
  /** Path without the query string (queries may hold tokens). */
  path: string;
  durationMs: number;
  taskId?: string | undefined;
  via: 'http' | 'api';
}

/** One attempt of an async task (`attempt` counts from 1), or a destination delivery. */
export interface AttemptLine {
  function: string;
  requestId: string;
  taskId: string;
  attempt: number;
  status: string;
  durationMs: number;
}

/** What the emulator serves, once it listens. */
export interface ReadyInfo {
  trigger: string;
  control: string;
  /**
   * Each function: its `handler`, or for a custom runtime (which has none) the `command` that
   * starts it (`customRuntimeConfig.command` then `.args`, or `./bootstrap`).
   */
  functions: { name: string; url?: string | undefined; kind: string; handler?: string; command?: string[] }[];
}

/** A task's record delivered: the side it went to and each destination called, by label. */
export interface DeliveryLine {
  function: string;
  requestId: string;
  taskId: string;
  destinationStatus: string;
  side: 'onSuccess' | 'onFailure';
  destinations: readonly { label: string; status: 'Succeeded' | 'Failed'; attempts: number }[];
}

/** The emulator's log: invocation and attempt lines, notices, and a core `Logger` for the rest. */
export interface EmulatorLog {
  readonly logger: Logger;
  invocation(line: InvocationLine): void;
  attempt(line: AttemptLine): void;
  delivery(line: DeliveryLine): void;
  notice(message: string, fields?: Record<string, unknown>): void;
  /** The startup banner: where each function and the control plane listen. */
  ready(info: ReadyInfo): void;
  /** Writes what is buffered now. */
  flush(): void;
}

type Write = (text: string, stream: 'out' | 'err') => void;

const defaultWrite: Write = (text, stream) => (stream === 'err' ? process.stderr : process.stdout).write(text);

/** How long a line may wait in the buffer, ms (too short for people to tell). */
const FLUSH_MS = 10;
/** Lines buffered before a write regardless of the time. */
const FLUSH_LINES = 1024;

/**
 * Lines are buffered and written together, within {@link FLUSH_MS}: under load one write per
 * request costs more than the request. Warnings and errors flush what is buffered and go at once.
 */
function bufferedWriter(write: Write) {
  let out: string[] = [];
  let timer: NodeJS.Timeout | undefined;
  const flush = () => {
    if (timer !== undefined) {
      clearTimeout(timer);
      timer = undefined;
    }
    if (out.length === 0) return;
    const text = `${out.join('\n')}\n`;
    out = [];
    write(text, 'out');
  };
  return {
    line(text: string, stream: 'out' | 'err') {
      if (stream === 'err') {
        flush();
        write(`${text}\n`, 'err');
        return;
      }
      out.push(text);
      if (out.length >= FLUSH_LINES) flush();
      else timer ??= setTimeout(flush, FLUSH_MS);
    },
    flush,
  };
}

let lastSecond = -1;
let secondText = '';
/** `HH:MM:SS.mmm` (UTC): the `HH:MM:SS.` part formatted once per second, the milliseconds appended. */
const time = () => {
  const now = Date.now();
  const second = Math.floor(now / 1000);
  if (second !== lastSecond) {
    lastSecond = second;
    secondText = new Date(second * 1000).toISOString().slice(11, 20);
  }
  const ms = now - second * 1000;
  return `${secondText}${ms < 10 ? '00' : ms < 100 ? '0' : ''}${ms}`;
};
const pad = (s: string | number, n: number) => String(s).padEnd(n);

/** C0 and C1 controls and DEL, tab aside: raw, they end a text line (CR, LF) or drive the terminal (ESC). */
// biome-ignore lint/suspicious/noControlCharactersInRegex: finding control characters is the point.
const CONTROL = /[\u0000-\u0008\u000a-\u001f\u007f-\u009f]/;
const CONTROLS = new RegExp(CONTROL.source, 'g');
const escapeControl = (c: string) =>
  c === '\n' ? '\\n' : c === '\r' ? '\\r' : `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`;

/**
 * `text` with its control characters escaped (`\n`, `\u001b`): a request path, a destination ARN
 * or a header value sent by a client cannot forge log lines or send escape codes to the terminal.
 */
const printable = (text: string) => (CONTROL.test(text) ? text.replace(CONTROLS, escapeControl) : text);

/** `pad` for values that repeat on every line (function names, statuses), escaped and padded once each. */
function padCached(cache: Map<string | number, string>, s: string | number, n: number): string {
  let out = cache.get(s);
  if (out === undefined) {
    out = pad(typeof s === 'string' ? printable(s) : s, n);
    if (cache.size >= 256) cache.clear();
    cache.set(s, out);
  }
  return out;
}

/**
 * Up to 5 frames of `error`'s stack, one escaped line each, without its message: a message (a
 * client's body in a parse error) may span lines, and is already logged inline, escaped.
 */
function framesOf(error: Error): string {
  const stack = error.stack ?? '';
  const end = error.message ? stack.indexOf(error.message) : -1; // the stack's first line(s) hold the message
  const lines = (end === -1 ? stack : stack.slice(end + error.message.length)).split('\n').slice(1, 6);
  return lines.map((line) => `\n    ${printable(line.trim())}`).join('');
}

function fieldText(fields: Record<string, unknown> | undefined): { inline: string; stack: string } {
  if (!fields) return { inline: '', stack: '' };
  let inline = '';
  let stack = '';
  for (const [key, value] of Object.entries(fields)) {
    if (value === undefined) continue;
    if (value instanceof Error) {
      inline += ` ${key}=${JSON.stringify(`${value.name}: ${value.message}`)}`;
      if (value.stack) stack = framesOf(value);
    } else {
      inline += ` ${key}=${typeof value === 'string' ? value : serialised(value)}`;
    }
  }
  return { inline: printable(inline), stack };
}

function jsonFields(fields: Record<string, unknown> | undefined): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(fields ?? {})) out[key] = logValue(value);
  return out;
}

/** `value` as JSON text, for the text format: what JSON cannot hold, the quoted text of its inspection. */
function serialised(value: unknown): string {
  return JSON.stringify(logValue(value)) ?? 'undefined';
}

/**
 * The emulator's log in `text` (default) or `json`. `level` filters the core logger's entries
 * (invocation and attempt lines always print).
 *
 * @example
 * ```ts
 * const log = createEmulatorLog({ format: 'json' });
 * log.invocation({ function: 'f', requestId, type: 'Sync', status: 200, method: 'GET', path: '/', durationMs: 2, via: 'http' });
 * ```
 */
export function createEmulatorLog(
  options: { format?: LogFormat; level?: 'debug' | 'info' | 'warn' | 'error'; write?: Write } = {},
): EmulatorLog {
  const json = options.format === 'json';
  const writer = bufferedWriter(options.write ?? defaultWrite);
  const levels = { debug: 10, info: 20, warn: 30, error: 40 } as const;
  const min = levels[options.level ?? 'info'];
  const entry = (level: keyof typeof levels, message: string, fields?: Record<string, unknown>) => {
    if (levels[level] < min) return;
    const stream = levels[level] >= levels.warn ? 'err' : 'out';
    if (json) {
      writer.line(JSON.stringify({ time: new Date().toISOString(), level, message, ...jsonFields(fields) }), stream);
    } else {
      const { inline, stack } = fieldText(fields);
      writer.line(`${time()} ${pad(level.toUpperCase(), 5)} ${printable(message)}${inline}${stack}`, stream);
    }
  };
  const names = new Map<string | number, string>();
  const statuses = new Map<string | number, string>();
  // `text` is escaped by its caller, part by part (function names once each, when padded): a scan
  // of each short string the line is made of costs less than one of the joined line.
  const record = (kind: string, fields: object, text: string) => {
    writer.line(
      json ? JSON.stringify({ time: new Date().toISOString(), kind, ...fields }) : `${time()} ${text}`,
      'out',
    );
  };
  return {
    logger: {
      debug: (m, f) => entry('debug', m, f),
      info: (m, f) => entry('info', m, f),
      warn: (m, f) => entry('warn', m, f),
      error: (m, f) => entry('error', m, f),
    },
    invocation(l) {
      const task = l.taskId && l.taskId !== l.requestId ? ` task ${printable(l.taskId)}` : '';
      const what = printable(`${l.method} ${l.path}`);
      record(
        'invocation',
        l,
        `${padCached(names, l.function, 14)} ${l.type === 'Async' ? 'Async' : 'Sync '} ${padCached(statuses, l.status, 9)} ${pad(what, 28)} ${pad(`${l.durationMs} ms`, 8)} ${printable(l.requestId)}${task}`,
      );
    },
    attempt(l) {
      const task = l.taskId !== l.requestId ? ` task ${printable(l.taskId)}` : '';
      record(
        'attempt',
        { type: 'Async', ...l },
        `${padCached(names, l.function, 14)} Task  ${padCached(statuses, l.status, 9)} ${pad(`attempt ${l.attempt}`, 28)} ${pad(`${l.durationMs} ms`, 8)} ${printable(l.requestId)}${task}`,
      );
    },
    delivery(l) {
      const task = l.taskId !== l.requestId ? ` task ${printable(l.taskId)}` : '';
      const to = l.destinations.map((d) => (d.status === 'Failed' ? `${d.label} (failed)` : d.label)).join(', ');
      record(
        'delivery',
        l,
        `${padCached(names, l.function, 14)} ${pad('Dest', 5)} ${padCached(statuses, l.destinationStatus, 9)} ${pad(printable(`${l.side} ${to}`), 28)} ${pad('', 8)} ${printable(l.requestId)}${task}`,
      );
    },
    notice(message, fields) {
      entry('info', message, fields);
    },
    ready(info) {
      if (json) {
        writer.line(JSON.stringify({ time: new Date().toISOString(), kind: 'ready', ...info }), 'out');
        return;
      }
      const width = Math.max(...info.functions.map((f) => f.name.length), 9) + 2;
      const lines = [`fc-async dev: ${info.functions.length} function${info.functions.length === 1 ? '' : 's'}`];
      for (const f of info.functions) {
        const where = f.url ?? 'event function (InvokeFunction, destinations)';
        // A custom runtime has no handler: what it serves is the command that starts it.
        const serves = f.command ? f.command.join(' ') : (f.handler ?? '');
        lines.push(`  ${pad(f.name, width)} ${pad(where, 40)} ${f.kind}, ${printable(serves)}`);
      }
      lines.push(`  ${pad('dashboard', width)} ${info.control}  (FC API 2023-03-30 on the same port)`);
      writer.line(lines.join('\n'), 'out');
    },
    flush: writer.flush,
  };
}
