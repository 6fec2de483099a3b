// The official FC SDK against `fc-async dev`: run `fc-async dev --config examples/jobs/s.yaml`,
// then `npx tsx examples/sdk-client.ts`. docs/local-dev.md shows this file.
// The SDK is CommonJS: this file is written for Node's own ESM (`"module": "nodenext"`, tsx), where
// its default import is its `exports` and the client class `FC.default`. A project with
// `"moduleResolution": "bundler"` gets the class itself: there write `new FC(...)`.
import { Readable } from 'node:stream';
import FC, * as $FC from '@alicloud/fc20230330';
import { $OpenApiUtil } from '@alicloud/openapi-core';
import * as $dara from '@darabonba/typescript';

const client = new FC.default(
  new $OpenApiUtil.Config({
    accessKeyId: process.env.FC_ASYNC_ACCESS_KEY_ID ?? 'local',
    accessKeySecret: process.env.FC_ASYNC_ACCESS_KEY_SECRET ?? 'local',
    endpoint: '127.0.0.1:9001', // the control port: no scheme here
    protocol: 'http',
    readTimeout: 30_000, // the SDK gives up after 3 s by default: raise both for slow sync calls
    connectTimeout: 30_000,
  }),
);

const accepted = await client.invokeFunctionWithOptions(
  'jobs',
  new $FC.InvokeFunctionRequest({
    // An HTTP function takes an FC 3.0 HTTP event as the payload (ours): any route, any method.
    body: Readable.from(
      Buffer.from(
        JSON.stringify({
          rawPath: '/jobs',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ ms: 500 }),
          requestContext: { http: { method: 'POST' } },
        }),
      ),
    ),
  }),
  new $FC.InvokeFunctionHeaders({ xFcInvocationType: 'Async', xFcAsyncTaskId: `job_${Date.now()}` }),
  new $dara.RuntimeOptions({}),
);
const taskId = accepted.headers?.['x-fc-async-task-id'] as string;
console.log(accepted.statusCode, taskId); // 202 job_…

let task = (await client.getAsyncTask('jobs', taskId, new $FC.GetAsyncTaskRequest({}))).body;
while (task?.status && !['Succeeded', 'Failed', 'Stopped', 'Expired', 'Invalid'].includes(task.status)) {
  await new Promise((resolve) => setTimeout(resolve, 200));
  task = (await client.getAsyncTask('jobs', taskId, new $FC.GetAsyncTaskRequest({}))).body;
}
console.log(task?.status, task?.returnPayload, task?.destinationStatus);

const page = await client.listAsyncTasks(
  'jobs',
  new $FC.ListAsyncTasksRequest({ status: 'Running', prefix: 'job_', limit: 20, sortOrderByTime: 'desc' }),
);
for (const running of page.body?.tasks ?? []) {
  await client.stopAsyncTask('jobs', running.taskId as string, new $FC.StopAsyncTaskRequest({}));
}

await client.putAsyncInvokeConfig(
  'jobs',
  new $FC.PutAsyncInvokeConfigRequest({
    body: new $FC.PutAsyncInvokeConfigInput({ maxAsyncRetryAttempts: 0, maxAsyncEventAgeInSeconds: 600 }),
  }),
);
