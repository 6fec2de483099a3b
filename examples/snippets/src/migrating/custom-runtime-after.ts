// After: the same custom runtime with fc-async: the same command and port in s.yaml.
import { fcAsync, listen } from '@fc-async/koa';
import Koa from 'koa';

const app = new Koa({ proxy: true }); // ctx.ip: the client, from X-Forwarded-For
app.use(fcAsync({ async: { maxAsyncRetryAttempts: 3 } })); // first: async calls, x-fc-status on failures
app.use(async (ctx) => {
  ctx.body = { hello: 'world', requestId: ctx.fc?.requestId, async: ctx.fc?.type === 'Async' };
});

// FC_CUSTOM_LISTEN_PORT (9000 when unset), on 0.0.0.0, keep-alive on; answers FC's /initialize and /pre-stop.
export const server = await listen(app);
