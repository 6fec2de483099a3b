import { EventEmitter } from 'node:events';
import { IncomingMessage, ServerResponse } from 'node:http';
import { plainConstructor } from './plain-object.js';
import type { FcRequest } from './request.js';
import type { BridgeResponse, ResponseBody } from './response.js';

/**
 * Any Node request listener: `http.createServer(handler)` would accept it. Express apps, Koa's
 * `app.callback()` and Fastify's `app.routing` all fit.
 *
 * @example
 * ```ts
 * const handler: NodeHandler = (req, res) => res.end('ok');
 * ```
 */
export type NodeHandler = (req: IncomingMessage, res: ServerResponse) => unknown;

const kBody = Symbol('fc-async.body');
const kState = Symbol('fc-async.response');

type BridgeRequest = IncomingMessage & { [kBody]: Buffer };

/**
 * **Internal**: a bound on the body bytes a bridged response collects (`fc-async dev` gives FC's
 * 32 MB of a sync response). Past `bytes` the bytes collected are dropped, the response is
 * destroyed as a closed connection would be (the app's writes fail, a piped stream stops), and
 * the invocation rejects with `tooLarge()`.
 *
 * @internal
 * @example
 * ```ts
 * const limit: AnswerLimit = { bytes: 32 * 1024 * 1024, tooLarge: () => new Error('The answer is too large') };
 * ```
 */
export interface AnswerLimit {
  readonly bytes: number;
  tooLarge(): Error;
}
type BridgeServerResponse = ServerResponse & { [kState]: BridgeSocket; _header?: unknown; finished: boolean };

/**
 * The socket a bridged request pretends to arrive on: it carries the client address, swallows
 * what Node or a framework would write to a real connection, and collects the response (one
 * object per invocation, so the hot path allocates as little as it can).
 */
class BridgeSocket {
  readable = true;
  writable = true;
  destroyed = false;
  /** Set once the response has ended or failed: later writes are refused, later failures ignored. */
  ended = false;
  /**
   * Set with the response's `_header` (which Node's `headersSent` reads) when the head is written:
   * read here, on an object of one shape, rather than on responses whose prototype Express swaps.
   */
  headWritten = false;
  /** The status the head was written with: what is sent, whatever `res.statusCode` says later (as Node). */
  statusCode = 200;
  /** The response on this socket: told of a destroy, as Node's server tells it of its socket's close. */
  res: BridgeServerResponse | undefined = undefined;
  /**
   * The response body as written: its first chunk, and the later ones in order. Not one array
   * from the start: an array literal is an allocation site V8 may pretenure (see `CollectedResponse`).
   */
  first: string | Uint8Array | undefined = undefined;
  more: (string | Uint8Array)[] | undefined = undefined;
  /** Body bytes written so far, counted only under a {@link limit}. */
  size = 0;

  constructor(
    readonly remoteAddress: string | undefined,
    readonly resolve: (response: BridgeResponse) => void,
    private readonly reject: (error: unknown) => void,
    readonly limit: AnswerLimit | undefined,
  ) {}

  // Constants as accessors: read now and then, never worth a slot on every socket.
  get remoteFamily() {
    return this.remoteAddress?.includes(':') ? 'IPv6' : 'IPv4';
  }
  get remotePort() {
    return 0;
  }
  get encrypted() {
    return false;
  }
  get writableLength() {
    return 0;
  }
  get bytesWritten() {
    return 0;
  }
  get readableHighWaterMark() {
    return 16384;
  }

  /** Rejects the invocation unless the response already ended. */
  fail(error: unknown): void {
    if (this.ended) return;
    this.ended = true;
    this.reject(error);
  }

