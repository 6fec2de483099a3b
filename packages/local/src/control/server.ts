import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { newRequestId } from '@fc-async/core';
import { type BodyBudget, MAX_SYNC_BODY, readBody } from '../body.js';
import type { DestinationContext } from '../destinations.js';
import type { LocalFunction } from '../function.js';
import { answerHalfClosed } from '../half-close.js';
import type { EmulatorLog } from '../log.js';
import { answerProtocolErrors } from '../protocol-errors.js';
import type { FunctionRegistry } from '../registry.js';
import { authorizeHead, type ControlAuth, checkSignedBody } from './auth.js';
import {
  deleteAsyncInvokeConfig,
  getAsyncInvokeConfig,
  listAsyncInvokeConfigs,
  putAsyncInvokeConfig,
} from './config.js';
import { EventHub, functionList, loadAssets, serveAsset } from './dashboard.js';
import { invokeFunction, refuseDeclaredPayload } from './invoke.js';
import type { ApiCall } from './params.js';
import { ApiError, invalid, sendApi, sendApiError, toApiError } from './respond.js';
import { getAsyncTask, listAsyncTasks, stopAsyncTask } from './tasks.js';

/** What the control plane serves. */
export interface ControlPlaneOptions {
  registry: FunctionRegistry;
  log: EmulatorLog;
  auth: ControlAuth;
  destinations: DestinationContext;
  /** The emulator's budget of request body bytes, shared with the trigger. */
  bodies: BodyBudget;
  /** Dashboard event streams open at once. @default 64 */
  maxEventStreams?: number | undefined;
}

const API_PREFIX = '/2023-03-30/';
const MAX_API_BODY = 1024 * 1024;

function segmentsOf(path: string): string[] {
  return path
    .slice(API_PREFIX.length)
    .split('/')
    .map((s) => {
      try {
        return decodeURIComponent(s);
      } catch {
        throw invalid('The path is not valid percent-encoding');
      }
    });
}

/** The function of an InvokeFunction path (`/2023-03-30/functions/{name}/invocations`), when it is one served. */
function invokedFunction(path: string, registry: FunctionRegistry): LocalFunction | undefined {
  const name = INVOCATIONS.exec(path)?.[1];
  if (name === undefined) return undefined;
  try {
    return registry.byName.get(decodeURIComponent(name));
  } catch {
    return undefined;
  }
}

const INVOCATIONS = /^\/2023-03-30\/functions\/([^/]+)\/invocations$/;

/** A 405 with the `Allow` header RFC 9110 asks for: the methods `path` takes. */
const notAllowed = (method: string, path: string, allow: string) =>
  new ApiError(405, 'MethodNotAllowed', `${method} is not allowed on ${path}`, { allow });

async function route(call: Omit<ApiCall, 'fn'>, path: string, opts: ControlPlaneOptions): Promise<void> {
  const method = call.req.method ?? 'GET';
  const [kind, name, ...rest] = segmentsOf(path);
  if (kind === 'async-invoke-configs' && name === undefined) {
    if (method !== 'GET') throw notAllowed(method, path, 'GET');
    sendApi(call.res, call.requestId, 200, listAsyncInvokeConfigs(call.params, opts.registry));
    return;
  }
  if (kind !== 'functions' || !name) throw new ApiError(404, 'NotFound', `No API at ${path}`);
  const fn = opts.registry.byName.get(name);
  if (!fn) throw new ApiError(404, 'FunctionNotFound', `function '${name.slice(0, 64)}' does not exist`);
  const c: ApiCall = { ...call, fn };
  const [what, id, action, extra] = rest;
  if (what === 'async-tasks' && extra === undefined) {
    if (id === undefined) {
      if (method !== 'GET') throw notAllowed(method, path, 'GET');
      return listAsyncTasks(c);
    }
    if (action === undefined) {
      if (method !== 'GET') throw notAllowed(method, path, 'GET');
      return getAsyncTask(c, id);
    }
    if (action === 'stop') {
      if (method !== 'PUT') throw notAllowed(method, path, 'PUT');
      return stopAsyncTask(c, id);
    }
  }
  if (what === 'async-invoke-config' && id === undefined) {
    if (method === 'GET') return getAsyncInvokeConfig(c);
    if (method === 'PUT') return putAsyncInvokeConfig(c, opts.destinations);
    if (method === 'DELETE') return deleteAsyncInvokeConfig(c, opts.destinations);
    throw notAllowed(method, path, 'GET, PUT, DELETE');
  }
  if (what === 'invocations' && id === undefined) {
    if (method !== 'POST') throw notAllowed(method, path, 'POST');
    return invokeFunction(c, opts.log);
  }
  throw new ApiError(404, 'NotFound', `No API at ${path}`);
}

