import type { IncomingMessage, ServerResponse } from 'node:http';
import { createFcHandler, type FcHandler, type FcHandlerOptions, silentLogger } from '@fc-async/core';

/** The body of every async request of the section: 64 bytes of JSON. */
export const ASYNC_BODY = JSON.stringify({ job: 'resize', object: 'uploads/cat.jpg', width: 640 }).padEnd(64, ' ');

const EPOCH = '1718000000000';

/** An FC 3.0 async event object (POST /work, JSON body, five client headers); `delaySeconds` adds X-Fc-Async-Delay. */
export function asyncEvent(delaySeconds?: number): Record<string, unknown> {
  const headers: Record<string, string> = {
    Accept: '*/*',
    'Content-Type': 'application/json',
    'User-Agent': 'bench/1.0',
    'X-Forwarded-For': '203.0.113.7',
    'X-Fc-Invocation-Type': 'Async',
  };
  if (delaySeconds !== undefined) headers['X-Fc-Async-Delay'] = String(delaySeconds);
  return {
    version: 'v1',
    rawPath: '/work',
    body: ASYNC_BODY,
    isBase64Encoded: false,
    headers,
    queryParameters: {},
    requestContext: {
      accountId: '1234567890123456',
      domainName: 'demo-abc.cn-hangzhou.fcapp.run',
      domainPrefix: 'demo-abc',
      http: { method: 'POST', path: '/work', protocol: 'HTTP/1.1', sourceIp: '203.0.113.7', userAgent: 'bench/1.0' },
      requestId: '1-64f6d6e7-e01edb1cce58240ed59b59d9',
      time: '2024-06-10T06:13:20Z',
      timeEpoch: EPOCH,
    },
  };
}

const credentials = { accessKeyId: 'AKID', accessKeySecret: 'SECRET', securityToken: 'TOKEN' };
const fn = { name: 'demo', handler: 'index.handler', memory: 512, timeout: 60 };
const service = { logProject: 'p', logStore: 's', qualifier: 'LATEST', versionId: '' };

let counter = 0;
const ZEROS = '0'.repeat(24);

/**
 * A request id of FC's shape. Made flat, as the runtime's (read from a header) is: a string built
 * with `+` or a template is a tree of pieces in V8, which the task would keep (about 150 bytes).
 */
function requestId(n: number): string {
  const hex = n.toString(16);
  return JSON.parse(`"1-66668a00-${ZEROS.slice(hex.length)}${hex}"`) as string;
}

/** FC's `context` with a request id of its own (the task id is the request id). */
export function nextContext() {
  counter++;
  return {
    requestId: requestId(counter),
    credentials,
    function: fn,
    service,
    region: 'cn-hangzhou',
    accountId: '1234567890123456',
  };
}

/** The trivial app: `{"ok":true}`. */
export function trivialApp(_req: IncomingMessage, res: ServerResponse): void {
  res.setHeader('content-type', 'application/json');
  res.end('{"ok":true}');
}

/** An app whose requests wait until `release()`: tasks accepted meanwhile stay queued. */
export function blockedApp(): { app: (req: IncomingMessage, res: ServerResponse) => void; release(): void } {
  let release!: () => void;
  const gate = new Promise<void>((resolve) => {
    release = resolve;
  });
  return {
    app: (req, res) => {
      void gate.then(() => trivialApp(req, res));
    },
    release,
  };
}

/** A local-mode handler with the defaults a user gets, a silent logger and no environment. */
export function localHandler(
  app: (req: IncomingMessage, res: ServerResponse) => void,
  options: Omit<FcHandlerOptions, 'logger' | 'env'> = {},
): FcHandler {
  return createFcHandler(app, {
    ...options,
    logger: silentLogger,
    env: {},
    async: { mode: 'local', ...options.async },
  });
}

/** `count` contexts made ahead of a timed loop (FC's runtime makes them before calling the handler). */
export function contexts(count: number): ReturnType<typeof nextContext>[] {
  return Array.from({ length: count }, nextContext);
}

/** Accepts one async event, throwing unless it answers 202. */
export async function acceptOne(
  handler: FcHandler,
  event: Record<string, unknown> | Buffer,
  context: ReturnType<typeof nextContext> = nextContext(),
): Promise<void> {
  const result = await handler(event, context);
  if (result.statusCode !== 202) throw new Error(`accept answered ${result.statusCode}: ${String(result.body)}`);
}

export const nextMacrotask = () => new Promise<void>((resolve) => setImmediate(resolve));
