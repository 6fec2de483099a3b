import { fcAsync, getInvocation, listen } from '@fc-async/koa';
import { authorized, drain, serveListener } from './serve.js';
import type { AppSpec, MiddlewareApp } from './types.js';

// biome-ignore lint/suspicious/noExplicitAny: the framework module is one of two majors with different typings.
type AnyModule = any;

async function readJson(ctx: AnyModule): Promise<unknown> {
  let text = '';
  for await (const chunk of ctx.req) text += chunk;
  return text ? JSON.parse(text) : undefined;
}

/** Builds `spec` as a Koa 2/3 app: `fcAsync()` first, then the routes on an `@koa/router`. */
export async function buildKoa(Koa: AnyModule, Router: AnyModule, spec: AppSpec): Promise<MiddlewareApp> {
  const app = new Koa();
  app.silent = true;
  if (spec.before === 'header') {
    app.use(async (ctx: AnyModule, next: () => Promise<void>) => {
      ctx.set('x-upstream', 'kept');
      await next();
    });
  }
  if (spec.before === 'body-parser') {
    app.use(async (ctx: AnyModule, next: () => Promise<void>) => {
      await drain(ctx.req);
      await next();
    });
  }
  if (spec.before === 'auth') {
    app.use(async (ctx: AnyModule, next: () => Promise<void>) => {
      if (!authorized(ctx.req)) {
        ctx.status = 401;
        ctx.body = { code: 'Unauthorized' };
        return;
      }
      await next();
    });
  }
  if (spec.before === 'answered') {
    // On the Node response, as an Express middleware through koa-connect answers.
    app.use(async (ctx: AnyModule, next: () => Promise<void>) => {
      ctx.res.statusCode = 503;
      ctx.res.setHeader('content-type', 'application/json');
      ctx.res.end('{"code":"Busy"}');
      await next();
    });
  }
  const middleware = spec.fcAsync ? fcAsync(spec.fcAsync) : undefined;
  if (middleware) app.use(middleware);
  const router = new Router();
  for (const route of spec.routes) {
    router[route.method.toLowerCase()](route.path, async (ctx: AnyModule) => {
      const reply = await route.handle({
        fc: ctx.fc,
        invocation: getInvocation(ctx),
        query: { ...ctx.query },
        headers: ctx.headers,
        body: route.method === 'POST' ? await readJson(ctx) : undefined,
        socket: ctx.req.socket,
      });
      ctx.status = reply.status ?? 200;
      ctx.body = reply.body;
    });
  }
  app.use(router.routes());
  return {
    app,
    controls: middleware,
    serve: () => serveListener(app.callback(), middleware),
    listen: (options) => listen(app, options),
  };
}
