import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Emulator, startEmulator } from '../src/index.js';
import { $FC, fixture, sdk, sdkError, startFc2Web, waitFor } from './helpers.js';

/**
 * Function Compute's documented behaviour for async calls (invocation, retries and destination
 * records, async tasks), held against the emulator through its HTTP trigger and the official SDK: what a caller of FC relies on when it fires async calls, watches
 * and stops tasks, and reads destination records.
 */

/**
 * A plain FC 3.0 HTTP handler: `/fail` throws, `/status500` returns a 500, `/sleep?ms=` waits, `/flaky` fails its first attempt
 * then answers the retry count it was given, anything else answers `{ ok, path }`.
 */
const HANDLER = `
export async function handler(event, context) {
  const e = JSON.parse(event.toString('utf8'));
  const q = e.queryParameters ?? {};
  if (e.rawPath.endsWith('/fail')) throw new RangeError('it failed');
  if (e.rawPath.endsWith('/flaky')) {
    const header = e.headers['X-Fc-Retry-Count'];
    if (header === '0') throw new Error('the first attempt fails');
    return { statusCode: 200, headers: { 'content-type': 'application/json' }, body: JSON.stringify({ header, retryCount: context.retryCount ?? null }) };
  }
  if (e.rawPath.endsWith('/status500')) return { statusCode: 500, body: 'an answer, not an error' };
  if (e.rawPath.endsWith('/sleep')) await new Promise((resolve) => setTimeout(resolve, Number(q.ms)));
  return { statusCode: 200, headers: { 'content-type': 'application/json' }, body: JSON.stringify({ ok: true, path: e.rawPath }) };
}
`;

const MNS = (queue: string) => `acs:mns:cn-hangzhou:0:/queues/${queue}/messages`;

/** `web`: 1 retry, both destinations. `aged`: no retry, 1 s timeout, 1 s event age, onFailure only. */
const S_YAML = `resources:
  web:
    component: fc3
    props:
      functionName: web
      code: ./code
      handler: fns.handler
      runtime: nodejs20
      timeout: 3
      triggers:
        - triggerName: http
          triggerType: http
          triggerConfig:
            methods: [GET, POST, PUT]
      asyncInvokeConfig:
        maxAsyncRetryAttempts: 1
        destinationConfig:
          onSuccess:
            destination: ${MNS('succ')}
          onFailure:
            destination: ${MNS('fail')}
  aged:
    component: fc3
    props:
      functionName: aged
      code: ./code
      handler: fns.handler
      runtime: nodejs20
      timeout: 1
      triggers:
        - triggerName: http
          triggerType: http
      asyncInvokeConfig:
        maxAsyncRetryAttempts: 0
        maxAsyncEventAgeInSeconds: 1
        destinationConfig:
          onFailure:
            destination: ${MNS('aged-fail')}
`;

interface Record_ {
  timestamp: number;
  requestContext: { requestId: string; functionArn: string; condition: string; approximateInvokeCount: number };
  requestPayload: string;
  responseContext: { statusCode: number; functionError: string };
  responsePayload: string;
}

const TERMINAL = new Set(['Succeeded', 'Failed', 'Stopped', 'Expired', 'Invalid']);