function dashboard(
  req: IncomingMessage,
  res: ServerResponse,
  path: string,
  requestId: string,
  assets: ReturnType<typeof loadAssets>,
  hub: EventHub,
  opts: ControlPlaneOptions,
): void {
  // Another version of FC's API (FC 2.0's 2021-04-06): not served, whatever the method.
  const version = /^\/(\d{4}-\d{2}-\d{2})\//.exec(path)?.[1];
  if (version) {
    throw new ApiError(404, 'NotFound', `FC API ${version} is not served here: fc-async dev answers API 2023-03-30`);
  }
  if (req.method !== 'GET' && req.method !== 'HEAD') {
    throw notAllowed(req.method ?? '', path, 'GET, HEAD');
  }
  if (path === '/api/functions') sendApi(res, requestId, 200, functionList(opts.registry));
  else if (path === '/api/events') hub.attach(req, res);
  else if (!serveAsset(assets, path, res)) throw new ApiError(404, 'NotFound', `Nothing at ${path}`);
}

/**
 * The control plane: FC's API 2023-03-30 (async tasks, async invoke config, InvokeFunction) for
 * the official SDK, and the dashboard with its live event stream. Errors answer
 * `{ Code, Message, RequestId }` with FC's status codes.
 */
export function createControlServer(opts: ControlPlaneOptions): { server: Server; hub: EventHub } {
  const assets = loadAssets();
  const hub = new EventHub(opts.registry, opts.maxEventStreams);
  // requireHostHeader: false: a request without Host gets authorizeHead()'s JSON error, not Node's bare 400.
  const server = createServer({ requireHostHeader: false }, fcControlPlane);
  // `Expect: 100-continue`: the client sends its body only once told to, after the request's
  // credentials are checked (Node would say "continue" before the handler runs).
  server.on('checkContinue', fcControlPlane);
  async function fcControlPlane(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const requestId = newRequestId();
    const url = req.url ?? '/';
    const q = url.indexOf('?');
    const path = q < 0 ? url : url.slice(0, q);
    const query = q < 0 ? '' : url.slice(q + 1);
    const isApi = path.startsWith(API_PREFIX);
    // Counted in the emulator's budget of body bytes until the request is answered.
    let body: Buffer | undefined;
    // Past the credentials: a refusal of the body (its size, the budget) lets its client finish sending it.
    let authorized = false;
    try {
      const signedWith = authorizeHead(req, { path, query, browser: !isApi }, opts.auth);
      authorized = true;
      const invoked = isApi && req.method === 'POST' ? invokedFunction(path, opts.registry) : undefined;
      if (invoked) refuseDeclaredPayload(req, invoked);
      // `100 Continue` once the body's declared length and the budget let it be read.
      const wanted = /^100-continue$/i.test(req.headers.expect ?? '') ? () => res.writeContinue() : undefined;
      const limit = path.endsWith('/invocations') ? MAX_SYNC_BODY : MAX_API_BODY;
      body = await readBody(req, limit, undefined, opts.bodies, wanted);
      if (signedWith !== undefined) checkSignedBody(req, body, signedWith);
      if (!isApi) return dashboard(req, res, path, requestId, assets, hub, opts);
      await route({ req, res, requestId, params: new URLSearchParams(query), body }, path, opts);
    } catch (error) {
      const e = toApiError(error, opts.log);
      if ((error as { challenge?: boolean }).challenge) res.setHeader('www-authenticate', 'Basic realm="fc-async"');
      // Refused before its body was read (credentials, a budget): Node would read and drop the
      // rest, of any size, to keep the connection; closing it stops the upload instead. A client
      // past the credentials may finish sending it first (endAfterBody, bounded in time), so that
      // it reads the refusal rather than a reset; an unauthorized one is cut at once.
      if (!req.complete && !res.headersSent) res.setHeader('connection', 'close');
      sendApiError(res, requestId, e, authorized);
    } finally {
      if (body !== undefined) opts.bodies.release(body);
    }
  }
  answerProtocolErrors(server, (code, message) => {
    const requestId = newRequestId();
    return { body: { Code: code, Message: message, RequestId: requestId }, headers: { 'x-fc-request-id': requestId } };
  });
  answerHalfClosed(server);
  server.on('close', () => hub.close());
  return { server, hub };
}
