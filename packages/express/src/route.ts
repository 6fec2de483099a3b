import type { IncomingMessage } from 'node:http';

/** The route Express matched, for span names: the mount path (`req.baseUrl`) plus `req.route.path`. */
export function expressRoute(req: IncomingMessage): string | undefined {
  const { route, baseUrl } = req as { route?: { path?: unknown }; baseUrl?: unknown };
  return typeof route?.path === 'string' ? `${typeof baseUrl === 'string' ? baseUrl : ''}${route.path}` : undefined;
}