describe('FC contract: async calls, tasks and destination records on the emulator', () => {
  const root = mkdtempSync(join(tmpdir(), 'fc-async-contract-'));
  const outDir = join(root, 'out');
  let emulator: Emulator;
  let client: ReturnType<typeof sdk>;

  /** Fires an async call at `/<fn><path>` on the trigger. */
  const fire = (fn: string, path: string, headers: Record<string, string> = {}, body?: string) =>
    fetch(`${emulator.triggerUrl}/${fn}${path}`, {
      method: body === undefined ? 'GET' : 'POST',
      headers: { 'x-fc-invocation-type': 'Async', ...headers },
      body,
    });
  const task = async (fn: string, id: string) =>
    (await client.getAsyncTask(fn, id, new $FC.GetAsyncTaskRequest({}))).body as $FC.AsyncTask;
  const inStatus = (fn: string, id: string, statuses: string[]) =>
    waitFor(async () => {
      const t = await task(fn, id);
      return statuses.includes(t.status ?? '') ? t : undefined;
    });
  const ended = (fn: string, id: string) =>
    waitFor(async () => {
      const t = await task(fn, id);
      // A record with a destination is complete once its delivery is recorded.
      return TERMINAL.has(t.status ?? '') && t.destinationStatus !== undefined ? t : undefined;
    });
  /** The destination record of `requestId` appended to `<out>/<fn>.<side>.jsonl`. */
  const record = (fn: string, side: 'onSuccess' | 'onFailure', requestId: string) =>
    waitFor(() => {
      const file = join(outDir, `${fn}.${side}.jsonl`);
      if (!existsSync(file)) return undefined;
      return readFileSync(file, 'utf8')
        .split('\n')
        .filter(Boolean)
        .map((line) => JSON.parse(line) as Record_)
        .find((r) => r.requestContext.requestId === requestId);
    });
  const list = (fn: string, query: ConstructorParameters<typeof $FC.ListAsyncTasksRequest>[0]) =>
    client.listAsyncTasks(fn, new $FC.ListAsyncTasksRequest(query)).then((r) => r.body as $FC.ListAsyncTaskOutput);
  const stop = (fn: string, id: string) => client.stopAsyncTask(fn, id, new $FC.StopAsyncTaskRequest({}));

  beforeAll(async () => {
    mkdirSync(join(root, 'code'));
    writeFileSync(join(root, 'code', 'fns.mjs'), HANDLER);
    writeFileSync(join(root, 's.yaml'), S_YAML);
    emulator = await startEmulator({
      config: join(root, 's.yaml'),
      outDir,
      port: 0,
      controlPort: 0,
      retryBaseMs: 1000,
      output: () => {},
    });
    client = sdk(emulator.controlUrl);
  });
  afterAll(async () => {
    await emulator?.close({ timeoutMs: 1000 });
    rmSync(root, { recursive: true, force: true });
  });

  describe('section 1: calling an HTTP trigger asynchronously', () => {
    it('answers 202 with an FC 3.0 request id, the task id (the request id when none was given) and an empty body', async () => {
      const res = await fire('web', '/ok');
      expect(res.status).toBe(202);
      const requestId = res.headers.get('x-fc-request-id') ?? '';
      expect(requestId).toMatch(/^1-[0-9a-f]{8}-[0-9a-f]{24}$/);
      expect(res.headers.get('x-fc-async-task-id')).toBe(requestId);
      expect(await res.text()).toBe('');
      expect((await ended('web', requestId)).status).toBe('Succeeded');
    });

    it('takes a caller task id of exactly 128 characters and refuses one of 129 with 400 InvalidArgument', async () => {
      const id = `_${'a'.repeat(127)}`;
      const res = await fire('web', '/ok', { 'x-fc-async-task-id': id });
      expect(res.status).toBe(202);
      expect(res.headers.get('x-fc-async-task-id')).toBe(id);
      const over = await fire('web', '/ok', { 'x-fc-async-task-id': `${id}a` });
      expect(over.status).toBe(400);
      expect(await over.json()).toMatchObject({ code: 'InvalidArgument' });
      await ended('web', id);
    });

    it('takes X-Fc-Async-Delay from 1 to 3599 seconds and refuses 0 and 3600', async () => {
      for (const delay of ['0', '3600']) {
        const res = await fire('web', '/ok', { 'x-fc-async-delay': delay });
        expect(res.status).toBe(400);
        expect(await res.json()).toMatchObject({ code: 'InvalidArgument' });
      }
      for (const delay of ['1', '3599']) {
        const res = await fire('web', '/ok', { 'x-fc-async-delay': delay, 'x-fc-async-task-id': `delay_${delay}` });
        expect(res.status).toBe(202);
      }
      // Not run yet: FC holds it back; then stopped, so that nothing waits an hour.
      expect((await task('web', 'delay_3599')).status).toBe('Enqueued');
      await stop('web', 'delay_3599');
      expect((await ended('web', 'delay_1')).status).toBe('Succeeded');
    });

    it('refuses an async body over 128 KB with 400 InvalidArgument on the HTTP trigger (EntityTooLarge is the API code)', async () => {
      const res = await fire('web', '/ok', { 'content-type': 'text/plain' }, 'x'.repeat(128 * 1024 + 1));
      expect(res.status).toBe(400);
      expect(await res.json()).toMatchObject({ code: 'InvalidArgument' });
    });
  });

  describe('section 7: an AsyncTask through GetAsyncTask', () => {
    it('has every SDK field, epoch-ms times, numbered events and the payloads as strings', async () => {
      const res = await fire(
        'web',
        '/ok?x=1',
        { 'x-fc-async-task-id': 'shape_1', 'content-type': 'application/json', authorization: 'Bearer secret-token' },
        '{"a":1}',
      );
      expect(res.status).toBe(202);
      const t = await ended('web', 'shape_1');
      expect(t).toMatchObject({
        taskId: 'shape_1',
        requestId: res.headers.get('x-fc-request-id'),
        status: 'Succeeded',
        functionArn: expect.stringMatching(/^acs:fc:[a-z0-9-]+:\d+:functions\/web$/),
        qualifier: 'LATEST',
        alreadyRetriedTimes: 0,
        destinationStatus: 'Succeeded',
        returnPayload: JSON.stringify({ ok: true, path: '/ok' }),
      });
      expect(t.instanceId).toEqual(expect.any(String));
      expect(t.startedTime).toBeGreaterThan(1_600_000_000_000);
      expect(t.endTime).toBeGreaterThanOrEqual(t.startedTime as number);
      expect(t.durationMs).toBe((t.endTime as number) - (t.startedTime as number));
      expect(t.events?.map((e) => e.status)).toEqual(['Enqueued', 'Dequeued', 'Running', 'Succeeded']);
      expect(t.events?.map((e) => e.eventId)).toEqual([1, 2, 3, 4]);
      for (const e of t.events ?? []) {
        expect(e.timestamp).toBeGreaterThanOrEqual(t.startedTime as number);
        expect(typeof e.eventDetail).toBe('string');
      }
      expect(typeof t.taskPayload).toBe('string');
      expect(t.taskPayload).toContain('{\\"a\\":1}');
      expect(t.taskPayload).not.toContain('secret-token');
    });

    it('answers an unknown task 404 AsyncTaskNotFound as { Code, Message, RequestId }', async () => {
      expect(await sdkError(task('web', 'never_seen'))).toMatchObject({ code: 'AsyncTaskNotFound', statusCode: 404 });
    });
  });

  describe('section 6: retries and destination records', () => {
    it('a success record: condition "", one invocation, status 200, the response body as a string', async () => {
      const res = await fire('web', '/ok', { 'x-fc-async-task-id': 'rec_ok', authorization: 'Bearer secret-token' });
      const requestId = res.headers.get('x-fc-request-id') as string;
      const r = await record('web', 'onSuccess', requestId);
      expect(r.timestamp).toBeGreaterThan(1_600_000_000_000);
      expect(Number.isInteger(r.timestamp)).toBe(true);
      expect(r.requestContext).toEqual({
        requestId,
        functionArn: (await task('web', 'rec_ok')).functionArn,
        condition: '',
        approximateInvokeCount: 1,
      });
      expect(r.responseContext).toEqual({ statusCode: 200, functionError: '' });
      expect(r.responsePayload).toBe(JSON.stringify({ ok: true, path: '/ok' }));
      expect(typeof r.requestPayload).toBe('string');
      expect(r.requestPayload).not.toContain('secret-token');
    });

    it('a function error is retried maxAsyncRetryAttempts times, then an UnhandledInvocationError record', async () => {
      const res = await fire('web', '/fail', { 'x-fc-async-task-id': 'rec_fail' });
      const requestId = res.headers.get('x-fc-request-id') as string;
      const t = await ended('web', 'rec_fail');
      expect(t).toMatchObject({ status: 'Failed', alreadyRetriedTimes: 1, destinationStatus: 'Succeeded' });
      // The handler's own error, as FC reports it, not the 502 the runtime answered with.
      expect(t.taskErrorMessage).toBe('it failed');
      expect(t.events?.map((e) => e.status)).toEqual([
        'Enqueued',
        'Dequeued',
        'Running',
        'Retrying',
        'Dequeued',
        'Running',
        'Failed',
      ]);
      const r = await record('web', 'onFailure', requestId);
      expect(r.requestContext).toMatchObject({ condition: 'UnhandledInvocationError', approximateInvokeCount: 2 });
      expect(r.responseContext.functionError).toBe('UnhandledInvocationError');
      expect(r.responseContext.statusCode).toBeGreaterThanOrEqual(500);
      expect(JSON.parse(r.responsePayload)).toEqual({ errorMessage: 'it failed', errorType: 'RangeError' });
    });

    it('a 500 a plain handler returns is its answer, not a function error: not retried, onSuccess', async () => {
      const res = await fire('web', '/status500', { 'x-fc-async-task-id': 'returned_500' });
      const t = await ended('web', 'returned_500');
      expect(t).toMatchObject({ status: 'Succeeded', alreadyRetriedTimes: 0 });
      const r = await record('web', 'onSuccess', res.headers.get('x-fc-request-id') as string);
      expect(r.requestContext).toMatchObject({ condition: '', approximateInvokeCount: 1 });
    });

    it('tells each attempt its retry count in x-fc-retry-count: 0, then 1 on the retry', async () => {
      await fire('web', '/flaky', { 'x-fc-async-task-id': 'retry_header' });
      const t = await ended('web', 'retry_header');
      expect(t).toMatchObject({ status: 'Succeeded', alreadyRetriedTimes: 1 });
      expect(JSON.parse(t.returnPayload as string)).toMatchObject({ header: '1' });
    });

    it("gives a plain handler's retry its count as context.retryCount too, as the official runtimes do", async () => {
      await fire('web', '/flaky', { 'x-fc-async-task-id': 'retry_context' });
      const t = await ended('web', 'retry_context');
      expect(JSON.parse(t.returnPayload as string)).toEqual({ header: '1', retryCount: 1 });
    });

    it('an attempt past the function timeout fails with InvocationError', async () => {
      const res = await fire('aged', '/sleep?ms=3000', { 'x-fc-async-task-id': 'rec_timeout' });
      const requestId = res.headers.get('x-fc-request-id') as string;
      expect((await ended('aged', 'rec_timeout')).status).toBe('Failed');
      const r = await record('aged', 'onFailure', requestId);
      expect(r.requestContext).toMatchObject({ condition: 'InvocationError', approximateInvokeCount: 1 });
      expect(r.responseContext.functionError).toBe('InvocationError');
    });

    it('an event older than maxAsyncEventAgeInSeconds is dropped: Expired, never run, an EventAgeExceeded record', async () => {
      const res = await fire('aged', '/ok', { 'x-fc-async-task-id': 'rec_expired', 'x-fc-async-delay': '2' });
      const requestId = res.headers.get('x-fc-request-id') as string;
      const t = await ended('aged', 'rec_expired');
      expect(t.status).toBe('Expired');
      expect(t.events?.map((e) => e.status)).toEqual(['Enqueued', 'Expired']);
      expect(t.returnPayload).toBeUndefined();
      const r = await record('aged', 'onFailure', requestId);
      expect(r.requestContext).toMatchObject({ condition: 'EventAgeExceeded', approximateInvokeCount: 0 });
    });
  });

  describe('section 7: StopAsyncTask on each status', () => {
    it('Enqueued (delayed): answers {} and the task is Stopped without running, with a Stopped record', async () => {
      const res = await fire('web', '/ok', { 'x-fc-async-task-id': 'stop_enqueued', 'x-fc-async-delay': '600' });
      const requestId = res.headers.get('x-fc-request-id') as string;
      const answer = await stop('web', 'stop_enqueued');
      expect(answer.statusCode).toBe(200);
      const t = await ended('web', 'stop_enqueued');
      expect(t.status).toBe('Stopped');
      expect(t.events?.map((e) => e.status)).toEqual(['Enqueued', 'Stopped']);
      const r = await record('web', 'onFailure', requestId);
      expect(r.requestContext).toMatchObject({ condition: 'Stopped', approximateInvokeCount: 0 });
    });

    it('Retrying: the retry never runs and the task is Stopped', async () => {
      await fire('web', '/fail', { 'x-fc-async-task-id': 'stop_retrying' });
      await inStatus('web', 'stop_retrying', ['Retrying']);
      expect((await stop('web', 'stop_retrying')).statusCode).toBe(200);
      const t = await ended('web', 'stop_retrying');
      expect(t.status).toBe('Stopped');
      expect(t.events?.map((e) => e.status)).toEqual(['Enqueued', 'Dequeued', 'Running', 'Retrying', 'Stopped']);
    });

    it('Running: Stopping at once, a second stop is accepted too, then Stopped', async () => {
      const res = await fire('web', '/sleep?ms=1500', { 'x-fc-async-task-id': 'stop_running' });
      await inStatus('web', 'stop_running', ['Running']);
      expect((await stop('web', 'stop_running')).statusCode).toBe(200);
      expect((await task('web', 'stop_running')).status).toBe('Stopping');
      expect((await stop('web', 'stop_running')).statusCode).toBe(200);
      const t = await ended('web', 'stop_running');
      expect(t.status).toBe('Stopped');
      expect(t.events?.map((e) => e.status)).toEqual(['Enqueued', 'Dequeued', 'Running', 'Stopping', 'Stopped']);
      const r = await record('web', 'onFailure', res.headers.get('x-fc-request-id') as string);
      expect(r.requestContext).toMatchObject({ condition: 'Stopped', approximateInvokeCount: 1 });
      expect(r.responseContext.functionError).toBe('Stopped');
    });

    it('a finished task: 400 InvalidArgument (ours), and the task is unchanged; an unknown one: 404', async () => {
      await fire('web', '/ok', { 'x-fc-async-task-id': 'stop_finished' });
      const before = await ended('web', 'stop_finished');
      expect(await sdkError(stop('web', 'stop_finished'))).toMatchObject({ code: 'InvalidArgument', statusCode: 400 });
      expect(await task('web', 'stop_finished')).toEqual(before);
      expect(await sdkError(stop('web', 'no_such_task'))).toMatchObject({ code: 'AsyncTaskNotFound', statusCode: 404 });
    });
  });

  describe('section 7: ListAsyncTasks', () => {
    const ids = ['page_a', 'page_b', 'page_c', 'page_d', 'page_e'];
    beforeAll(async () => {
      // One at a time, so that each has its own startedTime.
      for (const id of ids) {
        await fire('web', '/ok', { 'x-fc-async-task-id': id });
        await new Promise((resolve) => setTimeout(resolve, 5));
      }
      for (const id of ids) await ended('web', id);
    });

    it('pages with limit and nextToken, in startedTime order both ways, the last page without a token', async () => {
      for (const [order, expected] of [
        ['asc', ids],
        ['desc', [...ids].reverse()],
      ] as const) {
        const seen: string[] = [];
        let nextToken: string | undefined;
        let pages = 0;
        do {
          const page = await list('web', { prefix: 'page_', limit: 2, sortOrderByTime: order, nextToken });
          expect(page.tasks?.length).toBeLessThanOrEqual(2);
          seen.push(...(page.tasks ?? []).map((t) => t.taskId as string));
          nextToken = page.nextToken || undefined;
          pages++;
        } while (nextToken && pages < 10);
        expect(seen).toEqual(expected);
        expect(pages).toBe(3);
      }
    });

    it('gives 20 tasks by default and taskPayload only with includePayload', async () => {
      for (let i = 0; i < 18; i++) await fire('web', '/ok', { 'x-fc-async-task-id': `many_${i}` });
      const page = await list('web', {});
      expect(page.tasks).toHaveLength(20);
      expect(page.nextToken).toEqual(expect.any(String));
      expect(page.tasks?.every((t) => t.taskPayload === undefined)).toBe(true);
      const withPayload = await list('web', { prefix: 'page_', includePayload: true });
      expect(withPayload.tasks?.every((t) => typeof t.taskPayload === 'string')).toBe(true);
    });

    it("refuses one function's nextToken on another function's listing", async () => {
      for (const id of ['token_1', 'token_2']) await fire('web', '/ok', { 'x-fc-async-task-id': id });
      const page = await list('web', { prefix: 'token_', limit: 1 });
      expect(page.nextToken).toEqual(expect.any(String));
      const error = await sdkError(list('aged', { prefix: 'token_', limit: 1, nextToken: page.nextToken as string }));
      expect(error).toMatchObject({ statusCode: 400, code: 'InvalidArgument' });
      expect(error.message).toContain("nextToken belongs to another function's listing");
      // A token no listing made says so, rather than blame another listing.
      const garbage = await sdkError(list('web', { nextToken: 'garbage' }));
      expect(garbage.message).toContain('nextToken is not a token this service issued');
      // Its own listing takes it.
      const next = await list('web', { prefix: 'token_', limit: 1, nextToken: page.nextToken as string });
      expect(next.tasks).toHaveLength(1);
    });

    it('filters by status and by startedTime range (inclusive)', async () => {
      const all = await list('web', { prefix: 'page_', sortOrderByTime: 'asc' });
      const times = (all.tasks ?? []).map((t) => t.startedTime as number);
      const middle = await list('web', {
        prefix: 'page_',
        sortOrderByTime: 'asc',
        startedTimeBegin: times[1],
        startedTimeEnd: times[3],
      });
      expect(middle.tasks?.map((t) => t.taskId)).toEqual(['page_b', 'page_c', 'page_d']);
      // Its own tasks, one of each outcome: the filter must return the failed one, not only exclude others.
      await fire('web', '/fail', { 'x-fc-async-task-id': 'filter_fail' });
      await fire('web', '/ok', { 'x-fc-async-task-id': 'filter_ok' });
      await ended('web', 'filter_fail');
      await ended('web', 'filter_ok');
      const failed = await list('web', { status: 'Failed', prefix: 'filter_' });
      expect(failed.tasks?.map((t) => t.taskId)).toEqual(['filter_fail']);
      const succeeded = await list('web', { status: 'Succeeded', prefix: 'filter_' });
      expect(succeeded.tasks?.map((t) => t.taskId)).toEqual(['filter_ok']);
    });

    it.each([
      ['limit 0', { limit: 0 }],
      ['limit 101', { limit: 101 }],
      ['an unknown status', { status: 'Done' }],
      ['a sort order other than asc or desc', { sortOrderByTime: 'newest' }],
      ['a nextToken it never issued', { nextToken: 'bm90LWEtdG9rZW4' }],
    ])('answers %s 400 InvalidArgument', async (_label, query) => {
      expect(await sdkError(list('web', query))).toMatchObject({ code: 'InvalidArgument', statusCode: 400 });
    });
  });
});

