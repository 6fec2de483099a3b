/**
 * Express 4 ignores what a middleware or route returns: a rejected promise of an `async` handler
 * is left unhandled and Node exits (with or without fc-async). fc-async makes it reject more than
 * Express 4 apps are used to (a stopped or timed-out task aborts `signal`), so the layers of the
 * apps it runs do what Express 5 does: a rejection goes to `next(error)`, to the error middleware.
 */

type Next = (error?: unknown) => void;
type Handle = (...args: unknown[]) => unknown;

/** The parts of an Express 4 `Layer` (and of its route and router) read here. */
interface Layer4 {
  handle?: Handle & { stack?: unknown };
  route?: { stack?: unknown };
  handle_request?: unknown;
  handle_error?: unknown;
}

/** An Express 4 app: `lazyrouter()` and `_router`; Express 5 has neither. */
interface App4 {
  lazyrouter?: unknown;
  _router?: { stack?: unknown };
}

/** What Express 5's router does with a handler's result: a rejection goes to `next`. */
function settle(result: unknown, next: Next): void {
  if (result !== null && typeof result === 'object' && typeof (result as PromiseLike<unknown>).then === 'function') {
    (result as PromiseLike<unknown>).then(undefined, (error: unknown) => next(error ?? new Error('Rejected promise')));
  }
}

/** Express 4's `Layer.prototype.handle_request`, plus {@link settle}. */
function handleRequest(this: Layer4, req: unknown, res: unknown, next: Next): void {
  const fn = this.handle as Handle;
  if (fn.length > 3) {
    next();
    return;
  }
  try {
    settle(fn(req, res, next), next);
  } catch (error) {
    next(error);
  }
}

/** Express 4's `Layer.prototype.handle_error`, plus {@link settle}. */
function handleError(this: Layer4, error: unknown, req: unknown, res: unknown, next: Next): void {
  const fn = this.handle as Handle;
  if (fn.length !== 4) {
    next(error);
    return;
  }
  try {
    settle(fn(error, req, res, next), next);
  } catch (thrown) {
    next(thrown);
  }
}

/** The stacks (a router's, a route's) whose layers settle rejections, new ones included. */
const settledStacks = new WeakSet<object>();

/**
 * Makes the layers of `stack` (and of the routes and routers under them) settle rejections, and
 * those pushed later too: Express 4 adds layers with `stack.push`, so the array's own `push`
 * settles each new one (a route or router added once requests came in, after a database is up).
 */
function settleStack(stack: unknown): void {
  if (!Array.isArray(stack) || settledStacks.has(stack)) return;
  settledStacks.add(stack);
  const push = stack.push;
  Object.defineProperty(stack, 'push', {
    configurable: true,
    writable: true,
    value: function pushSettled(this: unknown[], ...layers: unknown[]): number {
      const length = push.apply(this, layers);
      for (const layer of layers) settleLayer(layer);
      return length;
    },
  });
  for (const layer of stack) settleLayer(layer);
}

function settleLayer(value: unknown): void {
  if (typeof value !== 'object' || value === null) return;
  const layer = value as Layer4;
  if (typeof layer.handle !== 'function' || typeof layer.handle_request !== 'function') return;
  layer.handle_request = handleRequest;
  layer.handle_error = handleError;
  if (layer.route) settleStack(layer.route.stack);
  else settleStack(layer.handle.stack); // an express.Router()
}

/** One per app, shared by `createHandler`, `fcAsync()` and `listen()`. */
const settlers = new WeakMap<object, () => void>();
const EXPRESS_5 = () => {};

/**
 * What to call before each request an Express 4 app handles: its layers (its routers' and routes'
 * included, and those added later) then pass a rejected promise to `next`. Nothing for an Express
 * 5 app, whose router does it. A sub-app mounted with `app.use(subApp)` keeps Express 4's
 * behaviour (its layers are not reachable from the app's).
 */
export function rejectionSettler(app: object): () => void {
  let settler = settlers.get(app);
  if (settler === undefined) {
    settler =
      typeof (app as App4).lazyrouter === 'function' ? () => settleStack((app as App4)._router?.stack) : EXPRESS_5;
    settlers.set(app, settler);
  }
  return settler;
}