  address() {
    return { address: '127.0.0.1', family: 'IPv4', port: 0 };
  }
  setTimeout() {
    return this;
  }
  setNoDelay() {
    return this;
  }
  setKeepAlive() {
    return this;
  }
  ref() {
    return this;
  }
  unref() {
    return this;
  }
  cork() {}
  uncork() {}
  pause() {
    return this;
  }
  resume() {
    return this;
  }
  write(_data?: unknown, encoding?: unknown, cb?: unknown) {
    const done = typeof encoding === 'function' ? encoding : cb;
    if (typeof done === 'function') process.nextTick(done as () => void);
    return true;
  }
  /**
   * The app ends the connection itself (`req.socket.end()` to drop a request, a hand-written
   * answer through `res.socket`): no response can end on it any more. Before the response ended,
   * that fails the invocation at once, as the connection's close would, rather than leaving it to
   * wait out its timeout; after, nothing happens.
   */
  end() {
    if (!this.ended) this.destroy(new Error('The app ended the connection before its response ended'));
    return this;
  }
  destroy(error?: Error) {
    if (this.destroyed) return this;
    this.destroyed = true;
    this.readable = false;
    this.writable = false;
    this.fail(error ?? new Error('The response was destroyed before it ended'));
    // An ended response closes in `emitFinish`; any other closes now, as a real connection's would.
    if (this.res && !this.res.finished) process.nextTick(closeDestroyed, this, this.res, error !== undefined);
    return this;
  }
  destroySoon() {
    this.destroy();
  }
  /**
   * The invocation is over while the response is not (an async attempt that timed out or was
   * stopped, its app ignoring the abort): the body collected so far is dropped and the response
   * destroyed, so that the app's later writes are refused instead of held, and a piped stream
   * stops, as when FC closes the connection.
   */
  abandon(): void {
    if (this.ended) return;
    this.first = undefined;
    this.more = undefined;
    this.destroy(new Error('The invocation ended before its response'));
  }
}

/**
 * Lets go of a bridged request's response once its invocation is over (see `BridgeSocket.abandon`);
 * nothing for a request on a real socket, or a response that already ended.
 *
 * @internal
 * @example
 * ```ts
 * declare const req: IncomingMessage;
 * abandonResponse(req); // the app's later res.write() calls are refused
 * ```
 */
export function abandonResponse(req: IncomingMessage): void {
  const socket = req.socket as unknown;
  if (socket instanceof BridgeSocket) socket.abandon();
}

// An EventEmitter (frameworks listen for the socket's `close` and `error`) without the
// constructor's work: EventEmitter's methods create their listener table on first use.
Object.setPrototypeOf(BridgeSocket.prototype, EventEmitter.prototype);

/**
 * Runs a Node request listener on an {@link FcRequest} and collects its response whole: status,
 * headers (several `Set-Cookie` kept as an array) and the body bytes, however the app wrote them
 * (`res.end`, `res.write` in chunks, a piped stream). Knows nothing of FC events, queues or spans.
 *
 * Rejects when the listener throws or rejects before ending the response, or destroys the
 * socket; the caller decides what the client sees.
 *
 * @param attach - called with the request before the listener runs, e.g. to attach the
 *   invocation context.
 * @example
 * ```ts
 * const response = await runNodeHandler((req, res) => res.end('hi'), { method: 'GET', url: '/', headers: {}, body: Buffer.alloc(0) });
 * response.statusCode; // 200
 * ```
 */
export function runNodeHandler(
  handler: NodeHandler,
  request: FcRequest,
  attach?: (req: IncomingMessage) => void,
): Promise<BridgeResponse> {
  return runBridged(handler, request, attach, undefined);
}

/**
 * **Internal**: {@link runNodeHandler}, its response body held to `limit` when one is given (see
 * {@link AnswerLimit}).
 *
 * @internal
 * @example
 * ```ts
 * const limit = { bytes: 5, tooLarge: () => new Error('too large') };
 * await runBridged((req, res) => res.end('too long'), { method: 'GET', url: '/', headers: {}, body: Buffer.alloc(0) }, undefined, limit);
 * // rejects with Error: too large
 * ```
 */