describe('FC contract section 4: an FC 2.0 HTTP handler', () => {
  const outDir = mkdtempSync(join(tmpdir(), 'fc-async-contract-fc2-'));
  let emulator: Emulator;
  beforeAll(async () => {
    emulator = await startEmulator({
      config: fixture('fc2/s.yaml'),
      port: 0,
      controlPort: 0,
      outDir,
      output: () => {},
    });
  });
  afterAll(async () => {
    await emulator?.close({ timeoutMs: 1000 });
    rmSync(outDir, { recursive: true, force: true });
  });

  it('sees a repeated query parameter in req.queries as an array of its values', async () => {
    const res = await fetch(`${emulator.triggerUrl}/items?tag=a&tag=b%2Cc&one=1`);
    expect(res.status).toBe(200);
    expect(((await res.json()) as { queries: unknown }).queries).toEqual({ tag: ['a', 'b,c'], one: '1' });
  });

  it("keeps query names that are Object's own in req.queries (`__proto__` was dropped)", async () => {
    const res = await fetch(`${emulator.triggerUrl}/items?__proto__=p&constructor=c`);
    const { queries } = JSON.parse(await res.text()) as { queries: object };
    expect(Object.entries(queries)).toEqual([
      ['__proto__', 'p'],
      ['constructor', 'c'],
    ]);
  });

  it('serves a path that is not valid percent-encoding, as sent in req.path, instead of failing the function', async () => {
    const res = await fetch(`${emulator.triggerUrl}/files/100%ZZ/a%20b`);
    expect(res.status).toBe(200);
    expect(res.headers.get('x-fc-error-type')).toBeNull();
    expect(((await res.json()) as { path: unknown }).path).toBe('/files/100%ZZ/a%20b');
  });
});

