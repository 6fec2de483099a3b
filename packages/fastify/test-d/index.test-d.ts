import { createHandler, type FcHandler, getInvocation, type Invocation } from '@fc-async/fastify';
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