export function runBridged(
  handler: NodeHandler,
  request: FcRequest,
  attach: ((req: IncomingMessage) => void) | undefined,
  limit: AnswerLimit | undefined,
): Promise<BridgeResponse> {
  return new Promise<BridgeResponse>((resolve, reject) => {
    const socket = new BridgeSocket(request.remoteAddress, resolve, reject, limit);
    const req = new IncomingMessage(socket as never) as BridgeRequest;
    req.method = request.method;
    req.url = request.url;
    req.headers = request.headers as IncomingMessage['headers'];
    fillRawHeaders(req, request.headers);
    req.httpVersion = '1.1';
    req.httpVersionMajor = 1;
    req.httpVersionMinor = 1;
    req.complete = true;
    req[kBody] = request.body;
    req._read = readBody;
    attach?.(req);

    const res = new ServerResponse(req) as unknown as BridgeServerResponse;
    const store = headerStoreKey ?? probeHeaderStore();
    if (store) (res as unknown as Record<symbol, unknown>)[store] = Object.create(HEADER_STORE_PROTO);
    (res as { socket: unknown }).socket = socket;
    res[kState] = socket;
    socket.res = res;
    res.writeHead = writeHead as never;
    res.write = write as never;
    res.end = end as never;
    res.flushHeaders = flushHeaders;

    try {
      const result = handler(req, res);
      if (result && typeof (result as Promise<unknown>).then === 'function') {
        (result as Promise<unknown>).then(undefined, (error: unknown) => socket.fail(error));
      }
    } catch (error) {
      socket.fail(error);
    }
  });
}

function readBody(this: BridgeRequest): void {
  const body = this[kBody];
  if (body.length > 0) this.push(body);
  this.push(null);
}

/**
 * Fills the empty `rawHeaders` array Node's constructor made rather than a new one: one object
 * less per request, and no array literal of ours (see `CollectedResponse`).
 */
function fillRawHeaders(req: IncomingMessage, headers: FcRequest['headers']): void {
  let raw = req.rawHeaders as string[] | undefined;
  if (!Array.isArray(raw) || raw.length > 0) {
    raw = [];
    req.rawHeaders = raw;
  }
  for (const name in headers) {
    const value = headers[name];
    if (value === undefined) continue;
    if (Array.isArray(value)) for (const v of value) raw.push(name, v);
    else raw.push(name, value);
  }
}

function headersSentError(): Error {
  return Object.assign(new Error('Cannot write headers after they are sent to the client'), {
    code: 'ERR_HTTP_HEADERS_SENT',
  });
}

function writeHead(this: BridgeServerResponse, statusCode: number, reason?: unknown, headers?: unknown) {
  const collector = this[kState];
  if (collector.headWritten) throw headersSentError();
  const code = Number(statusCode);
  if (!Number.isInteger(code) || code < 100 || code > 999) {
    throw Object.assign(new RangeError(`Invalid status code: ${statusCode}`), { code: 'ERR_HTTP_INVALID_STATUS_CODE' });
  }
  this.statusCode = code;
  const fields = typeof reason === 'string' ? headers : reason;
  if (Array.isArray(fields)) {
    setHeaderList(this, fields);
  } else if (fields && typeof fields === 'object') {
    const record = fields as Record<string, string | string[] | number | undefined>;
    for (const name in record) {
      const value = record[name];
      if (value !== undefined) this.setHeader(name, value);
    }
  }
  collector.statusCode = code;
  collector.headWritten = true;
  this._header = true;
  return this;
}

/**
 * `writeHead`'s headers as an array, as Node takes them: `[name, value]` pairs, or a flat list
 * `[name, value, name, value]` (of even length, else `ERR_INVALID_ARG_VALUE`). A name given
 * replaces what `setHeader` set before; a name given twice is sent twice.
 */
function setHeaderList(res: ServerResponse, fields: unknown[]): void {
  const pairs = Array.isArray(fields[0]);
  if (!pairs && fields.length % 2 !== 0) {
    // Node's message quotes the array, values and all: a `set-cookie` or an `authorization` the
    // app echoes would go on into the task record, its destination records, the log and the span.
    // This one gives the length only.
    throw Object.assign(
      new TypeError(
        `The argument 'headers' is invalid. Received a flat array of ${fields.length} entries: names and values go in pairs`,
      ),
      { code: 'ERR_INVALID_ARG_VALUE' },
    );
  }
  const step = pairs ? 1 : 2;
  const nameAt = (i: number) => (pairs ? (fields[i] as unknown[])[0] : fields[i]) as string;
  const valueAt = (i: number) => (pairs ? (fields[i] as unknown[])[1] : fields[i + 1]) as string;
  for (let i = 0; i < fields.length; i += step) {
    const name = nameAt(i);
    if (name) res.removeHeader(name);
  }
  for (let i = 0; i < fields.length; i += step) {
    const name = nameAt(i);
    if (name) res.appendHeader(name, valueAt(i));
  }
}

