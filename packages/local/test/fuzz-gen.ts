import { connect } from 'node:net';
import type { EmulatorOptions } from '../src/index.js';
import { startEcho } from './helpers.js';

/**
 * What the emulator's fuzz tests share: a seeded generator (mulberry32; `FUZZ_SEED=<n>` replays
 * a run), a raw HTTP/1.1 exchange over a socket, and a strict reading of the answer.
 */
export class Gen {
  private state: number;

  constructor(readonly seed: number) {
    this.state = seed >>> 0;
  }

  /** A float in [0, 1). */
  next(): number {
    this.state = (this.state + 0x6d2b79f5) >>> 0;
    let t = this.state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }

  /** An integer in [0, n). */
  int(n: number): number {
    return Math.floor(this.next() * n);
  }

  chance(p: number): boolean {
    return this.next() < p;
  }

  pick<T>(items: readonly T[]): T {
    return items[this.int(items.length)] as T;
  }

  /** A value for a header or query parameter that should hold a number, an id or a keyword. */
  oddValue(): string {
    return this.pick(ODD_VALUES)();
  }

  /** Any JSON value, nested up to `depth`. */
  json(depth = 2): unknown {
    switch (this.int(depth > 0 ? 8 : 6)) {
      case 0:
        return null;
      case 1:
        return this.chance(0.5);
      case 2:
        return this.pick([0, -1, 1, 1.5, 8, 9, 3600, 604_801, 1e21, Number.MAX_SAFE_INTEGER]);
      case 3:
      case 4:
      case 5:
        return this.oddValue();
      case 6:
        return Array.from({ length: this.int(3) }, () => this.json(depth - 1));
      default: {
        const out: Record<string, unknown> = {};
        for (let i = this.int(4); i > 0; i--) out[this.pick(KEYS)] = this.json(depth - 1);
        return out;
      }
    }
  }
}

const ODD_VALUES: readonly (() => string)[] = [
  () => '',
  () => ' ',
  () => '0',
  () => '1',
  () => '-1',
  () => '1.5',
  () => 'NaN',
  () => 'Infinity',
  () => '1e3',
  () => '0x10',
  () => '-0',
  () => '3600',
  () => '99999999999999999999999',
  () => 'Async',
  () => 'async',
  () => 'SYNC',
  () => 'Asynchronous',
  () => 'job_1',
  () => '1-64f6d6e7-e01edb1cce58240ed59b59d9',
  () => '9starts-with-digit',
  () => 'a'.repeat(129),
  () => 'x'.repeat(10 * 1024),
  () => 'tâche',
  () => '任务',
  () => '😀',
  () => '%zz',
  () => '%E0%A4%A',
  () => '../etc',
  () => 'a,b',
  () => '"quoted"',
  () => '\u0000',
  () => '__proto__',
  () => 'null',
  () => '[]',
  () => '{"a":1}',
];

const KEYS = [
  'maxAsyncRetryAttempts',
  'maxAsyncEventAgeInSeconds',
  'asyncTask',
  'destinationConfig',
  'onSuccess',
  'onFailure',
  'destination',
  'rawPath',
  'headers',
  'requestContext',
  'http',
  'method',
  'body',
  'isBase64Encoded',
  '__proto__',
  'constructor',
  'toString',
  'valueOf',
  'a',
];

/** The seed of a run: `FUZZ_SEED` when set (to replay a failure), else the given default. */
export function fuzzSeed(fallback: number): number {
  const env = process.env.FUZZ_SEED;
  return env && /^\d+$/.test(env) ? Number(env) : fallback;
}

