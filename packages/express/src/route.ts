import type { IncomingMessage } from 'node:http';

interface LayerLike {
  route?: object;
  handle?: { stack?: unknown };
  /** Express 5's (the `router` package's) pattern of the layer: `/tenants/:tenantId`. */
  rawPath?: unknown;
}

type RequestLike = {
  route?: { path?: unknown };
  baseUrl?: unknown;
  params?: Record<string, unknown>;
  app?: { parent?: unknown; _router?: { stack?: unknown }; router?: { stack?: unknown } };
};

/**
 * Per Route object, the mount patterns of the routers that lead to it from the root app, or
 * `null` when they cannot be read (Express 4 keeps no pattern; a sub-app mounted with `app.use`).
 */
const prefixes = new WeakMap<object, string | null>();

/**
 * The route Express matched, for span names: the mount path plus `req.route.path`, as patterns
 * (`/tenants/:tenantId/orders/:id`), so that a mount parameter's values neither multiply span
 * names nor reach the trace. `req.baseUrl` holds those values: where the pattern cannot be read,
 * the segments that equal a parameter's value (with `mergeParams`) are put back as `:name`.
 */
export function expressRoute(req: IncomingMessage): string | undefined {
  const { route, baseUrl, params, app } = req as unknown as RequestLike;
  if (typeof route?.path !== 'string') return undefined;
  if (typeof baseUrl !== 'string' || baseUrl === '') return route.path;
  let prefix = prefixes.get(route);
  if (prefix === undefined) {
    let root = app;
    while (root?.parent) root = root.parent as RequestLike['app'];
    prefix = root ? mountPattern(stackOf(root), route, new Set()) : null;
    prefixes.set(route, prefix);
  }
  return `${prefix ?? masked(baseUrl, params)}${route.path}`;
}

/** The concatenated patterns of the routers from `stack` down to `route`, or `null` if not found or unreadable. */
function mountPattern(stack: unknown, route: object, seen: Set<unknown>): string | null {
  if (!Array.isArray(stack) || seen.has(stack)) return null;
  seen.add(stack);
  for (const layer of stack as LayerLike[]) {
    if (layer?.route === route) return '';
    const inner = layer?.handle?.stack;
    if (!Array.isArray(inner)) continue;
    const below = mountPattern(inner, route, seen);
    if (below === null) continue;
    if (typeof layer.rawPath !== 'string') return null; // Express 4: no pattern kept
    return `${layer.rawPath === '/' ? '' : layer.rawPath}${below}`;
  }
  return null;
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

/** `baseUrl` with each segment that equals a parameter's value as `:name`. */
function masked(baseUrl: string, params: RequestLike['params']): string {
  if (!params) return baseUrl;
  const byValue = new Map<string, string>();
  for (const [name, value] of Object.entries(params)) {
    if (typeof value === 'string' && value !== '' && !byValue.has(value)) byValue.set(value, name);
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