function pushChunk(collector: BridgeSocket, chunk: unknown, encoding: unknown): void {
  if (chunk === undefined || chunk === null) return;
  if (typeof chunk === 'string') {
    if (chunk.length === 0) return;
    addChunk(
      collector,
      typeof encoding === 'string' && encoding !== 'utf8' && encoding !== 'utf-8'
        ? Buffer.from(chunk, encoding as BufferEncoding)
        : chunk,
    );
  } else if (chunk instanceof Uint8Array) {
    if (chunk.length > 0) addChunk(collector, chunk);
  } else {
    throw Object.assign(
      new TypeError('The "chunk" argument must be of type string or an instance of Buffer or Uint8Array'),
      {
        code: 'ERR_INVALID_ARG_TYPE',
      },
    );
  }
}

function addChunk(collector: BridgeSocket, chunk: string | Uint8Array): void {
  const limit = collector.limit;
  if (limit !== undefined) {
    collector.size += typeof chunk === 'string' ? Buffer.byteLength(chunk) : chunk.byteLength;
    if (collector.size > limit.bytes) {
      // Not held a moment longer: the invocation fails, and the app learns of it as of a closed connection.
      collector.first = undefined;
      collector.more = undefined;
      collector.destroy(limit.tooLarge());
      return;
    }
  }
  if (collector.first === undefined) collector.first = chunk;
  else if (collector.more === undefined) collector.more = [chunk];
  else collector.more.push(chunk);
}

function write(this: BridgeServerResponse, chunk: unknown, encoding?: unknown, cb?: unknown): boolean {
  const collector = this[kState];
  const callback = typeof encoding === 'function' ? encoding : cb;
  if (collector.ended) {
    refuseWrite(this, collector, callback);
    return false;
  }
  if (!collector.headWritten) this.writeHead(this.statusCode);
  pushChunk(collector, chunk, typeof encoding === 'function' ? undefined : encoding);
  // The chunk took the body past its limit (AnswerLimit): the response is destroyed.
  if (collector.destroyed) {
    refuseWrite(this, collector, callback);
    return false;
  }
  if (typeof callback === 'function') process.nextTick(callback as () => void);
  return true;
}

/**
 * A write after the response ended, refused as Node refuses it: the callback gets the error, and
 * the response emits it only when the app itself ended it and it is not destroyed. A destroyed
 * response (`res.destroy()`, `req.socket.destroy()` as Express's finalhandler does), or one the
 * bridge gave up when the app failed, emits nothing: an `error` nobody listens to would end the
 * process, for a chunk of a stream still running that nobody can receive anyway.
 */
function refuseWrite(res: BridgeServerResponse, collector: BridgeSocket, callback: unknown): void {
  const error = res.finished
    ? Object.assign(new Error('write after end'), { code: 'ERR_STREAM_WRITE_AFTER_END' })
    : Object.assign(new Error('Cannot call write after a stream was destroyed'), { code: 'ERR_STREAM_DESTROYED' });
  const emit = res.finished && !res.destroyed && !collector.destroyed;
  process.nextTick(() => {
    if (typeof callback === 'function') callback(error);
    if (emit) res.emit('error', error);
  });
}

