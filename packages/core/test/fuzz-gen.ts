import { Readable } from 'node:stream';
import { event } from './helpers.js';

/**
 * A small seeded generator for the fuzz tests: mulberry32 plus helpers that favour the values
 * parsers trip on (control characters, lone surrogates, broken percent-encoding, huge strings,
 * numbers in text). `FUZZ_SEED=<n>` replays one run.
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

  /** A string built from pieces that parsers and header writers trip on. */
  string(maxPieces = 6): string {
    if (this.chance(0.04)) return this.pick(['a', '%', '\u0000', '\ud800', 'é']).repeat(1 + this.int(10_240));
    let out = '';
    const n = this.int(maxPieces + 1);
    for (let i = 0; i < n; i++) out += this.pick(PIECES);
    return out;
  }

  /** Any JSON-able value, nested up to `depth`. */
  json(depth = 2): unknown {
    const kind = this.int(depth > 0 ? 9 : 7);
    switch (kind) {
      case 0:
        return null;
      case 1:
        return this.chance(0.5);
      case 2:
        return this.pick(NUMBERS);
      case 3:
      case 4:
      case 5:
        return this.string();
      case 6:
        return this.pick(['', ' ', '0', 'true', '[]', '{}']);
      case 7:
        return Array.from({ length: this.int(4) }, () => this.json(depth - 1));
      default: {
        const out: Record<string, unknown> = {};
        for (let i = this.int(4); i > 0; i--) out[this.key()] = this.json(depth - 1);
        return out;
      }
    }
  }

  /** A property or header name: mostly plausible, sometimes hostile. */
  key(): string {
    return this.chance(0.6) ? this.pick(KEYS) : this.string(3);
  }
}

/** The seed of a run: `FUZZ_SEED` when set (to replay a failure), else the given default. */
export function fuzzSeed(fallback: number): number {
  const env = process.env.FUZZ_SEED;
  return env && /^\d+$/.test(env) ? Number(env) : fallback;
}

/** A short, printable form of a fuzz input for a failure message. */
export function show(value: unknown): string {
  let text: string | undefined;
  try {
    text = Buffer.isBuffer(value) ? `Buffer(${value.toString('utf8')})` : JSON.stringify(value);
  } catch {
    text = String(value);
  }
  if (text === undefined) return 'undefined';
  return text.length > 800 ? `${text.slice(0, 800)}… (${text.length} chars)` : text;
}

