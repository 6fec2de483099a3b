import {
  createHandler,
  type FcAsyncControls,
  type FcAsyncMiddleware,
  type FcHandler,
  type FcListenOptions,
  type FcRuntimeOptions,
  type FcServer,
  fcAsync,
  getInvocation,
  type Invocation,
  isMiddlewareReplay,
  type KoaContextLike,
  listen,
} from '@fc-async/koa';
import Koa from 'koa';
import { expectAssignable, expectError, expectType } from 'tsd';

const app = new Koa();
app.use((ctx) => {
  expectType<Invocation | undefined>(ctx.fc);
  expectType<Invocation | undefined>(getInvocation(ctx));
  expectType<boolean>(isMiddlewareReplay(ctx));
});
expectType<FcHandler>(createHandler(app));

// An app with its own state and context types: ctx.fc is there too.
interface OrdersContext {
  tenant: string;
}
const typed = new Koa<{ user?: string }, OrdersContext>();
typed.use((ctx) => {
  expectType<string>(ctx.tenant);
  expectType<Invocation | undefined>(ctx.fc);
});
expectType<FcHandler>(createHandler(typed));
expectError(createHandler({ use() {} }));

// Custom runtime: the middleware and listen().
const runtimeOptions: FcRuntimeOptions = { async: { mode: 'local' }, redactHeaders: ['x-api-key'] };
const middleware = fcAsync(runtimeOptions);
expectType<FcAsyncMiddleware>(middleware);
expectAssignable<FcAsyncControls>(middleware);
expectType<Promise<void>>(middleware.close({ timeoutMs: 1000 }));
app.use(middleware);
// Under exactOptionalPropertyTypes (tsd runs with it on) too: Koa's `respond` is `boolean | undefined`.
app.use((ctx) => {
  expectAssignable<KoaContextLike>(ctx);
  const seen: KoaContextLike = ctx;
  void seen;
});
// The middleware called from one of your own, for some paths only.
app.use(async (ctx, next) => {
  if (ctx.path.startsWith('/jobs')) await middleware(ctx, next);
  else await next();
});
const listenOptions: FcListenOptions = { port: 9000, onInitialize: () => undefined };
expectType<Promise<FcServer>>(listen(app, listenOptions));
expectError(fcAsync({ textContentTypes: [] }));
expectError(listen(app, { shutdownTimeoutMs: '1s' }));
expectError(listen({}));