function end(this: BridgeServerResponse, chunk?: unknown, encoding?: unknown, cb?: unknown) {
  let callback = cb;
  let data = chunk;
  let enc = encoding;
  if (typeof data === 'function') {
    callback = data;
    data = undefined;
    enc = undefined;
  } else if (typeof enc === 'function') {
    callback = enc;
    enc = undefined;
  }
  const collector = this[kState];
  if (collector.ended) {
    if (typeof callback === 'function') process.nextTick(callback as () => void);
    return this;
  }
  if (!collector.headWritten) this.writeHead(this.statusCode);
  pushChunk(collector, data, enc);
  // The last chunk took the body past its limit (AnswerLimit): the response is destroyed, not ended.
  if (collector.destroyed) {
    refuseWrite(this, collector, callback);
    return this;
  }
  collector.ended = true;
  this.finished = true;
  const statusCode = collector.statusCode;
  const response = new CollectedResponse(statusCode, collectHeaders(this), joinChunks(collector));
  finishing.push(this, callback, collector, response);
  process.nextTick(finishNext);
  return this;
}

/**
 * Ended responses waiting for their tick, four entries each (response, `end`'s callback,
 * collector, collected response); each `end` queues one {@link finishNext} tick, so they are
 * finished in order, each in a tick of its own, as `process.nextTick(emitFinish, ...)` would.
 * Not that: Node's tick object is an object literal, an allocation site V8 may pretenure (see
 * `CollectedResponse`). An old tick object holding the response keeps the whole invocation
 * (request, response, socket, event) alive through scavenges until the next full GC, which then
 * comes far more often: 9.6 µs a raw GET instead of 4.1 in a process where that happened. The
 * tick now holds only {@link finishNext}, and this queue lets go of an entry once it is finished.
 */
const finishing: unknown[] = [];
let finishingHead = 0;

function finishNext(): void {
  const i = finishingHead;
  const res = finishing[i] as BridgeServerResponse;
  const callback = finishing[i + 1];
  const collector = finishing[i + 2] as BridgeSocket;
  const response = finishing[i + 3] as BridgeResponse;
  if (i + 4 >= finishing.length) {
    finishing.length = 0;
    finishingHead = 0;
  } else {
    finishing.fill(undefined, i, i + 4);
    finishingHead = i + 4;
  }
  emitFinish(res, callback, collector, response);
}

/**
 * The response headers as a plain object. Cheaper to build, and to walk afterwards, than the
 * prototype-less object `getHeaders()` returns.
 */
function collectHeaders(res: ServerResponse): BridgeResponse['headers'] {
  const headers: BridgeResponse['headers'] = {};
  if (headerStoreKey) {
    // Node's own store: `[name as set, value]` under the lower-cased name (null: none set).
    const store = (res as unknown as Record<symbol, Record<string, [string, HeaderValue]> | null>)[headerStoreKey];
    for (const name in store) setOwn(headers, name, (store[name] as [string, HeaderValue])[1]);
    return headers;
  }
  for (const name of res.getHeaderNames()) setOwn(headers, name, res.getHeader(name));
  return headers;
}

type HeaderValue = string | string[] | number | undefined;

function setOwn(headers: BridgeResponse['headers'], name: string, value: HeaderValue): void {
  if (name === '__proto__')
    Object.defineProperty(headers, name, { value, enumerable: true, writable: true, configurable: true });
  else headers[name] = value;
}

/**
 * Node's `ServerResponse` keeps the headers an app sets in an object without a prototype, which
 * V8 holds in dictionary mode: slow to fill and slower to walk. A bridged response gets a store
 * with the same contract (no inherited names, so `hasHeader('constructor')` stays false, and
 * `__proto__` is a plain key) in fast mode: an object whose prototype is an empty object without
 * a prototype. Node's `setHeader`, `getHeader`, `appendHeader` and the rest use it unchanged.
 */
const HEADER_STORE_PROTO: object = Object.create(null);

/** The symbol under which Node keeps a response's headers; `null` when this Node keeps them otherwise. */
let headerStoreKey: symbol | null | undefined;

/**
 * Finds Node's header store on a probe response and checks that it behaves as expected
 * (`[name, value]` entries under the lower-cased name); otherwise the bridge leaves Node's own.
 */
