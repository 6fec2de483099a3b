import type { Attributes, Span } from '@opentelemetry/api';
import { lastFunctionArn, NO_ACCOUNT, NO_REGION } from '../async/arn.js';
import type { Invocation } from '../invocation.js';
import type { FcRequest } from '../request.js';
import {
  ATTR_CLIENT_ADDRESS,
  ATTR_CLOUD_ACCOUNT_ID,
  ATTR_CLOUD_REGION,
  ATTR_CLOUD_RESOURCE_ID,
  ATTR_FAAS_INSTANCE,
  ATTR_FAAS_INVOCATION_ID,
  ATTR_FAAS_MAX_MEMORY,
  ATTR_FAAS_NAME,
  ATTR_FAAS_VERSION,
  ATTR_FC_ASYNC_ATTEMPT,
  ATTR_FC_ASYNC_INVOCATION_TYPE,
  ATTR_FC_ASYNC_QUALIFIER,
  ATTR_FC_ASYNC_TASK_ID,
  ATTR_HTTP_REQUEST_METHOD,
  ATTR_HTTP_REQUEST_METHOD_ORIGINAL,
  ATTR_URL_PATH,
  ATTR_URL_SCHEME,
  ATTR_USER_AGENT_ORIGINAL,
} from './semconv.js';

const KNOWN_METHODS = new Set([
  'GET',
  'HEAD',
  'POST',
  'PUT',
  'DELETE',
  'CONNECT',
  'OPTIONS',
  'TRACE',
  'PATCH',
  'QUERY',
]);

type RequestLike = Pick<FcRequest, 'method' | 'url' | 'headers' | 'remoteAddress'>;

function first(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value;
}

/** The method as a span name uses it, from {@link httpAttributes}: a known method, else `HTTP`. */
export function spanMethodOf(attributes: Attributes): string {
  const method = attributes[ATTR_HTTP_REQUEST_METHOD];
  return typeof method === 'string' && method !== '_OTHER' ? method : 'HTTP';
}

/**
 * HTTP server attributes of a request: method, scheme, path (never the query string, which may
 * hold tokens), user agent and client address. No other header is read.
 */
export function httpAttributes(request: RequestLike, into: Attributes): Attributes {
  const known = knownMethod(request.method);
  if (known) {
    into[ATTR_HTTP_REQUEST_METHOD] = known;
  } else {
    into[ATTR_HTTP_REQUEST_METHOD] = '_OTHER';
    into[ATTR_HTTP_REQUEST_METHOD_ORIGINAL] = request.method;
  }
  into[ATTR_URL_PATH] = pathOf(request.url);
  into[ATTR_URL_SCHEME] = schemeOf(first(request.headers['x-forwarded-proto']));
  const agent = first(request.headers['user-agent']);
  if (agent) into[ATTR_USER_AGENT_ORIGINAL] = agent;
  const forwarded = first(request.headers['x-forwarded-for']);
  const client = forwarded ? firstListItem(forwarded) : request.remoteAddress;
  if (client) into[ATTR_CLIENT_ADDRESS] = client;
  return into;
}

/** The scheme and authority of an absolute-form target (RFC 9112 section 3.2.2), user info included. */
const ABSOLUTE_FORM = /^[A-Za-z][A-Za-z0-9+.-]*:\/\/[^/?#]*/;

/**
 * `url.path`: the target's path, without the query string (which may hold tokens) nor, for an
 * absolute-form target (`GET http://user:pass@host/path`, a client through a proxy), its scheme
 * and authority (which may hold credentials).
 */
function pathOf(url: string): string {
  let start = 0;
  if (url.charCodeAt(0) !== 47 /* / */) start = ABSOLUTE_FORM.exec(url)?.[0].length ?? 0;
  const q = url.indexOf('?', start);
  if (start === 0) return q === -1 ? url : url.slice(0, q);
  return (q === -1 ? url.slice(start) : url.slice(start, q)) || '/';
}

/** The method upper-cased when it is a known one; one that already is (nearly all) costs no new string. */
function knownMethod(method: string): string | undefined {
  if (KNOWN_METHODS.has(method)) return method;
  const upper = method.toUpperCase();
  return KNOWN_METHODS.has(upper) ? upper : undefined;
}

/**
 * `url.scheme`: the client's, from the first `X-Forwarded-Proto` entry (`http` or `https`), else
 * that of the request fc-async received, plain HTTP (FC's runtime, a custom runtime's port).
 */
function schemeOf(forwarded: string | undefined): string {
  if (forwarded === undefined) return 'http';
  const proto = firstListItem(forwarded).toLowerCase();
  return proto === 'https' ? 'https' : 'http';
}

/** The first entry of a comma-separated header value, trimmed. */
function firstListItem(value: string): string {
  const comma = value.indexOf(',');
  return (comma === -1 ? value : value.slice(0, comma)).trim();
}

/** `cloud.resource_id` of an invocation that names its region, account and function. */
const resourceIdOf = lastFunctionArn();

/**
 * The FaaS, cloud and fc-async attributes an invocation brings. `requestIdSet`: the
 * `faas.invocation_id` the span already has, not set again when it is the invocation's;
 * `fallbackName`: `faas.name` when FC names no function (a local run), as its tasks' ARN has it.
 */
export function setInvocationAttributes(
  span: Span,
  invocation: Invocation,
  requestIdSet?: string,
  fallbackName?: string,
): void {
  if (invocation.requestId !== requestIdSet) span.setAttribute(ATTR_FAAS_INVOCATION_ID, invocation.requestId);
  span.setAttribute(ATTR_FC_ASYNC_INVOCATION_TYPE, invocation.type);
  span.setAttribute(ATTR_FC_ASYNC_QUALIFIER, invocation.qualifier);
  // The stand-ins of a run without FC (the emulator's default account `0`) are no cloud: left out,
  // as on the spans of its tasks, which read them back from the ARN they are written in.
  const region = invocation.region !== NO_REGION && invocation.region;
  const accountId = invocation.accountId !== NO_ACCOUNT && invocation.accountId;
  if (region) span.setAttribute(ATTR_CLOUD_REGION, region);
  if (accountId) span.setAttribute(ATTR_CLOUD_ACCOUNT_ID, accountId);
  const name = invocation.functionName || fallbackName;
  if (name) span.setAttribute(ATTR_FAAS_NAME, name);
  if (region && accountId && invocation.functionName) {
    span.setAttribute(ATTR_CLOUD_RESOURCE_ID, resourceIdOf(invocation, invocation.functionName));
  }
  const version = invocation.versionId || invocation.qualifier;
  if (version) span.setAttribute(ATTR_FAAS_VERSION, version);
  if (invocation.instanceId) span.setAttribute(ATTR_FAAS_INSTANCE, invocation.instanceId);
  if (invocation.memoryMB) span.setAttribute(ATTR_FAAS_MAX_MEMORY, invocation.memoryMB * 1024 * 1024);
  if (invocation.taskId) span.setAttribute(ATTR_FC_ASYNC_TASK_ID, invocation.taskId);
  if (invocation.type === 'Async') span.setAttribute(ATTR_FC_ASYNC_ATTEMPT, invocation.attempt);
}
