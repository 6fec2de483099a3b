import * as sdk from '@alicloud/fc20230330';
import { $OpenApiUtil } from '@alicloud/openapi-core';

// The SDK is CommonJS with `exports.default = Client`. Node's ESM import makes `module.exports` the
// default export (TypeScript's view); bundlers and test runners may hand over the class itself.
const FC = (typeof sdk.default === 'function' ? sdk : sdk.default) as typeof sdk.default;

/** The official FC 3.0 client. */
export type FcClient = InstanceType<typeof FC.default>;

/** A task as the FC API returns it. */
export type Task = InstanceType<typeof FC.AsyncTask>;

const TERMINAL = new Set(['Succeeded', 'Failed', 'Stopped', 'Expired', 'Invalid']);

/**
 * An official FC 3.0 SDK client for a local endpoint. The SDK gives up after 3 s unless both
 * timeouts are raised.
 *
 * @example
 * ```ts
 * const client = fcClient('127.0.0.1:9001');
 * ```
 */
export function fcClient(
  endpoint: string,
  credentials = {
    accessKeyId: process.env.FC_ASYNC_ACCESS_KEY_ID ?? 'fc-async-local',
    accessKeySecret: process.env.FC_ASYNC_ACCESS_KEY_SECRET ?? 'fc-async-local',
  },
): FcClient {
  return new FC.default(
    new $OpenApiUtil.Config({
      ...credentials,
      endpoint,
      protocol: 'http',
      readTimeout: 10_000,
      connectTimeout: 10_000,
    }),
  );
}

/**
 * GetAsyncTask through the SDK.
 *
 * @example
 * ```ts
 * (await getTask(client, 'transcode', 'demo_mp4')).status; // 'Running'
 * ```
 */
export async function getTask(client: FcClient, functionName: string, taskId: string): Promise<Task> {
  const { body } = await client.getAsyncTask(functionName, taskId, new FC.GetAsyncTaskRequest({}));
  if (!body) throw new Error(`GetAsyncTask ${taskId} answered no body`);
  return body;
}

/**
 * StopAsyncTask through the SDK.
 *
 * @example
 * ```ts
 * await stopTask(client, 'transcode', 'demo_long');
 * ```
 */
export async function stopTask(client: FcClient, functionName: string, taskId: string): Promise<void> {
  await client.stopAsyncTask(functionName, taskId, new FC.StopAsyncTaskRequest({}));
}

/**
 * Polls GetAsyncTask until the task reaches `until` (default: any final status), calling
 * `onStatus` on every change. Rejects after `timeoutMs`.
 *
 * @example
 * ```ts
 * const task = await watchTask(client, 'transcode', 'demo_mp4', { onStatus: (t) => console.log(t.status) });
 * ```
 */
export async function watchTask(
  client: FcClient,
  functionName: string,
  taskId: string,
  options: {
    onStatus?: (task: Task) => void;
    until?: (task: Task) => boolean;
    timeoutMs?: number;
    intervalMs?: number;
  } = {},
): Promise<Task> {
  const until = options.until ?? ((task: Task) => TERMINAL.has(task.status ?? ''));
  const deadline = Date.now() + (options.timeoutMs ?? 120_000);
  let last: string | undefined;
  for (;;) {
    const task = await getTask(client, functionName, taskId);
    if (task.status !== last) {
      last = task.status;
      options.onStatus?.(task);
    }
    if (until(task)) return task;
    if (Date.now() > deadline)
      throw new Error(`Task ${taskId} is still ${task.status} after ${options.timeoutMs ?? 120_000} ms`);
    await new Promise((resolve) => setTimeout(resolve, options.intervalMs ?? 250));
  }
}