function probeHeaderStore(): symbol | null {
  headerStoreKey = null;
  try {
    const probe = new ServerResponse(new IncomingMessage(null as never));
    const key = Object.getOwnPropertySymbols(probe).find((s) => s.description === 'kOutHeaders');
    if (key === undefined || (probe as unknown as Record<symbol, unknown>)[key] !== null) return null;
    const store = Object.create(HEADER_STORE_PROTO) as Record<string, unknown>;
    (probe as unknown as Record<symbol, unknown>)[key] = store;
    probe.setHeader('X-Probe', 'a');
    const entry = store['x-probe'];
    if (Array.isArray(entry) && entry[0] === 'X-Probe' && entry[1] === 'a' && probe.getHeader('x-probe') === 'a') {
      headerStoreKey = key;
    }
  } catch {
    // Leave Node's store alone.
  }
  return headerStoreKey;
}

/**
 * Emits the response's end events, then settles the invocation: what the app runs on `finish`
 * (morgan's log line, metrics, `on-finished` cleanup) has run when the handler returns, before FC
 * may freeze the instance and before a test awaiting the handler looks.
 */
function emitFinish(
  res: BridgeServerResponse,
  callback: unknown,
  collector: BridgeSocket,
  response: BridgeResponse,
): void {
  try {
    const emit = res.emit;
    emit.call(res, 'prefinish');
    emit.call(res, 'finish');
    if (typeof callback === 'function') callback();
    emit.call(res, 'close');
    dumpUnread(res.req);
  } finally {
    collector.resolve(response);
  }
}

/**
 * Node's server reads away a request body nobody read once the response ended, so that the
 * request ends and closes (`on-finished(req)`, `stream.finished(req)`, `req.on('close', cleanup)`).
 * Here only when something listens for that: for the rest (most GETs) it is ticks of work nobody
 * sees. A body the app started reading is left to it, as Node leaves it.
 */
function dumpUnread(req: IncomingMessage): void {
  if (req.listenerCount('end') === 0 && req.listenerCount('close') === 0) return;
  if (req.readableEnded || req.destroyed || req.readableDidRead || req.readableFlowing) return;
  req.removeAllListeners('data');
  req.resume();
}

/**
 * What Node's server does when a response's connection closes before the response ended: the
 * socket and the response emit `close`, and the request is destroyed (so it emits `aborted` when
 * its body was not read, `error` ECONNRESET only to its listeners, then `close`).
 */
function closeDestroyed(socket: BridgeSocket, res: BridgeServerResponse, hadError: boolean): void {
  EventEmitter.prototype.emit.call(socket, 'close', hadError);
  res.destroyed = true;
  res.emit('close');
  res.req.destroy(Object.assign(new Error('aborted'), { code: 'ECONNRESET' }));
}

function flushHeaders(this: BridgeServerResponse): void {
  if (!this[kState].headWritten) this.writeHead(this.statusCode);
}

const EMPTY = Buffer.alloc(0);

function joinChunks(collector: BridgeSocket): ResponseBody {
  const only = collector.first;
  if (only === undefined) return EMPTY;
  const more = collector.more;
  if (more === undefined) {
    if (typeof only === 'string') return only;
    return Buffer.isBuffer(only) ? only : Buffer.from(only.buffer, only.byteOffset, only.byteLength);
  }
  return Buffer.concat([only, ...more].map((c) => (typeof c === 'string' ? Buffer.from(c, 'utf8') : c)));
}

/**
 * Builds a {@link BridgeResponse}: a plain object (`Object.prototype`, the same own fields in the
 * same order as a literal), made with `new` rather than as a literal. V8 ties each object or array
 * literal to an allocation site that it may decide to pretenure, when a GC happens to find most of
 * the site's recent objects alive: from then on all of them are made in the old generation,
 * which fills it and makes the process's GC several times dearer (the raw GET bench row's slow
 * mode: 2.5 to 3 times the time of its fast one). Objects made with `new` have no such site.
 */
const CollectedResponse = plainConstructor(function CollectedResponse(
  this: BridgeResponse,
  statusCode: number,
  headers: BridgeResponse['headers'],
  body: ResponseBody,
) {
  this.statusCode = statusCode;
  this.headers = headers;
  this.body = body;
});
