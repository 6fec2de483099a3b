import type { IncomingMessage, ServerResponse } from 'node:http';
import {
  type AsyncOptions,
  createFcHandler,
  type DestinationRecord,
  type Fc2Response,
  type FcHandlerOptions,
  type FcHttpEvent,
  type FcHttpResult,
  type Logger,
} from '../src/index.js';

let n = 0;
/** A fresh FC 3.0 request id. */
export function rid(): string {
  n++;
  return `1-64f6d6e7-${n.toString(16).padStart(24, '0')}`;
}

/** A parsed FC 3.0 HTTP event. */
export function event(
  spec: {
    method?: string;
    path?: string;
    headers?: Record<string, string>;
    body?: string;
    query?: Record<string, string>;
  } = {},
): FcHttpEvent {
  return {
    version: 'v1',
    rawPath: spec.path ?? '/',
    body: spec.body ?? '',
    isBase64Encoded: false,
    headers: spec.headers ?? {},
    queryParameters: spec.query ?? {},
    requestContext: {
      accountId: '123',
      http: { method: spec.method ?? 'GET', path: spec.path ?? '/', sourceIp: '10.0.0.1' },
      requestId: rid(),
      timeEpoch: String(Date.now()),
    },
  };
}

/** An async event (X-Fc-Invocation-Type: Async). */
export function asyncEvent(spec: Parameters<typeof event>[0] & { taskId?: string; delay?: string } = {}): FcHttpEvent {
  const headers: Record<string, string> = { 'X-Fc-Invocation-Type': 'Async', ...spec.headers };
  if (spec.taskId) headers['X-Fc-Async-Task-Id'] = spec.taskId;
  if (spec.delay) headers['X-Fc-Async-Delay'] = spec.delay;
  return event({ ...spec, headers });
}

export const context = { requestId: undefined, region: 'cn-hangzhou', accountId: '123', function: { name: 'demo' } };

export type Listener = (req: IncomingMessage, res: ServerResponse) => unknown;

export function json(result: FcHttpResult): unknown {
  return JSON.parse(result.body);
}

export interface Entry {
  level: string;
  message: string;
  fields?: Record<string, unknown>;
}
export function memoryLogger(): Logger & { entries: Entry[] } {
  const entries: Entry[] = [];
  const at = (level: string) => (message: string, fields?: Record<string, unknown>) => {
    entries.push({ level, message, fields });
  };
  return { entries, debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') };
}

export function deferred<T = void>() {
  let resolve!: (value: T) => void;
  let reject!: (error: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

export const tick = (ms = 0) => new Promise((r) => setTimeout(r, ms));

/**
 * Resolves once `check()` is true, looking every 5 ms; rejects after `timeoutMs`, naming `what`:
 * a wait driven by what happens, not by a count of ticks (a slower machine used them up first) nor
 * unbounded (a failure then waited for the test's timeout and said nothing of what was awaited).
 */
export async function until(what: string, check: () => boolean | Promise<boolean>, timeoutMs = 10_000): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (!(await check())) {
    if (performance.now() > deadline) throw new Error(`Timed out after ${timeoutMs} ms waiting for ${what}`);
    await tick(5);
  }
}

/** A handler in local mode with fast backoff, its destination records and its logger's entries. */
export function setup(app: Listener, async: AsyncOptions = {}, extra: Partial<FcHandlerOptions> = {}) {
  const successes: DestinationRecord[] = [];
  const failures: DestinationRecord[] = [];
  const logger = memoryLogger();
  const handler = createFcHandler(app, {
    logger,
    env: {},
    async: { mode: 'local', backoff: { baseMs: 1, maxMs: 2 }, ...async },
    destinations: {
      onSuccess: (r) => {
        successes.push(r);
      },
      onFailure: (r) => {
        failures.push(r);
      },
    },
    ...extra,
  });
  return { handler, successes, failures, logger };
}

/** An app answering 200 `{"ok":true}`. */
export const ok: Listener = (_req, res) => {
  res.setHeader('content-type', 'application/json');
  res.end('{"ok":true}');
};

/** An FC 2.0 `resp` that keeps what the handler sent: the status, the headers, the body as text and how many sends. */
export function fc2Response() {
  const sent = { status: 0, headers: {} as Record<string, unknown>, body: '', sends: 0 };
  const resp: Fc2Response = {
    setStatusCode: (code) => {
      sent.status = code;
    },
    setHeader: (name, value) => {
      sent.headers[name] = value;
    },
    deleteHeader: (name) => {
      delete sent.headers[name];
    },
    send: (body) => {
      sent.body = Buffer.isBuffer(body) ? body.toString('utf8') : String(body);
      sent.sends++;
    },
  };
  return { resp, sent };
}

/**
 * The cloud and FaaS attributes of an invocation of `transcode` in cn-hangzhou, account 123 (the
 * tracing tests' function): on its SERVER span and on every span of its tasks.
 */
export const TRANSCODE_CLOUD = {
  'cloud.provider': 'alibaba_cloud',
  'cloud.platform': 'alibaba_cloud_fc',
  'cloud.region': 'cn-hangzhou',
  'cloud.account.id': '123',
  'cloud.resource_id': 'acs:fc:cn-hangzhou:123:functions/transcode',
  'faas.name': 'transcode',
};
