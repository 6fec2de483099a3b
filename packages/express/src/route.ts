import type { IncomingMessage } from 'node:http';

interface LayerLike {
  route?: object;
  handle?: { stack?: unknown };
  /** Express 5's (the `router` package's) pattern of the layer: `/tenants/:tenantId`. */
  rawPath?: unknown;
}

interface AppLike {
  parent?: unknown;
  /** The pattern a sub-app was mounted at (`app.use('/api', sub)`), in Express 4 and 5. */
  mountpath?: unknown;
  _router?: { stack?: unknown };
  router?: { stack?: unknown };
}

type RequestLike = {
  route?: { path?: unknown };
  baseUrl?: unknown;
  params?: Record<string, unknown>;
  app?: AppLike;
};

/**
 * Per Route object, the mount patterns of the routers that lead to it from its app, each way
 * (a router may be mounted twice), or `null` when one cannot be read (Express 4 keeps no pattern).
 */
const prefixes = new WeakMap<object, string[] | null>();

/**
 * The route Express matched, for span names: the mount path plus `req.route.path`, as patterns
 * (`/tenants/:tenantId/orders/:id`), so that a mount parameter's values neither multiply span
 * names nor reach the trace. Patterns come from the sub-apps' `mountpath` and the routers' own
 * (Express 5); where a router's cannot be read (Express 4), the part of `req.baseUrl` it matched
 * has each segment equal to a mount parameter's value (with `mergeParams`) put back as `:name`.
 */
export function expressRoute(req: IncomingMessage): string | undefined {
  const { route, baseUrl, params, app } = req as unknown as RequestLike;
  if (typeof route?.path !== 'string') return undefined;
  if (typeof baseUrl !== 'string' || baseUrl === '' || !app) return route.path;
  // The sub-apps' mount patterns, outermost first, and what of baseUrl their routers matched.
  let appPrefix = '';
  for (let a: AppLike | undefined = app; a?.parent; a = a.parent as AppLike) {
    if (typeof a.mountpath !== 'string') return `${masked(baseUrl, params, route.path)}${route.path}`;
    appPrefix = join(a.mountpath, appPrefix);
  }
  let ways = prefixes.get(route);
  if (ways === undefined) {
    ways = mountPatterns(stackOf(app), route, new Set());
    prefixes.set(route, ways);
  }
  const rest = baseUrl.slice(segmentsLength(baseUrl, appPrefix));
  const pattern = ways?.find((way) => matches(way, rest)) ?? masked(rest, params, route.path);
  return join(join(appPrefix, pattern), route.path);
}

/** Every concatenation of router patterns from `stack` down to `route`, `null` if one cannot be read. */
function mountPatterns(stack: unknown, route: object, seen: Set<unknown>): string[] | null {
  if (!Array.isArray(stack) || seen.has(stack)) return [];
  seen.add(stack);
  const found: string[] = [];
  for (const layer of stack as LayerLike[]) {
    if (layer?.route === route) found.push('');
    const inner = layer?.handle?.stack;
    if (!Array.isArray(inner)) continue;
    const below = mountPatterns(inner, route, seen);
    if (below === null) return null;
    if (below.length === 0) continue;
    if (typeof layer.rawPath !== 'string') return null; // Express 4: no pattern kept
    for (const way of below) found.push(join(layer.rawPath, way));
  }
  seen.delete(stack);
  return found;
}

/** Joins two path patterns with one slash between them (`/t/:id/` and `/orders`), `/` alone being nothing. */
function join(a: string, b: string): string {
  const left = a === '/' ? '' : a.endsWith('/') ? a.slice(0, -1) : a;
  if (b === '' || b === '/') return left;
  return `${left}${b.startsWith('/') ? b : `/${b}`}`;
}

/** Whether `path` (values) is what `pattern` (`/t/:id`) matches, segment by segment. */
function matches(pattern: string, path: string): boolean {
  const p = pattern.split('/');
  const v = path.split('/');
  return p.length === v.length && p.every((segment, i) => segment.startsWith(':') || segment === v[i]);
}

/** How many characters of `baseUrl` the app prefix (as values) takes: as many segments as it has. */
function segmentsLength(baseUrl: string, appPrefix: string): number {
  const count = appPrefix === '' ? 0 : appPrefix.split('/').length - 1;
  const parts = baseUrl.split('/');
  return parts.slice(0, count + 1).join('/').length;
}

/** The root app's stack (Express 4 keeps it in `_router`, whose `router` getter throws; Express 5 in `router`). */
export function stackOf(app: { _router?: { stack?: unknown }; router?: { stack?: unknown } }): unknown {
  if (app._router) return app._router.stack;
  try {
    return app.router?.stack;
  } catch {
    return undefined;
  }
}

/**
 * `baseUrl` with each segment that equals the value of a mount parameter as `:name`: a parameter
 * of `routePath` itself is left out (its value may well equal a fixed segment of the mount).
 */
function masked(baseUrl: string, params: RequestLike['params'], routePath: string): string {
  if (!params) return baseUrl;
  const own = new Set([...routePath.matchAll(/:(\w+)/g)].map((m) => m[1]));
  const byValue = new Map<string, string>();
  for (const [name, value] of Object.entries(params)) {
    if (own.has(name) || typeof value !== 'string' || value === '' || byValue.has(value)) continue;
    byValue.set(value, name);
  }
  if (byValue.size === 0) return baseUrl;
  return baseUrl
    .split('/')
    .map((segment) => {
      const name = byValue.get(safeDecode(segment));
      return name === undefined ? segment : `:${name}`;
    })
    .join('/');
}

function safeDecode(segment: string): string {
  try {
    return decodeURIComponent(segment);
  } catch {
    return segment;
  }
}