/** Lines of a stack trace, or a source path, in a body a caller sees. */
export const LEAK = /\n\s+at |\bat [\w$.<>]+ \(|file:\/\/|\/work\/|node_modules|\.ts:\d+|\.js:\d+/;

const PIECES = [
  'a',
  'job',
  '/',
  '//',
  '../',
  '?',
  '#',
  '&',
  '=',
  '+',
  ' ',
  '%',
  '%2',
  '%zz',
  '%E0%A4%A',
  '%20',
  '%2F',
  '%00',
  '\u0000',
  '\u0001',
  '\t',
  '\r\n',
  '\n',
  '\u007f',
  '\u0085',
  '\u2028',
  '\ud800',
  '\udfff',
  '😀',
  '中文',
  'é',
  '"',
  "'",
  '\\',
  '<script>',
  '{"a":1}',
  '-1',
  '0',
  '3600',
  'NaN',
  '1e309',
  '0x10',
  'Async',
  'async',
  'Sync',
  'ASYNC ',
  'null',
  '__proto__',
  'constructor',
  'AAAA',
  '====',
  '!!!',
];

// No whole number from 2 to 3599: as an X-Fc-Async-Delay it would hold a task past the test.
const NUMBERS = [0, -1, 1, 1.5, 3600, 86_400, -0, 1e21, Number.MAX_SAFE_INTEGER, 2 ** 53 + 2, 1e308, -1e308];

const KEYS = [
  'Content-Type',
  'content-type',
  'Content-Length',
  'Transfer-Encoding',
  'Host',
  'User-Agent',
  'Cookie',
  'Authorization',
  'X-Fc-Invocation-Type',
  'x-fc-invocation-type',
  'X-Fc-Async-Task-Id',
  'X-Fc-Stateful-Async-Invocation-Id',
  'X-Fc-Async-Delay',
  'X-Fc-Retry-Count',
  'X-Fc-Request-Id',
  'X-Fc-Function-Memory',
  'Traceparent',
  '__proto__',
  'constructor',
  'toString',
  'hasOwnProperty',
  '',
  'a',
];

/** Header values an async call's headers draw from: mostly valid, often not. */
function asyncHeaderValue(g: Gen, name: string): unknown {
  if (g.chance(0.5)) return g.json(1);
  switch (name) {
    case 'X-Fc-Invocation-Type':
      return g.pick(['Async', 'async', ' ASYNC ', 'Sync', '', 'Asyn', 'Async\u0000', ['Async', 'Sync'], 1]);
    case 'X-Fc-Async-Task-Id':
      return g.pick(['t', `t_${g.int(1e9)}`, '', '1abc', 'a'.repeat(129), 'tâche', 'a b', '\ud800', 'ok-id']);
    case 'X-Fc-Async-Delay':
      // No valid delay above 1 s: every accepted task has to finish within the test.
      return g.pick(['', '0', '-1', '1.5', 'NaN', '3600', '1e3', '99999999999999999999', '٣', ' ', 'x', '1']);
    default:
      return g.pick(['0', '1', '-1', '', '1.0', ' 2', 'x', '9'.repeat(400)]);
  }
}

/** A valid event, then broken in one to four places. */
function mutatedEvent(g: Gen): Record<string, unknown> {
  const base = event({
    method: 'POST',
    path: '/jobs',
    body: '{"n":1}',
    headers: { 'Content-Type': 'application/json' },
  });
  const e = base as unknown as Record<string, unknown>;
  const headers = e.headers as Record<string, unknown>;
  if (g.chance(0.5)) headers['X-Fc-Invocation-Type'] = 'Async';
  const http = (e.requestContext as { http: Record<string, unknown> }).http;
  for (let i = 1 + g.int(4); i > 0; i--) {
    switch (g.int(16)) {
      case 0:
        e.headers = g.pick([[], ['a', 'b'], 5, 'x', null, true, g.json(2)]);
        break;
      case 1:
        headers[g.key()] = g.json(2);
        break;
      case 2:
        for (let n = g.int(3000); n > 0; n--) headers[`X-H${n}`] = g.string(2);
        break;
      case 3:
        for (const name of ['X-Fc-Invocation-Type', 'X-Fc-Async-Task-Id', 'X-Fc-Async-Delay', 'X-Fc-Retry-Count']) {
          if (g.chance(0.5)) headers[name] = asyncHeaderValue(g, name);
        }
        break;
      case 4:
        e.queryParameters = g.chance(0.5) ? g.json(2) : { [g.key()]: g.json(2), q: [g.string(), g.int(9)] };
        break;
      case 5:
        // Now and then past the async payload limit (128 KB): a 400 InvalidArgument when async.
        e.body = g.chance(0.1) ? 'x'.repeat(140_000) : g.json(2);
        break;
      case 6:
        e.isBase64Encoded = g.pick([true, 'true', 1, null, g.json(1)]);
        if (g.chance(0.7)) e.body = g.pick(['!!!', 'abc', 'YQ', 'YQ=', 'Y===', '====', 'YWJj\n', g.string()]);
        break;
      case 7:
        e.rawPath = g.chance(0.3) ? undefined : g.chance(0.5) ? g.json(1) : g.string();
        break;
      case 8:
        http.path = g.json(1);
        if (g.chance(0.5)) e.rawPath = undefined;
        break;
      case 9:
        http.method = g.pick(['get', 'post', 'M-SEARCH', 'G E T', '', 'GET\r\n', 'ÄÖ', 'x'.repeat(40), 5, null]);
        break;
      case 10:
        e.requestContext = g.pick([null, 'x', 5, [], { http: g.json(2) }, { ...(e.requestContext as object) }]);
        break;
      case 11:
        http.sourceIp = g.json(1);
        http.userAgent = g.json(1);
        break;
      case 12:
        e.requestContext = {
          ...(e.requestContext as object),
          requestId: g.json(1),
          timeEpoch: g.json(1),
          domainName: g.json(1),
        };
        break;
      case 13:
        headers[g.pick(['X-Fc-Request-Id', 'x-fc-request-id'])] = g.pick(['', g.string(), 'a'.repeat(300), 'ok_id']);
        break;
      case 14:
        headers[g.pick(['Content-Type', 'X-Unicode', 'Cookie'])] = g.pick(['\ud800', 'é\u0000\r\n', g.string()]);
        break;
      default:
        e[g.key()] = g.json(2);
    }
  }
  return e;
}

/** What a built-in runtime might pass as `event`: mostly a mutated event, sometimes anything at all. */
export function anyEvent(g: Gen): unknown {
  const roll = g.int(10);
  if (roll === 0) return g.json(3);
  if (roll === 1) return g.chance(0.5) ? g.string() : Buffer.from(g.string(), 'utf8');
  if (roll === 2) return Buffer.from(g.string(8), 'latin1');
  const e = mutatedEvent(g);
  const form = g.int(3);
  if (form === 0) return e;
  const text = JSON.stringify(e);
  if (form === 1) return text;
  return g.chance(0.9) ? Buffer.from(text, 'utf8') : new Uint8Array(Buffer.from(text, 'utf8'));
}

/** What a runtime might pass as `context`. */
export function anyContext(g: Gen): unknown {
  // The runtime builds the context (not the client): its fields are of FC's types or missing.
  const scalar = () => g.pick([undefined, null, '', g.string(), 0, -1, 1.5, true]);
  switch (g.int(5)) {
    case 0:
      return undefined;
    case 1:
      return {};
    case 2:
      return { requestId: g.pick([undefined, '', g.string(), 'req_1']), retryCount: scalar() };
    case 3:
      return { function: { name: scalar(), memory: scalar() }, service: { qualifier: scalar() }, region: scalar() };
    default:
      return { requestId: undefined, region: 'cn-hangzhou', accountId: '123', function: { name: 'demo' } };
  }
}

/** An FC 2.0 `req`: a readable stream with fields, some of the wrong type. */
export function anyFc2Request(g: Gen): { req: object; fields: Record<string, unknown> } {
  const fields: Record<string, unknown> = {
    method: 'POST',
    path: '/jobs',
    headers: { 'content-type': 'application/json' },
    queries: { a: '1' },
    clientIP: '10.0.0.1',
    url: '/jobs?a=1',
  };
  for (let i = 1 + g.int(3); i > 0; i--) {
    switch (g.int(8)) {
      case 0:
        fields.method = g.pick(['get', 'M-SEARCH', 'G E T', '', 5, null, undefined, 'ü']);
        break;
      case 1:
        fields.path = g.chance(0.3) ? g.json(1) : g.string();
        break;
      case 2:
        fields.headers = g.chance(0.4) ? g.json(2) : { [g.key()]: g.json(2), 'x-fc-invocation-type': 'Async' };
        break;
      case 3:
        fields.queries = g.chance(0.4) ? g.json(2) : { [g.key()]: g.json(2), list: [g.string(), g.int(5), null] };
        break;
      case 4:
        fields.body = g.chance(0.5) ? g.json(2) : g.pick([Buffer.from(g.string()), g.string(), new Uint8Array(3)]);
        break;
      case 5:
        fields.clientIP = g.json(1);
        break;
      case 6:
        fields.headers = { 'x-fc-invocation-type': 'Async', 'x-fc-async-task-id': asyncTaskId(g) };
        break;
      default:
        fields[g.key()] = g.json(1);
    }
  }
  const chunks = g.chance(0.5) ? [Buffer.from(g.string())] : [];
  return { req: Object.assign(Readable.from(chunks), fields), fields };
}

const asyncTaskId = (g: Gen) => g.pick([`t_${g.int(1e9)}`, '', '1x', 'a'.repeat(200), 'x y', ['a', 'b']]);
