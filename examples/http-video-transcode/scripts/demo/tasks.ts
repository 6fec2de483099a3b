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
 * An access key of the local FC API.
 *
 * @example
 * ```ts
 * const key: AccessKey = { accessKeyId: 'fc-async-local', accessKeySecret: 'fc-async-local' };
 * ```
 */
export interface AccessKey {
  accessKeyId: string;
  accessKeySecret: string;
}

/**
 * The key the demo's emulator checks FC API signatures against and its SDK client signs with:
 * `FC_ASYNC_ACCESS_KEY_ID` / `FC_ASYNC_ACCESS_KEY_SECRET`, else `fc-async-local` (a key made up for
 * the emulator, never a real one).
 *
 * @example
 * ```ts
 * localAccessKey({}); // { accessKeyId: 'fc-async-local', accessKeySecret: 'fc-async-local' }
 * ```
 */
export function localAccessKey(env: NodeJS.ProcessEnv = process.env): AccessKey {
  return {
    accessKeyId: env.FC_ASYNC_ACCESS_KEY_ID || 'fc-async-local',
    accessKeySecret: env.FC_ASYNC_ACCESS_KEY_SECRET || 'fc-async-local',
  };
}

/**
 * An official FC 3.0 SDK client for a local endpoint. The SDK gives up after 3 s unless both
 * timeouts are raised.
 *
 * @example
 * ```ts
 * const client = fcClient('127.0.0.1:9001');
 * ```
 */
export function fcClient(endpoint: string, key: AccessKey = localAccessKey()): FcClient {
  return new FC.default(
    new $OpenApiUtil.Config({
      ...key,
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
