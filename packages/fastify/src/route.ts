import type { IncomingMessage } from 'node:http';
import type { FastifyInstance } from 'fastify';

const kRoute = Symbol('fc-async.route');
type RouteCarrier = { [kRoute]?: unknown };

/** Keeps the route Fastify matched (`request.routeOptions.url`) on the Node request, where the core looks. */
export function recordFastifyRoutes(app: Pick<FastifyInstance, 'addHook'>): void {
  app.addHook('onRequest', function fcAsyncRoute(request, _reply, done) {
    (request.raw as RouteCarrier)[kRoute] = request.routeOptions.url;
    done();
  });
}

/** The route Fastify matched for a request, for span names (after {@link recordFastifyRoutes}). */
export function fastifyRoute(req: IncomingMessage): string | undefined {
  const route = (req as RouteCarrier)[kRoute];
  return typeof route === 'string' ? route : undefined;
}
