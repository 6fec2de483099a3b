import { jsonlDestination } from '@fc-async/core';
import { fcAsync, listen } from '@fc-async/koa';
import Router from '@koa/router';
import Koa from 'koa';

const app = new Koa({ proxy: true });
const router = new Router();
router.post('/transcode', (ctx) => {
  const { type, attempt } = ctx.fc!; // 'Async' when called with X-Fc-Invocation-Type: Async
  ctx.body = { type, attempt };
});
// First, before any body parser: an async request's body is queued as it arrived.
app.use(
  fcAsync({ async: { maxAsyncRetryAttempts: 2 }, destinations: { onFailure: jsonlDestination('/tmp/failed.jsonl') } }),
);
app.use(router.routes());

// Port from FC_CUSTOM_LISTEN_PORT (then FC_SERVER_PORT, then 9000), on 0.0.0.0.
await listen(app, { preStopTimeoutMs: 10_000 });
