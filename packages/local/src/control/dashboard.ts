import { readdirSync, readFileSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { extname } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { EngineEvent } from '@fc-async/core';
import type { FunctionRegistry } from '../registry.js';
import { ApiError } from './respond.js';

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
};

const SECURITY_HEADERS = {
  'content-security-policy':
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'; form-action 'none'",
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'cache-control': 'no-cache',
};

/** The dashboard's files, read once from `assets/dashboard` next to this package's code. */
export function loadAssets(): Map<string, { type: string; body: Buffer }> {
  const dir = fileURLToPath(new URL('../../assets/dashboard/', import.meta.url));
  const assets = new Map<string, { type: string; body: Buffer }>();
  for (const name of readdirSync(dir)) {
    const type = TYPES[extname(name)];
    if (type) assets.set(name, { type, body: readFileSync(`${dir}${name}`) });
  }
  return assets;
}

/** Serves `/` and `/assets/<file>`; `false` when the path is not a dashboard file. */
export function serveAsset(
  assets: Map<string, { type: string; body: Buffer }>,
  path: string,
  res: ServerResponse,
): boolean {
  const name = path === '/' ? 'index.html' : path.startsWith('/assets/') ? path.slice(8) : undefined;
  const asset = name === undefined ? undefined : assets.get(name);
  if (!asset) return false;
  res.writeHead(200, { 'content-type': asset.type, 'content-length': String(asset.body.length), ...SECURITY_HEADERS });
  res.end(asset.body);
  return true;
}

/** `GET /api/functions`: what the dashboard lists. */
export function functionList(registry: FunctionRegistry) {
  return {
    functions: registry.all.map((f) => ({
      name: f.spec.name,
      http: Boolean(f.spec.http),
      path: f.spec.http ? registry.prefix(f) : undefined,
      kind: f.kind,
    })),
  };
}

/** Bytes a stream client may leave unread before it is cut (its page reconnects and reloads). */
const MAX_UNREAD = 1024 * 1024;

/** Seconds a client refused a stream is told to wait (`Retry-After`); the page waits about as long. */
const STREAM_RETRY_AFTER = '5';

/**
 * `GET /api/events`: every function's task events as Server-Sent Events, so the dashboard updates
 * without polling, and, on a store several processes share (BullMQ), a `{ function, type: 'changed' }`
 * message when other instances changed that function's tasks (see `watchStores`). Events carry ids
 * and statuses only, never payloads. A client that stops reading
 * (a frozen tab) is cut rather than buffered for without bound; past `maxStreams` streams open at
 * once, a new one is refused with a 503 `TooManyStreams` and `Retry-After`, until one closes.
 * The events of one turn of the event loop go to each stream in one write (each still a message
 * of its own, in order): under a pulse of thousands of tasks a second, a write per event and
 * stream was a socket write each.
 */
export class EventHub {
  private readonly clients = new Set<ServerResponse>();
  private readonly unsubscribe: (() => void)[] = [];
  private readonly timer: NodeJS.Timeout;
  /** This turn's messages, not yet written (see `flush`). */
  private pending: string[] = [];
  private flushing: NodeJS.Immediate | undefined;
  /** Unsubscribes from the stores' watches (see `watchStores`), while a stream is open. */
  private unwatch: (() => void)[] = [];
  /** Functions whose tasks other instances changed this turn: one message each. */
  private changedElsewhere = new Set<string>();

  constructor(
    private readonly registry: FunctionRegistry,
    private readonly maxStreams = 64,
  ) {
    for (const fn of registry.all) {
      this.unsubscribe.push(fn.engine.subscribe((event) => this.broadcast(fn.spec.name, event)));
    }
    this.timer = setInterval(() => this.send(': ping\n\n'), 15_000);
    this.timer.unref();
  }

  attach(req: IncomingMessage, res: ServerResponse): void {
    if (req.method === 'HEAD') {
      // A stream without a body would never end, and hold the connection.
      res.writeHead(200, { 'content-type': 'text/event-stream', ...SECURITY_HEADERS });
      res.end();
      return;
    }
    if (this.clients.size >= this.maxStreams) {
      throw new ApiError(
        503,
        'TooManyStreams',
        `The control plane already serves ${this.clients.size} event streams, its limit (maxEventStreams): retry later`,
        { 'retry-after': STREAM_RETRY_AFTER },
      );
    }
    res.writeHead(200, { 'content-type': 'text/event-stream', connection: 'keep-alive', ...SECURITY_HEADERS });
    res.write('retry: 1000\n\n');
    // Events of this turn so far came before the stream: they are not its own.
    this.flush();
    this.clients.add(res);
    // The response closes when the client goes away, is cut, or the hub closes: its slot is free again.
    res.on('close', () => this.drop(res));
    // A client that ends its side reads no more: the server answers half-closed clients (see
    // answerHalfClosed), which would leave a stream, an answer that never ends, open and counted.
    req.socket.once('end', () => res.destroy());
    if (this.clients.size === 1) this.watchStores();
  }

  /**
   * A store several processes share (BullMQ) tells the tasks the other instances change; each
   * function with such changes in a turn gets one `{ function, type: 'changed' }` message, on which
   * the page reads its list again, as it does on this process's own events. Watched only while a
   * stream is open: with no dashboard open, it costs nothing.
   */
  private watchStores(): void {
    for (const fn of this.registry.all) {
      const name = fn.spec.name;
      // An fc-async handler from a copy of the core older than watchStore (an app with its own, pinned
      // packages): its stream carries this process's events only, as the dashboard's did before.
      if (typeof fn.engine.watchStore !== 'function') continue;
      this.unwatch.push(
        fn.engine.watchStore(() => {
          if (this.clients.size === 0 || this.changedElsewhere.has(name)) return;
          this.changedElsewhere.add(name);
          this.send(`data: ${JSON.stringify({ function: name, type: 'changed' })}\n\n`);
        }),
      );
    }
  }

  private unwatchStores(): void {
    for (const off of this.unwatch) off();
    this.unwatch = [];
  }

  private drop(res: ServerResponse): void {
    if (this.clients.delete(res) && this.clients.size === 0) this.unwatchStores();
  }

  private broadcast(functionName: string, event: EngineEvent): void {
    if (this.clients.size > 0) this.send(`data: ${JSON.stringify({ function: functionName, ...event })}\n\n`);
  }

  /** Queues `text` for every stream; the turn's messages are written together once it ends. */
  private send(text: string): void {
    this.pending.push(text);
    this.flushing ??= setImmediate(() => this.flush());
  }

  /** Writes the queued messages, in order, in one write per stream. */
  private flush(): void {
    if (this.flushing) clearImmediate(this.flushing);
    this.flushing = undefined;
    this.changedElsewhere.clear();
    if (this.pending.length === 0) return;
    const text = this.pending.join('');
    this.pending = [];
    this.write(text);
  }

  private write(text: string): void {
    for (const client of this.clients) {
      if (client.writableLength > MAX_UNREAD) {
        this.drop(client);
        client.destroy();
      } else client.write(text);
    }
  }

  close(): void {
    clearInterval(this.timer);
    for (const off of this.unsubscribe) off();
    this.unwatchStores();
    // What happened until now reaches the streams before they end.
    this.flush();
    for (const client of this.clients) client.end();
    this.clients.clear();
  }
}
