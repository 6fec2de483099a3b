import { createHandler, getInvocation } from '@fc-async/koa';
import Router from '@koa/router';
import Koa from 'koa';

const app = new Koa({ proxy: true }); // FC's gateway is the proxy: ctx.ip is the client
const router = new Router();
router.post('/orders', (ctx) => {
  const invocation = getInvocation(ctx); // or ctx.fc
  ctx.status = 201;
  ctx.body = { id: 42, requestId: invocation?.requestId, async: invocation?.type === 'Async' };
});
app.use(router.routes());

export const handler = createHandler(app);
