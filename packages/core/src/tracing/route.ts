import type { IncomingMessage } from 'node:http';
import { type AnswerLimit, type NodeHandler, runBridged } from '../bridge.js';
import { type Invocation, setInvocation } from '../invocation.js';
import type { FcRequest } from '../request.js';
import type { BridgeResponse } from '../response.js';
import { openSpanOf } from './open-spans.js';

/**
 * The route template (`/users/:id`) the framework matched for a request, read after the app
 * answered; `undefined` when none matched. Adapters give one to the core (`AdapterHooks.routeOf`).
 *
 * @example
 * ```ts
 * const routeOf: RouteOf = (req) => (req as { route?: { path: string } }).route?.path;
 * declare const app: NodeHandler;
 * createFcHandler(app, {}, { routeOf });
 * ```
 */
export type RouteOf = (req: IncomingMessage) => string | undefined;

/** Routes of responses answered outside any SERVER span (attempts of local async tasks). */
const routes = new WeakMap<BridgeResponse, string>();

/** The route the app matched for this response, when the adapter told. */
export function routeOfResponse(response: BridgeResponse | undefined): string | undefined {
  return response === undefined ? undefined : routes.get(response);
}

/**
 * Runs the app like the bridge does, then asks the adapter which route matched and keeps it
 * with the response for the span that ends with it: the invocation's SERVER span when it has
 * one, else {@link routeOfResponse}. Used only while spans record.
 */
export function runWithRoute(
  app: NodeHandler,
  request: FcRequest,
  invocation: Invocation,
  routeOf: RouteOf,
  attach?: (req: IncomingMessage) => void,
  limit?: AnswerLimit,
): Promise<BridgeResponse> {
  let nodeRequest: IncomingMessage | undefined;
  // A `then`, not an `await`: with an async-local context manager every promise costs a hook call.
  return runBridged(
    app,
    request,
    (req) => {
      if (attach) attach(req);
      else setInvocation(req, invocation);
      nodeRequest = req;
    },
    limit,
  ).then((response) => {
    if (nodeRequest) {
      try {
        const route = routeOf(nodeRequest);
        if (typeof route === 'string' && route) {
          const span = openSpanOf(invocation);
          if (span) span.keepRoute(response, route);
          else routes.set(response, route);
        }
      } catch {
        // A route reader that throws only costs the span its route.
      }
    }
    return response;
  });
}
