import { getInvocation } from '@fc-async/koa';
import Router from '@koa/router';
import Koa from 'koa';

/** A Koa app whose jobs fail with 503 until `ready(attempt)` says they can run. */
export function jobsApp(ready: (attempt: number) => boolean): Koa {
  const app = new Koa();
  const router = new Router();
  router.get('/whoami', (ctx) => {
    const { type, requestId, attempt } = ctx.fc!; // the same as getInvocation(ctx)
    ctx.body = { type, requestId, attempt, path: ctx.path };
  });
  router.post('/jobs', (ctx) => {
    const { taskId, attempt } = getInvocation(ctx)!;
    if (!ready(attempt)) ctx.throw(503, 'try again later'); // a 5xx fails the attempt: it is retried
    ctx.body = { taskId, attempt };
  });
  app.use(router.routes());
  return app;
}
