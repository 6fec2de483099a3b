import { fcAsync, getInvocation, listen } from '@fc-async/express';
import { authorized, serveListener } from './serve.js';
import type { AppSpec, MiddlewareApp, RouteReply } from './types.js';

// biome-ignore lint/suspicious/noExplicitAny: the framework module is one of two majors with different typings.
type AnyModule = any;

/** Builds `spec` as an Express 4/5 app: `fcAsync()` first, then `express.json()`, then the routes. */
export async function buildExpress(express: AnyModule, spec: AppSpec): Promise<MiddlewareApp> {
  const app = express();
  if (spec.before === 'header') {
    app.use((_req: AnyModule, res: AnyModule, next: () => void) => {
      res.setHeader('x-upstream', 'kept');
      next();
    });
  }
  if (spec.before === 'body-parser') app.use(express.json());
  if (spec.before === 'auth') {
    app.use((req: AnyModule, res: AnyModule, next: () => void) => {
      if (authorized(req)) next();
      else res.status(401).json({ code: 'Unauthorized' });
    });
  }
  if (spec.before === 'answered') {
    app.use((_req: AnyModule, res: AnyModule, next: () => void) => {
      res.status(503).json({ code: 'Busy' });
      next();
    });
  }
  const middleware = spec.fcAsync ? fcAsync(spec.fcAsync) : undefined;
  if (middleware) app.use(middleware);
  app.use(express.json());
  for (const route of spec.routes) {
    app[route.method.toLowerCase()](route.path, (req: AnyModule, res: AnyModule, next: (e: unknown) => void) => {
      const reply = route.handle({
        fc: req.fc,
        invocation: getInvocation(req),
        query: { ...req.query },
        headers: req.headers,
        body: req.body,
        socket: req.socket,
      });
      Promise.resolve(reply).then((r: RouteReply) => {
        res.status(r.status ?? 200);
        if (typeof r.body === 'string') res.type('text/plain').send(r.body);
        else res.json(r.body);
      }, next);
    });
  }
  return {
    app,
    controls: middleware,
    serve: () => serveListener(app, middleware),
    listen: (options) => listen(app, options),
  };
}