describe('FC contract section 4: resp.send of an FC 2.0 HTTP handler', () => {
  let web: Awaited<ReturnType<typeof startFc2Web>>;
  let emulator: Emulator;
  beforeAll(async () => {
    web = await startFc2Web(`exports.handler = (req, resp) => {
  if (req.path === '/object') return resp.send({ ok: true });
  if (req.path === '/number') return resp.send(42);
  resp.setHeader('content-type', 'text/plain');
  resp.send(req.path === '/bytes' ? new Uint8Array([104, 105]) : 'text');
};
`);
    emulator = web.emulator;
  });
  afterAll(() => web?.close());

  it('sends a string and bytes as they are', async () => {
    expect(await (await fetch(`${emulator.triggerUrl}/text`)).text()).toBe('text');
    expect(await (await fetch(`${emulator.triggerUrl}/bytes`)).text()).toBe('hi');
  });

  it.each([
    ['/object', 'an object'],
    ['/number', 'a number'],
  ])("answers resp.send of what is not a Buffer, string or stream (%s) as the function's error", async (path, got) => {
    const res = await fetch(`${emulator.triggerUrl}${path}`);
    expect(res.status).toBe(502);
    expect(res.headers.get('x-fc-error-type')).toBe('UnhandledInvocationError');
    expect(await res.json()).toEqual({
      errorType: 'TypeError',
      errorMessage: `resp.send expects a Buffer, a string or a Readable stream, got ${got}`,
    });
  });
});
