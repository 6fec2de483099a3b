import { createHandler, type FcHandler, getInvocation, type Invocation } from '@fc-async/koa';
import Koa from 'koa';
import { expectError, expectType } from 'tsd';

const app = new Koa();
app.use((ctx) => {
  expectType<Invocation | undefined>(ctx.fc);
  expectType<Invocation | undefined>(getInvocation(ctx));
});
expectType<FcHandler>(createHandler(app));
expectError(createHandler({ use() {} }));
