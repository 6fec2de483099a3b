import { type Logger, objectFirstLogger } from '@fc-async/core';
import {
  createHandler,
  type FcAsyncControls,
  type FcHandler,
  type FcListenOptions,
  type FcRuntimeOptions,
  type FcServer,
  fcAsync,
  getInvocation,
  type Invocation,
  isMiddlewareReplay,
  listen,
} from '@fc-async/fastify';
import Fastify from 'fastify';
import { expectError, expectType } from 'tsd';

const app = Fastify();
app.get('/', async (request) => {
  expectType<Invocation | undefined>(request.fc);
  expectType<Invocation | undefined>(getInvocation(request));
  expectType<boolean>(isMiddlewareReplay(request));
  return {};
});
expectType<FcHandler>(createHandler(app));
expectError(createHandler({}));

// Custom runtime: the plugin and listen().
const runtimeOptions: FcRuntimeOptions = { async: { mode: 'local' }, redactHeaders: ['x-api-key'] };
void app.register(fcAsync, runtimeOptions);
// Only the plugin defines `app.fcAsync` (an app wrapped by createHandler has none): checked before use.
expectType<FcAsyncControls | undefined>(app.fcAsync);
expectError<FcAsyncControls>(app.fcAsync);
if (app.fcAsync !== undefined) expectType<Promise<void>>(app.fcAsync.drain());
// Fastify's app.log (pino) takes the fields first: wrapped, its entries keep them.
expectType<Logger>(objectFirstLogger(app.log));
expectType<FcHandler>(createHandler(Fastify(), { logger: objectFirstLogger(app.log) }));
// A port as its digits in a string, as process.env.PORT holds it.
expectType<Promise<FcServer>>(listen(app, { port: process.env.PORT }));
const listenOptions: FcListenOptions = { port: 9000, onPreStop: () => undefined };
expectType<Promise<FcServer>>(listen(app, listenOptions));
expectError(app.register(fcAsync, { async: { mode: 'cloud' } }));
expectError(listen(app, { host: 0 }));
expectError(listen({}));