/** Lines of a stack trace, or a source path, in a body a caller sees. */
export const LEAK = /\n\s+at |\bat [\w$.<>]+ \(|file:\/\/|\/work\/|node_modules|\.ts:\d+|\.js:\d+/;

/** A short, printable form of request bytes for a failure message. */
export function show(bytes: Buffer): string {
  const text = JSON.stringify(bytes.toString('latin1'));
  return text.length > 800 ? `${text.slice(0, 800)}… (${bytes.length} bytes)` : text;
}

/** One HTTP/1.1 answer, read strictly. */
export interface Answer {
  status: number;
  /** Lower-cased names; a repeated header's values joined with `, `. */
  headers: Record<string, string>;
  body: Buffer;
}

/**
 * Reads the first final answer (1xx interim answers skipped) from `data`: `undefined` while it
 * is incomplete, a string saying what is malformed, or the answer. `head`: the request was HEAD.
 */
export function readAnswer(data: Buffer, head: boolean, closed: boolean): Answer | string | undefined {
  let at = 0;
  for (;;) {
    const end = data.indexOf('\r\n\r\n', at);
    if (end < 0) return closed ? `no complete head in ${data.length} bytes` : undefined;
    const lines = data.subarray(at, end).toString('latin1').split('\r\n');
    const m = /^HTTP\/1\.[01] (\d{3}) [^\r\n]*$/.exec(lines[0] as string);
    if (!m) return `a malformed status line: ${JSON.stringify(lines[0])}`;
    const status = Number(m[1]);
    const headers: Record<string, string> = {};
    for (const line of lines.slice(1)) {
      const h = /^([!#$%&'*+.^_`|~0-9A-Za-z-]+):[ \t]*(.*?)[ \t]*$/.exec(line);
      if (!h) return `a malformed header line: ${JSON.stringify(line)}`;
      const name = (h[1] as string).toLowerCase();
      headers[name] = headers[name] === undefined ? (h[2] as string) : `${headers[name]}, ${h[2]}`;
    }
    const rest = data.subarray(end + 4);
    if (status < 200) {
      at = end + 4;
      continue;
    }
    if (head || status === 204 || status === 304) return { status, headers, body: Buffer.alloc(0) };
    const length = headers['content-length'];
    if (length !== undefined) {
      if (!/^\d+$/.test(length)) return `a malformed content-length: ${length}`;
      if (rest.length < Number(length)) return closed ? `a body cut at ${rest.length} of ${length} bytes` : undefined;
      return { status, headers, body: rest.subarray(0, Number(length)) };
    }
    if (headers['transfer-encoding'] === 'chunked') return readChunked(rest, closed, status, headers);
    return closed ? { status, headers, body: rest } : undefined;
  }
}

function readChunked(
  data: Buffer,
  closed: boolean,
  status: number,
  headers: Record<string, string>,
): Answer | string | undefined {
  const parts: Buffer[] = [];
  let at = 0;
  for (;;) {
    const eol = data.indexOf('\r\n', at);
    if (eol < 0) return closed ? 'a chunked body cut short' : undefined;
    const size = Number.parseInt(data.subarray(at, eol).toString('latin1'), 16);
    if (!Number.isInteger(size)) return 'a malformed chunk size';
    if (size === 0) return { status, headers, body: Buffer.concat(parts) };
    if (data.length < eol + 2 + size + 2) return closed ? 'a chunk cut short' : undefined;
    parts.push(data.subarray(eol + 2, eol + 2 + size));
    at = eol + 2 + size + 2;
  }
}

/**
 * Sends `request` on a new connection and resolves with the first final answer, or a string
 * saying what went wrong: no answer before the server closed, a malformed answer, or none within
 * `timeoutMs` (a hang).
 */
export function exchange(url: string, request: Buffer, head: boolean, timeoutMs = 10_000): Promise<Answer | string> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve) => {
    const socket = connect(Number(port), hostname);
    const chunks: Buffer[] = [];
    let done = false;
    const finish = (outcome: Answer | string) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      socket.destroy();
      resolve(outcome);
    };
    const timer = setTimeout(() => finish(`no answer within ${timeoutMs} ms`), timeoutMs);
    const check = (closed: boolean) => {
      const outcome = readAnswer(Buffer.concat(chunks), head, closed);
      if (outcome !== undefined) finish(outcome);
    };
    socket.on('data', (chunk: Buffer) => {
      chunks.push(chunk);
      check(false);
    });
    socket.on('error', () => {});
    socket.on('close', () => check(true));
    socket.write(request);
  });
}

/** The JSON body of an answer, or `undefined` when it is not JSON. */
export function jsonOf(answer: Answer): Record<string, unknown> | undefined {
  try {
    const value = JSON.parse(answer.body.toString('utf8')) as unknown;
    return value && typeof value === 'object' && !Array.isArray(value) ? (value as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

/** Runs `count` cases, `width` at a time; `run(i)` must not throw for a case that holds. */
export async function inBatches(count: number, width: number, run: (i: number) => Promise<void>): Promise<void> {
  for (let i = 0; i < count; i += width) {
    await Promise.all(Array.from({ length: Math.min(width, count - i) }, (_, k) => run(i + k)));
  }
}

/** Starts the echo function's emulator with destination records in `outDir`, its JSON log lines into `lines`. */
export function startEchoLogged(lines: Record<string, unknown>[], outDir: string, extra: EmulatorOptions = {}) {
  return startEcho({
    outDir,
    logFormat: 'json',
    output: (text) => {
      for (const l of text.split('\n')) if (l) lines.push(JSON.parse(l) as Record<string, unknown>);
    },
    ...extra,
  });
}
