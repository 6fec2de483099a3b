/**
 * What the HTTP trigger answered.
 *
 * @example
 * ```ts
 * const { status, requestId, body } = await callTranscode(url, job);
 * ```
 */
export interface TriggerAnswer {
  status: number;
  requestId: string | null;
  taskId: string | null;
  body: string;
}

/**
 * POSTs a transcode job to the HTTP trigger, sync or, with `taskId`, async (`X-Fc-Invocation-Type:
 * Async` and `X-Fc-Async-Task-Id`), as the curl lines of the README do.
 *
 * @example
 * ```ts
 * await callTranscode('http://127.0.0.1:9000/', { bucket, object, output_dir: 'out', dst_format: 'mp4' }, { taskId: 'demo_mp4' });
 * ```
 */
export async function callTranscode(
  url: string,
  job: unknown,
  options: { taskId?: string } = {},
): Promise<TriggerAnswer> {
  const headers: Record<string, string> = { 'content-type': 'application/json' };
  if (options.taskId) {
    headers['x-fc-invocation-type'] = 'Async';
    headers['x-fc-async-task-id'] = options.taskId;
  }
  const response = await fetch(url, { method: 'POST', headers, body: JSON.stringify(job) });
  return {
    status: response.status,
    requestId: response.headers.get('x-fc-request-id'),
    taskId: response.headers.get('x-fc-async-task-id'),
    body: await response.text(),
  };
}

/**
 * The curl line for a job, as the README and `npm run dev` print it.
 *
 * @example
 * ```ts
 * curlLine('http://127.0.0.1:9000/', job, true);
 * ```
 */
export function curlLine(url: string, job: unknown, async: boolean): string {
  const invocation = async ? `-H 'X-Fc-Invocation-Type: Async' ` : '';
  return `curl -i ${invocation}-H 'Content-Type: application/json' -d '${JSON.stringify(job)}' ${url}`;
}
