import { createHandler, type FcHandler, getInvocation, type Invocation } from '@fc-async/express';
import express from 'express';
import { expectError, expectType } from 'tsd';

const app = express();
app.get('/', (req, res) => {
  expectType<Invocation | undefined>(req.fc);
  expectType<Invocation | undefined>(getInvocation(req));
  res.end();
});
expectType<FcHandler>(createHandler(app, { async: { mode: 'local' } }));
expectError(createHandler({}));
