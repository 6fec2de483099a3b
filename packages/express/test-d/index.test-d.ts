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
  listen,
} from '@fc-async/express';
import express from 'express';
import { expectAssignable, expectError, expectType } from 'tsd';

const app = express();
app.get('/', (req, res) => {
  expectType<Invocation | undefined>(req.fc);
  expectType<Invocation | undefined>(getInvocation(req));
  expectType<boolean>(isMiddlewareReplay(req));
  res.end();
});
expectType<FcHandler>(createHandler(app, { async: { mode: 'local' } }));
expectError(createHandler({}));

// Custom runtime: the middleware and listen().
const runtimeOptions: FcRuntimeOptions = { async: { mode: 'local' }, redactHeaders: ['x-api-key'] };
const middleware = fcAsync(runtimeOptions);
expectType<FcAsyncMiddleware>(middleware);
expectAssignable<FcAsyncControls>(middleware);
expectType<'local' | 'platform'>(middleware.mode);
expectType<Promise<void>>(middleware.drain());
app.use(middleware);
const listenOptions: FcListenOptions = { port: 9000, preStopTimeoutMs: 5000, signals: ['SIGTERM'] };
expectType<Promise<FcServer>>(listen(app, listenOptions));
expectError(fcAsync({ textContentTypes: [] }));
// A port as its digits in a string (process.env.PORT) is taken, as the runtime takes it.
expectType<Promise<FcServer>>(listen(app, { port: process.env.PORT }));
expectError(listen(app, { port: true }));
expectError(listen({}));
