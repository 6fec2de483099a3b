import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import * as $dara from '@darabonba/typescript';
import type { DestinationRecord } from '@fc-async/core';
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from 'vitest';
import { $FC, type CliRun, example, fixture, runCli, sdk, sdkError, startCli, waitFor } from './helpers.js';

const TERMINAL = ['Succeeded', 'Failed', 'Stopped', 'Expired', 'Invalid'];

async function post(cli: CliRun, path: string, body: unknown, headers: Record<string, string> = {}) {
  return fetch(`${cli.trigger}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: JSON.stringify(body),
  });
}

const asyncHeaders = (taskId?: string) => ({
  'x-fc-invocation-type': 'Async',
  ...(taskId ? { 'x-fc-async-task-id': taskId } : {}),
});

function finished(client: ReturnType<typeof sdk>, fn: string, taskId: string) {
  return waitFor(async () => {
    const task = (await client.getAsyncTask(fn, taskId, new $FC.GetAsyncTaskRequest({}))).body;
    return task?.status && TERMINAL.includes(task.status) ? task : undefined;
  });
}

describe('fc-async dev on an Express app', () => {
  let cli: CliRun;
  let client: ReturnType<typeof sdk>;

  beforeAll(async () => {
    cli = await startCli([fixture('jobs-app.ts'), '--name', 'app', '--retry-delay', '20']);
    client = sdk(cli.control);
  });
  afterAll(async () => {
    await cli?.stop('SIGKILL');
  });

  it('prints where it serves the function and the control plane', () => {
    const ready = cli.lines.find((l) => l.kind === 'ready') as { functions: { name: string; url: string }[] };
    expect(ready.functions).toEqual([expect.objectContaining({ name: 'app', url: `${cli.trigger}/` })]);
    expect(cli.control).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/$/);
  });

  it('answers a sync call with the app response and an FC request id', async () => {
    const res = await fetch(`${cli.trigger}/hello`);
    expect(res.status).toBe(200);
    expect(res.headers.get('x-fc-request-id')).toMatch(/^1-[0-9a-f]{8}-[0-9a-f]{24}$/);
    expect(await res.json()).toEqual({ hello: 'world', function: 'app' });
  });

  it('answers an async call 202 with a task id, and the official SDK sees it succeed', async () => {
    const res = await post(cli, '/jobs', { ms: 30 }, asyncHeaders('e2e_ok'));
    expect(res.status).toBe(202);
    expect(await res.text()).toBe('');
    expect(res.headers.get('x-fc-async-task-id')).toBe('e2e_ok');
    const task = await finished(client, 'app', 'e2e_ok');
    expect(task.status).toBe('Succeeded');
    expect(task.requestId).toBe(res.headers.get('x-fc-request-id'));
    expect(task.functionArn).toBe('acs:fc:cn-hangzhou:0:functions/app');
    expect(JSON.parse(task.returnPayload as string)).toEqual({ done: true, ms: 30, stopped: false });
    expect(task.events?.map((e) => e.status)).toEqual(['Enqueued', 'Dequeued', 'Running', 'Succeeded']);
  });

  it('uses the request id as task id without X-Fc-Async-Task-Id', async () => {
    const res = await post(cli, '/jobs', { ms: 1 }, asyncHeaders());
    expect(res.status).toBe(202);
    const requestId = res.headers.get('x-fc-request-id') as string;
    expect(res.headers.get('x-fc-async-task-id')).toBe(requestId);
    expect((await finished(client, 'app', requestId)).status).toBe('Succeeded');
  });

  it('stops a long task through the SDK, and refuses to stop it twice', async () => {
    expect((await post(cli, '/jobs', { ms: 20_000 }, asyncHeaders('e2e_long'))).status).toBe(202);
    await waitFor(async () => {
      const task = (await client.getAsyncTask('app', 'e2e_long', new $FC.GetAsyncTaskRequest({}))).body;
      return task?.status === 'Running' ? task : undefined;
    });
    const stopped = await client.stopAsyncTask('app', 'e2e_long', new $FC.StopAsyncTaskRequest({}));
    expect(stopped.statusCode).toBe(200);
    const task = await finished(client, 'app', 'e2e_long');
    expect(task.status).toBe('Stopped');
    expect(task.durationMs).toBeLessThan(20_000);
    const again = await sdkError(client.stopAsyncTask('app', 'e2e_long', new $FC.StopAsyncTaskRequest({})));
    expect(again).toMatchObject({ code: 'InvalidArgument', statusCode: 400 });
  });

  it('lists tasks with every filter, limit, nextToken and sort order', async () => {
    const ids = ['page_a', 'page_b', 'page_c', 'page_d', 'page_e'];
    for (const id of ids) {
      expect((await post(cli, '/jobs', { ms: 1 }, asyncHeaders(id))).status).toBe(202);
      await new Promise((resolve) => setTimeout(resolve, 5)); // distinct startedTime
    }
    for (const id of ids) await finished(client, 'app', id);
    const list = (q: ConstructorParameters<typeof $FC.ListAsyncTasksRequest>[0]) =>
      client.listAsyncTasks('app', new $FC.ListAsyncTasksRequest(q)).then((r) => r.body);

    const seen: string[] = [];
    let token: string | undefined;
    do {
      const page = await list({ prefix: 'page_', limit: 2, sortOrderByTime: 'asc', nextToken: token });
      expect(page?.tasks?.length).toBeLessThanOrEqual(2);
      seen.push(...(page?.tasks ?? []).map((t) => t.taskId as string));
      token = page?.nextToken || undefined;
    } while (token);
    expect(seen).toEqual(ids);

    const desc = await list({ prefix: 'page_', sortOrderByTime: 'desc', limit: 100 });
    expect(desc?.tasks?.map((t) => t.taskId)).toEqual([...ids].reverse());
    expect((await list({ prefix: 'page_', status: 'Succeeded' }))?.tasks).toHaveLength(5);
    expect((await list({ prefix: 'page_', status: 'Failed' }))?.tasks ?? []).toHaveLength(0);
    const first = desc?.tasks?.at(-1)?.startedTime as number;
    expect((await list({ prefix: 'page_', startedTimeBegin: first + 1 }))?.tasks).toHaveLength(4);
    expect((await list({ prefix: 'page_', startedTimeEnd: first }))?.tasks).toHaveLength(1);
    const withPayload = await list({ prefix: 'page_a', includePayload: true });
    expect(JSON.parse(withPayload?.tasks?.[0]?.taskPayload as string)).toMatchObject({ method: 'POST', url: '/jobs' });
    expect((await list({ prefix: 'page_a' }))?.tasks?.[0]?.taskPayload).toBeUndefined();
  });

  it.each([
    ['an unknown function', '/2023-03-30/functions/nope/async-tasks', 404, 'FunctionNotFound'],
    ['a task id breaking FC rule', '/2023-03-30/functions/app/async-tasks/9bad', 400, 'InvalidArgument'],
    ['an unknown task', '/2023-03-30/functions/app/async-tasks/never_seen', 404, 'AsyncTaskNotFound'],
    ['limit 0', '/2023-03-30/functions/app/async-tasks?limit=0', 400, 'InvalidArgument'],
    ['limit 101', '/2023-03-30/functions/app/async-tasks?limit=101', 400, 'InvalidArgument'],
    ['a limit that is not a number', '/2023-03-30/functions/app/async-tasks?limit=ten', 400, 'InvalidArgument'],
    ['an unknown status', '/2023-03-30/functions/app/async-tasks?status=Done', 400, 'InvalidArgument'],
    ['two statuses', '/2023-03-30/functions/app/async-tasks?status=Failed&status=Running', 400, 'InvalidArgument'],
    ['a bad sort order', '/2023-03-30/functions/app/async-tasks?sortOrderByTime=up', 400, 'InvalidArgument'],
    ['a forged nextToken', '/2023-03-30/functions/app/async-tasks?nextToken=abc', 400, 'InvalidArgument'],
    ['a negative time', '/2023-03-30/functions/app/async-tasks?startedTimeBegin=-1', 400, 'InvalidArgument'],
    ['a bad includePayload', '/2023-03-30/functions/app/async-tasks?includePayload=yes', 400, 'InvalidArgument'],
    ['a bad qualifier', '/2023-03-30/functions/app/async-tasks?qualifier=a%20b', 400, 'InvalidArgument'],
    ['broken percent-encoding', '/2023-03-30/functions/%E0%A4%A/async-tasks', 400, 'InvalidArgument'],
    ['an unknown API', '/2023-03-30/functions/app/triggers', 404, 'NotFound'],
  ])('answers %s with an FC error', async (_label, path, status, code) => {
    const res = await fetch(`${cli.control.replace(/\/$/, '')}${path}`);
    expect(res.status).toBe(status);
    const body = (await res.json()) as { Code: string; Message: string; RequestId: string };
    expect(body).toMatchObject({ Code: code, RequestId: res.headers.get('x-fc-request-id') });
    expect(body.Message).not.toMatch(/at .*\.(ts|js):\d+/);
    expect(cli.proc.exitCode).toBeNull();
  });

  it("answers FC 2.0's API (2021-04-06) 404 NotFound whatever the method, not 405 as if the path existed", async () => {
    for (const method of ['GET', 'POST']) {
      const res = await fetch(`${cli.control}2021-04-06/services/svc/functions/app/invocations`, {
        method,
        body: method === 'POST' ? '{}' : undefined,
      });
      expect(res.status).toBe(404);
      expect(await res.json()).toMatchObject({ Code: 'NotFound', Message: expect.stringContaining('2023-03-30') });
    }
  });

  it('answers a wrong method 405 and bad trigger headers 400, and keeps running', async () => {
    const wrong = await fetch(`${cli.control}2023-03-30/functions/app/async-tasks`, { method: 'DELETE' });
    expect(wrong.status).toBe(405);
    expect(await wrong.json()).toMatchObject({ Code: 'MethodNotAllowed' });
    const badType = await post(cli, '/jobs', {}, { 'x-fc-invocation-type': 'Later' });
    expect(badType.status).toBe(400);
    expect(await badType.json()).toMatchObject({ code: 'InvalidArgument' });
    const badDelay = await post(cli, '/jobs', {}, { ...asyncHeaders(), 'x-fc-async-delay': '0' });
    expect(badDelay.status).toBe(400);
    const dup = await post(cli, '/jobs', {}, asyncHeaders('e2e_ok'));
    expect(dup.status).toBe(409);
    expect(cli.proc.exitCode).toBeNull();
  });

  it('invokes the function through InvokeFunction, Sync and Async', async () => {
    const event = { rawPath: '/hello', headers: {}, requestContext: { http: { method: 'GET' } } };
    const invoke = (body: unknown, headers: ConstructorParameters<typeof $FC.InvokeFunctionHeaders>[0]) =>
      client.invokeFunctionWithOptions(
        'app',
        new $FC.InvokeFunctionRequest({ body: Readable.from(Buffer.from(JSON.stringify(body))) }),
        new $FC.InvokeFunctionHeaders(headers),
        new $dara.RuntimeOptions({}),
      );
    const sync = await invoke(event, {});
    expect(sync.statusCode).toBe(200);
    expect(sync.headers?.['x-fc-http-status']).toBe('200');
    expect(JSON.parse(await text(sync.body as Readable))).toEqual({ hello: 'world', function: 'app' });

    const raw = await invoke({ not: 'an event' }, {});
    expect(raw.headers?.['x-fc-http-status']).toBe('404');

    const job = { ...event, rawPath: '/jobs', headers: { 'content-type': 'application/json' }, body: '{"ms":1}' };
    job.requestContext.http.method = 'POST';
    const accepted = await invoke(job, { xFcInvocationType: 'Async', xFcAsyncTaskId: 'invoke_1' });
    expect(accepted.statusCode).toBe(202);
    expect(accepted.headers?.['x-fc-async-task-id']).toBe('invoke_1');
    expect((await finished(client, 'app', 'invoke_1')).status).toBe('Succeeded');
    const dup = await sdkError(invoke(job, { xFcInvocationType: 'Async', xFcAsyncTaskId: 'invoke_1' }));
    expect(dup).toMatchObject({ code: 'AsyncTaskAlreadyExists', statusCode: 409 });
    const bad = await sdkError(invoke(job, { xFcInvocationType: 'Whenever' }));
    expect(bad).toMatchObject({ code: 'InvalidArgument', statusCode: 400 });
  });

  it('changes retries of the running function with Put/Get/DeleteAsyncInvokeConfig', async () => {
    const get = () => client.getAsyncInvokeConfig('app', new $FC.GetAsyncInvokeConfigRequest({}));
    expect(await sdkError(get())).toMatchObject({ code: 'AsyncConfigNotExists', statusCode: 404 });
    const put = (input: ConstructorParameters<typeof $FC.PutAsyncInvokeConfigInput>[0]) =>
      client.putAsyncInvokeConfig(
        'app',
        new $FC.PutAsyncInvokeConfigRequest({ body: new $FC.PutAsyncInvokeConfigInput(input) }),
      );
    const runs = async (taskId: string) => {
      expect((await post(cli, '/jobs', { fail: true }, asyncHeaders(taskId))).status).toBe(202);
      const task = await finished(client, 'app', taskId);
      expect(task.status).toBe('Failed');
      return task.events?.filter((e) => e.status === 'Running').length;
    };

    expect((await put({ maxAsyncRetryAttempts: 0 })).body?.maxAsyncRetryAttempts).toBe(0);
    expect(await runs('retry_none')).toBe(1);
    const updated = await put({ maxAsyncRetryAttempts: 2, maxAsyncEventAgeInSeconds: 600 });
    expect(updated.body).toMatchObject({ maxAsyncRetryAttempts: 2, maxAsyncEventAgeInSeconds: 600 });
    expect((await get()).body).toMatchObject({
      functionArn: 'acs:fc:cn-hangzhou:0:functions/app',
      maxAsyncRetryAttempts: 2,
    });
    expect(await runs('retry_two')).toBe(3);
    expect(await sdkError(put({ maxAsyncRetryAttempts: 9 }))).toMatchObject({
      code: 'InvalidArgument',
      statusCode: 400,
    });

    expect((await client.deleteAsyncInvokeConfig('app', new $FC.DeleteAsyncInvokeConfigRequest({}))).statusCode).toBe(
      204,
    );
    expect(await sdkError(get())).toMatchObject({ code: 'AsyncConfigNotExists' });
    expect(await runs('retry_default')).toBe(4);
  });

  it('logs one JSON line per invocation and per attempt', async () => {
    const invocation = await waitFor(() => cli.lines.find((l) => l.kind === 'invocation' && l.taskId === 'e2e_ok'));
    expect(invocation).toMatchObject({
      function: 'app',
      type: 'Async',
      status: 202,
      method: 'POST',
      path: '/jobs',
      via: 'http',
    });
    expect(invocation.requestId).toMatch(/^1-/);
    expect(typeof invocation.durationMs).toBe('number');
    const attempts = cli.lines.filter((l) => l.kind === 'attempt' && l.taskId === 'retry_two');
    expect(attempts.map((l) => [l.attempt, l.status])).toEqual([
      [1, 'Retrying'],
      [2, 'Retrying'],
      [3, 'Failed'],
    ]);
    const sync = cli.lines.find((l) => l.kind === 'invocation' && l.type === 'Sync' && l.path === '/hello');
    expect(sync).toMatchObject({ status: 200, via: 'http' });
  });
});

async function text(stream: Readable): Promise<string> {
  let out = '';
  for await (const chunk of stream) out += String(chunk);
  return out;
}

describe('fc-async dev on an s.yaml with destination functions', () => {
  let cli: CliRun;
  let client: ReturnType<typeof sdk>;
  const destLog = join(mkdtempSync(join(tmpdir(), 'fc-async-dest-')), 'destinations.jsonl');
  const records = () => {
    try {
      return readFileSync(destLog, 'utf8')
        .trim()
        .split('\n')
        .filter(Boolean)
        .map((l) => JSON.parse(l) as { kind: string; record: DestinationRecord });
    } catch {
      return [];
    }
  };

  beforeAll(async () => {
    cli = await startCli(['--config', example('jobs/s.yaml'), '--retry-delay', '20'], { env: { DEST_LOG: destLog } });
    client = sdk(cli.control);
  });
  afterAll(async () => {
    await cli?.stop('SIGKILL');
  });

  it('serves the HTTP function at / and lists the event functions', () => {
    const ready = cli.lines.find((l) => l.kind === 'ready') as { functions: { name: string; url?: string }[] };
    expect(ready.functions.map((f) => [f.name, f.url])).toEqual([
      ['jobs', `${cli.trigger}/`],
      ['dest-succ', undefined],
      ['dest-fail', undefined],
    ]);
  });

  it('reads asyncInvokeConfig from s.yaml', async () => {
    const config = (await client.getAsyncInvokeConfig('jobs', new $FC.GetAsyncInvokeConfigRequest({}))).body;
    expect(config).toMatchObject({
      asyncTask: true,
      maxAsyncRetryAttempts: 2,
      maxAsyncEventAgeInSeconds: 18000,
      destinationConfig: {
        onSuccess: { destination: 'acs:fc:cn-hangzhou:0:functions/dest-succ' },
        onFailure: { destination: 'acs:fc:cn-hangzhou:0:functions/dest-fail' },
      },
    });
  });

  it('sends the success record to dest-succ, invoked as an async event function', async () => {
    const res = await post(cli, '/jobs', { ms: 1 }, asyncHeaders('yaml_ok'));
    expect(res.status).toBe(202);
    const got = await waitFor(() =>
      records().find(
        (r) => r.kind === 'dest-succ' && r.record.requestContext.requestId === res.headers.get('x-fc-request-id'),
      ),
    );
    expect(got.record).toMatchObject({
      requestContext: { functionArn: 'acs:fc:cn-hangzhou:0:functions/jobs', condition: '', approximateInvokeCount: 1 },
      responseContext: { statusCode: 200, functionError: '' },
    });
    expect(JSON.parse(got.record.responsePayload)).toMatchObject({ done: true });
    const task = await waitFor(async () => {
      const t = (await client.getAsyncTask('jobs', 'yaml_ok', new $FC.GetAsyncTaskRequest({}))).body;
      return t?.destinationStatus ? t : undefined;
    });
    expect(task.destinationStatus).toBe('Succeeded');
    // The attempt's line comes when its outcome is recorded, before the destination is called.
    const lines = () =>
      cli.lines.filter((l) => l.taskId === 'yaml_ok' && (l.kind === 'attempt' || l.kind === 'delivery'));
    await waitFor(() => lines().some((l) => l.kind === 'delivery') || undefined);
    expect(lines().map((l) => [l.kind, l.status ?? l.destinationStatus])).toEqual([
      ['attempt', 'Succeeded'],
      ['delivery', 'Succeeded'],
    ]);
    // The delivery line names the side the record went to and the destination that took it.
    expect(lines().find((l) => l.kind === 'delivery')).toMatchObject({
      side: 'onSuccess',
      destinations: [{ label: expect.stringContaining('dest-succ'), status: 'Succeeded', attempts: 1 }],
    });
    const delivered = (
      await client.listAsyncTasks('dest-succ', new $FC.ListAsyncTasksRequest({ includePayload: true }))
    ).body;
    expect(
      delivered?.tasks?.some((t) => (t.taskPayload ?? '').includes(res.headers.get('x-fc-request-id') as string)),
    ).toBe(true);
  });

  it("stops a long task of the example's own fc-async handler through the SDK", async () => {
    expect((await post(cli, '/jobs', { ms: 30_000 }, asyncHeaders('yaml_long'))).status).toBe(202);
    await waitFor(async () => {
      const t = (await client.getAsyncTask('jobs', 'yaml_long', new $FC.GetAsyncTaskRequest({}))).body;
      return t?.status === 'Running' ? t : undefined;
    });
    await client.stopAsyncTask('jobs', 'yaml_long', new $FC.StopAsyncTaskRequest({}));
    const task = await finished(client, 'jobs', 'yaml_long');
    expect(task.status).toBe('Stopped');
    // The app saw the invocation's signal abort: well before the 10 s grace a deaf app gets.
    expect(task.durationMs).toBeLessThan(8000);
    const record = await waitFor(() =>
      records().find((r) => r.kind === 'dest-fail' && r.record.requestContext.requestId === task.requestId),
    );
    expect(record.record.requestContext.condition).toBe('Stopped');
  });

  it('retries a failing task twice, then sends the failure record to dest-fail', async () => {
    const res = await post(cli, '/jobs', { fail: true }, asyncHeaders('yaml_fail'));
    expect(res.status).toBe(202);
    const requestId = res.headers.get('x-fc-request-id');
    const got = await waitFor(() =>
      records().find((r) => r.kind === 'dest-fail' && r.record.requestContext.requestId === requestId),
    );
    expect(got.record).toMatchObject({
      requestContext: {
        requestId: res.headers.get('x-fc-request-id'),
        condition: 'UnhandledInvocationError',
        approximateInvokeCount: 3,
      },
    });
    expect(
      records().filter(
        (r) => r.kind === 'dest-succ' && r.record.requestContext.requestId === got.record.requestContext.requestId,
      ),
    ).toEqual([]);
  });
});

describe('fc-async dev on a FC 2.0 s.yaml', () => {
  it('serves the fc component function with its FC 2.0 handler', async () => {
    const cli = await startCli(['--config', join('test/fixtures/fc2/s.yaml')]);
    try {
      const res = await fetch(`${cli.trigger}/items?id=1&q=a%20b`, { method: 'POST', body: 'hello' });
      expect(await res.json()).toEqual({ path: '/items', queries: { id: '1', q: 'a b' }, body: 'hello', fn: 'web' });
      expect(cli.lines.some((l) => String(l.message).includes('python: skipped: runtime python3.10'))).toBe(true);
    } finally {
      await cli.stop('SIGKILL');
    }
  });
});

/**
 * Once the CLI has taken `signal` (said so), and 700 ms more: later than the 500 ms within which
 * it counts a second signal as the same Ctrl-C told twice. Counted from the notice, not from the
 * kill: a CLI that takes the first one late (a busy machine) would take both as one.
 */
async function firstSignalTaken(cli: CliRun, signal: NodeJS.Signals): Promise<void> {
  await waitFor(() => (cli.stderr.join('').includes(`${signal}: finishing running tasks`) ? true : undefined));
  await new Promise((resolve) => setTimeout(resolve, 700));
}

describe('shutdown', () => {
  /** The jobs example under the CLI with one async task of `ms` running; `attempt()` reads its attempt line. */
  async function withRunningTask(taskId: string, ms: number) {
    const cli = await startCli([example('jobs/app.ts')]);
    onTestFinished(() => void cli.stop('SIGKILL'));
    const client = sdk(cli.control);
    expect((await post(cli, '/jobs', { ms }, asyncHeaders(taskId))).status).toBe(202);
    await waitFor(async () => {
      const t = (await client.getAsyncTask('app', taskId, new $FC.GetAsyncTaskRequest({}))).body;
      return t?.status === 'Running' ? t : undefined;
    });
    const attempt = () => cli.lines.find((l) => l.kind === 'attempt' && l.taskId === taskId);
    return { cli, attempt };
  }

  it('takes one Ctrl-C told twice at once (the terminal and a wrapper such as npm start) as one', async () => {
    const { cli, attempt } = await withRunningTask('twice_told', 800);
    // The second as soon as the CLI has taken the first (its notice): not after a timer, which a
    // busy machine can fire past the 500 ms that make both one Ctrl-C.
    const tellAgain = () => {
      if (!cli.stderr.join('').includes('SIGINT: finishing running tasks')) return;
      cli.proc.stderr?.off('data', tellAgain);
      cli.proc.kill('SIGINT');
    };
    cli.proc.stderr?.on('data', tellAgain);
    cli.proc.kill('SIGINT');
    expect(await cli.exited).toBe(0);
    expect(attempt()).toMatchObject({ status: 'Succeeded', attempt: 1 });
  });

  it('quits at a second Ctrl-C, saying that the tasks not finished are dropped', async () => {
    const { cli } = await withRunningTask('dropped', 5000);
    cli.proc.kill('SIGINT');
    await firstSignalTaken(cli, 'SIGINT');
    cli.proc.kill('SIGINT');
    expect(await cli.exited).toBe(130);
    expect(cli.stderr.join('')).toContain('SIGINT again: quitting now; tasks not finished are dropped');
  });

  it.each(['SIGINT', 'SIGTERM'] as const)(
    'a second %s names the destination records it drops: finished tasks whose delivery is under way',
    async (signal) => {
      const cli = await startCli([fixture('owed-deliveries.mjs'), '--name', 'owed']);
      onTestFinished(() => void cli.stop('SIGKILL'));
      const client = sdk(cli.control);
      for (const [path, taskId, status] of [
        ['/ok', 't_ok', 'Succeeded'],
        ['/fail', 't_fail', 'Failed'],
      ] as const) {
        expect((await post(cli, path, {}, asyncHeaders(taskId))).status).toBe(202);
        expect((await finished(client, 'owed', taskId)).status).toBe(status);
      }
      cli.proc.kill(signal);
      await firstSignalTaken(cli, signal);
      cli.proc.kill(signal);
      expect(await cli.exited).toBe(130);
      const quit = cli.stderr
        .join('')
        .split('\n')
        .filter((line) => line.includes(`${signal} again`))
        .map((line) => JSON.parse(line).message);
      expect(quit).toEqual([
        `${signal} again: quitting now; tasks not finished are dropped (no Stopped record, no onFailure); 2 destination records not delivered: t_ok (onSuccess), t_fail (onFailure)`,
      ]);
    },
  );

  it('on SIGTERM stops accepting, lets the running task finish, and exits 0', async () => {
    const { cli, attempt } = await withRunningTask('drain_me', 1500);
    cli.proc.kill('SIGTERM');
    // Once the signal is handled, new connections are refused (however long that takes under load).
    await waitFor(() =>
      post(cli, '/jobs', {}, asyncHeaders('too_late')).then(
        () => undefined,
        () => true,
      ),
    );
    expect(await cli.exited).toBe(0);
    expect(attempt()).toMatchObject({ status: 'Succeeded', attempt: 1 });
  });
});

describe('fc-async dev when its terminal closes (SIGHUP)', () => {
  it('stops as on SIGTERM: an async task it accepted runs to its end, and it exits 0', async () => {
    // Node's own default for SIGHUP ends the process at once: the task answered 202 was lost.
    const dir = mkdtempSync(join(tmpdir(), 'fc-async-cli-sighup-'));
    const log = join(dir, 'log');
    const release = join(dir, 'release');
    writeFileSync(log, '');
    const cli = await startCli([fixture('held-task.mjs'), '--shutdown-timeout', '60'], {
      env: { HELD_TASK_LOG: log, HELD_TASK_RELEASE: release },
    });
    onTestFinished(() => void cli.stop('SIGKILL'));
    const accepted = await fetch(`${cli.trigger}/hold`, { method: 'POST', headers: asyncHeaders('held') });
    expect(accepted.status).toBe(202);
    await waitFor(() => (readFileSync(log, 'utf8') === 'started\n' ? true : undefined));
    cli.proc.kill('SIGHUP');
    await waitFor(() =>
      cli.stderr.join('').includes('SIGHUP: finishing running tasks') || cli.proc.signalCode !== null
        ? true
        : undefined,
    );
    expect(cli.proc.signalCode).toBe(null);
    writeFileSync(release, '');
    expect(await cli.exited).toBe(0);
    expect(readFileSync(log, 'utf8')).toBe('started\nfinished\n');
    expect(cli.lines.find((l) => l.kind === 'attempt' && l.taskId === 'held')).toMatchObject({ status: 'Succeeded' });
  });
});

describe('refusing to start', () => {
  const dir = mkdtempSync(join(tmpdir(), 'fc-async-bad-'));
  const write = (name: string, text: string) => {
    writeFileSync(join(dir, name), text);
    return name;
  };

  it.each([
    ['malformed YAML', write('broken.yaml', 'resources:\n  f: [unclosed\n'), /broken\.yaml: invalid YAML/],
    [
      'an out-of-range retry count',
      write(
        'retries.yaml',
        'resources:\n  f:\n    component: fc3\n    props:\n      functionName: f\n      code: ./\n      handler: x.handler\n      asyncInvokeConfig:\n        maxAsyncRetryAttempts: 9\n',
      ),
      /retries\.yaml: resources\.f\.props\.asyncInvokeConfig\.maxAsyncRetryAttempts must be an integer from 0 to 8/,
    ],
    ['a missing file', 'missing.yaml', /missing\.yaml: no such file/],
  ])('exits 1 for %s, naming the file and the problem', async (_label, file, message) => {
    const { code, stderr } = await runCli(['dev', '--config', file], { cwd: dir });
    expect(code).toBe(1);
    expect(stderr).toMatch(message);
    expect(stderr).not.toMatch(/\n\s+at /);
  });

  it.each([
    [
      '--control-host without an access key',
      ['--control-host', '0.0.0.0', example('jobs/app.ts')],
      /FC_ASYNC_ACCESS_KEY_ID/,
    ],
    [
      'an unknown --store',
      ['--store', 'postgres://x', example('jobs/app.ts')],
      /Expected `--store` to be `memory` or `sqlite:PATH`/,
    ],
    ['a --redis URL of another scheme', ['--redis', 'http://x', example('jobs/app.ts')], /--redis/],
    [
      'a --redis port out of range, shown',
      ['--redis', 'redis://h:99999', example('jobs/app.ts')],
      /`--redis` to be a redis:\/\/ or rediss:\/\/ URL with a port from 1 to 65535, got `redis:\/\/h:99999`/,
    ],
    ['an entry that does not exist', ['nope.ts'], /does not exist/],
    ['a port out of range', ['--port', '70000', example('jobs/app.ts')], /--port/],
    ['no entry and no s.yaml', [], /no s\.yaml|s\.yaml/],
  ])('exits 1 for %s', async (_label, args, message) => {
    const { code, stderr } = await runCli(['dev', ...args], { cwd: dir });
    expect(code).toBe(1);
    expect(stderr).toMatch(message);
  });
});
