import {
  type AsyncTask,
  createFcHandler,
  type Detection,
  detectInvocation,
  type FcHandler,
  type FcHttpResult,
  getInvocation,
  type Invocation,
  memory,
  type TaskPage,
} from '@fc-async/core';
import { expectAssignable, expectError, expectType } from 'tsd';

const handler = createFcHandler((_req, res) => res.end('ok'), {
  async: { mode: 'local', concurrency: 4, maxAsyncRetryAttempts: 2, backend: memory() },
  destinations: { onSuccess: (record) => void record.requestContext.requestId },
});
expectType<FcHandler>(handler);
expectType<Promise<FcHttpResult>>(handler(Buffer.from('{}'), { requestId: 'x' }));
expectType<'local' | 'platform'>(handler.mode);
expectType<Promise<AsyncTask | undefined>>(handler.tasks.get('t'));
expectType<Promise<TaskPage>>(handler.tasks.list({ status: 'Running', limit: 10 }));
expectType<Promise<void>>(handler.drain());

expectType<Detection>(detectInvocation({ 'x-fc-invocation-type': 'Async' }, {}));
expectType<Invocation | undefined>(getInvocation({}));
expectAssignable<AbortSignal>(({} as Invocation).signal);

expectError(createFcHandler('not a function'));
expectError(createFcHandler((_req, res) => res.end(), { async: { mode: 'cloud' } }));
expectError(handler.tasks.list({ sortOrderByTime: 'sideways' }));
