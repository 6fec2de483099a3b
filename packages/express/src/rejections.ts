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

function settleLayers(stack: unknown, walked: Set<object>): void {
  if (!Array.isArray(stack)) return;
  for (const layer of stack as Layer4[]) {
    if (typeof layer !== 'object' || layer === null || walked.has(layer)) continue;
    walked.add(layer);
    if (typeof layer.handle !== 'function' || typeof layer.handle_request !== 'function') continue;
    layer.handle_request = handleRequest;
    layer.handle_error = handleError;
    if (layer.route) settleLayers(layer.route.stack, walked);
    else settleLayers(layer.handle.stack, walked); // an express.Router()
  }
}

/** One per app, shared by `createHandler`, `fcAsync()` and `listen()`. */
const settlers = new WeakMap<object, () => void>();
const EXPRESS_5 = () => {};

/**
 * What to call before each request an Express 4 app handles: its layers (its routers' and routes'
 * included) then pass a rejected promise to `next`, looked at again whenever the app's own stack
 * has grown. Nothing for an Express 5 app, whose router does it. A sub-app mounted with
 * `app.use(subApp)` keeps Express 4's behaviour, as does a layer added to a router or route once
 * the app's own stack has stopped growing.
 */
export function rejectionSettler(app: object): () => void {
  let settler = settlers.get(app);
  if (settler === undefined) {
    settler = typeof (app as App4).lazyrouter === 'function' ? settlerOf(app as App4) : EXPRESS_5;
    settlers.set(app, settler);
  }
  return settler;
}

function settlerOf(app: App4): () => void {
  let looked = -1;
  return () => {
    const stack = app._router?.stack;
    if (!Array.isArray(stack) || stack.length === looked) return;
    looked = stack.length;
    settleLayers(stack, new Set());
  };
}
