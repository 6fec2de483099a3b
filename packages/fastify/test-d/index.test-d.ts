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
  listen,
} from '@fc-async/fastify';
import Fastify from 'fastify';
import { expectError, expectType } from 'tsd';

const app = Fastify();
app.get('/', async (request) => {
  expectType<Invocation | undefined>(request.fc);
  expectType<Invocation | undefined>(getInvocation(request));
  return {};
});
expectType<FcHandler>(createHandler(app));
expectError(createHandler({}));

// Custom runtime: the plugin and listen().
const runtimeOptions: FcRuntimeOptions = { async: { mode: 'local' }, redactHeaders: ['x-api-key'] };
void app.register(fcAsync, runtimeOptions);
expectType<FcAsyncControls>(app.fcAsync);
expectType<Promise<void>>(app.fcAsync.drain());
const listenOptions: FcListenOptions = { port: 9000, onPreStop: () => undefined };
expectType<Promise<FcServer>>(listen(app, listenOptions));
expectError(app.register(fcAsync, { async: { mode: 'cloud' } }));
expectError(listen(app, { host: 0 }));
expectError(listen({}));
