import type { IncomingMessage } from 'node:http';

const kRoute = Symbol('fc-async.route');
type RouteCarrier = { [kRoute]?: unknown };

/**
 * Keeps the route @koa/router matches (`ctx._matchedRoute`) on the Node request too, where the
 * core looks (it never sees `ctx`): an accessor on the app's context prototype, so nothing runs
 * per request unless a router sets the route.
 */
export function recordKoaRoutes(app: { context: object }): void {
  if (Object.hasOwn(app.context, '_matchedRoute')) return;
  Object.defineProperty(app.context, '_matchedRoute', {
    configurable: true,
    get(this: { req?: RouteCarrier }) {
      return this.req?.[kRoute];
    },
    set(this: { req?: RouteCarrier }, value: unknown) {
      if (this.req) this.req[kRoute] = value;
    },
  });
}

/** The route @koa/router matched for a request, for span names (after {@link recordKoaRoutes}). */
export function koaRoute(req: IncomingMessage): string | undefined {
  const route = (req as RouteCarrier)[kRoute];
  return typeof route === 'string' ? route : undefined;
}
