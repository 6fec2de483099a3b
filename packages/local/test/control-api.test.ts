import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import * as $dara from '@darabonba/typescript';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Emulator, startEmulator } from '../src/index.js';
import { $FC, fixture, sdk, sdkError, waitFor } from './helpers.js';

/** An event function `evt` (throws, sleeps or echoes its payload size), a record sink, and the echo HTTP function. */
const FUNCTIONS = `
export async function evt(event, context) {
  const text = event.toString('utf8');
  let input = {};
  try { input = JSON.parse(text); } catch {}
  if (input.throw) throw new RangeError('evt threw');
  if (input.ms) await new Promise((resolve) => setTimeout(resolve, input.ms));
  return { bytes: text.length, requestId: context.requestId };
}
export const sink = async () => 'ok';
`;

const S_YAML = `resources:
  web:
    component: fc3
    props:
      functionName: web
      code: ${fixture('')}
      handler: echo-handler.handler
      runtime: nodejs20
      triggers:
        - triggerName: http
          triggerType: http
          triggerConfig:
            methods: [GET, POST]
  evt:
    component: fc3
    props:
      functionName: evt
      code: ./code
      handler: fns.evt
      runtime: nodejs20
      timeout: 1
      asyncInvokeConfig:
        maxAsyncRetryAttempts: 1
        maxAsyncEventAgeInSeconds: 600
  sink:
    component: fc3
    props:
      functionName: sink
      code: ./code
      handler: fns.sink
      runtime: nodejs20
`;

const ARN = (name: string) => `acs:fc:cn-hangzhou:0:functions/${name}`;
type Headers = ConstructorParameters<typeof $FC.InvokeFunctionHeaders>[0];

async function text(stream: Readable | undefined): Promise<string> {
  let out = '';
  for await (const chunk of stream ?? []) out += String(chunk);
  return out;
}

describe('the FC API of the control port: InvokeFunction and the async invoke config', () => {
  const root = mkdtempSync(join(tmpdir(), 'fc-async-control-api-'));
  let emulator: Emulator;
  let client: ReturnType<typeof sdk>;
  const api = (path: string, init?: RequestInit) => fetch(`${emulator.controlUrl}/2023-03-30/functions/${path}`, init);
  const invoke = (fn: string, payload: string | Buffer, headers: Headers = {}) =>
    client.invokeFunctionWithOptions(
      fn,
      new $FC.InvokeFunctionRequest({ body: Readable.from([Buffer.from(payload)]) }),
      new $FC.InvokeFunctionHeaders(headers),
      new $dara.RuntimeOptions({}),
    );
  const task = async (fn: string, id: string) =>
    (await client.getAsyncTask(fn, id, new $FC.GetAsyncTaskRequest({}))).body;
  const finished = (fn: string, id: string) =>
    waitFor(async () => {
      const t = await task(fn, id);
      return t?.status === 'Succeeded' || t?.status === 'Failed' ? t : undefined;
    });
  const put = (fn: string, input: ConstructorParameters<typeof $FC.PutAsyncInvokeConfigInput>[0]) =>
    client.putAsyncInvokeConfig(
      fn,
      new $FC.PutAsyncInvokeConfigRequest({ body: new $FC.PutAsyncInvokeConfigInput(input) }),
    );
  const get = (fn: string) => client.getAsyncInvokeConfig(fn, new $FC.GetAsyncInvokeConfigRequest({}));

  beforeAll(async () => {
    mkdirSync(join(root, 'code'));
    writeFileSync(join(root, 'code', 'fns.mjs'), FUNCTIONS);
    writeFileSync(join(root, 's.yaml'), S_YAML);
    emulator = await startEmulator({
      config: join(root, 's.yaml'),
      outDir: join(root, 'out'),
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

  describe('InvokeFunction', () => {
    it("takes FC 2.0's x-fc-stateful-async-invocation-id as the task id: 202, the task runs, reuse is 409", async () => {
      const headers = { commonHeaders: { 'x-fc-stateful-async-invocation-id': 'fc2_task_1' } };
      const accepted = await invoke('evt', '{"n":1}', headers);
      expect(accepted.statusCode).toBe(202);
      expect(accepted.headers?.['x-fc-async-task-id']).toBe('fc2_task_1');
      expect(await finished('evt', 'fc2_task_1')).toMatchObject({ status: 'Succeeded' });
      expect(await sdkError(invoke('evt', '{}', headers))).toMatchObject({
        code: 'AsyncTaskAlreadyExists',
        statusCode: 409,
      });
    });

    it("ignores a client's x-fc-retry-count: the call stays Sync and answers the function's result", async () => {
      const res = await invoke('evt', '{"n":1}', { commonHeaders: { 'x-fc-retry-count': '2' } });
      expect(res.statusCode).toBe(200);
      expect(res.headers?.['x-fc-http-status']).toBe('200');
      expect(JSON.parse(await text(res.body))).toMatchObject({ bytes: 7, requestId: res.headers?.['x-fc-request-id'] });
    });

    it('answers a function that throws with 200, x-fc-error-type and { errorMessage, errorType }, no stack', async () => {
      const res = await invoke('evt', '{"throw":true}');
      expect(res.statusCode).toBe(200);
      expect(res.headers?.['x-fc-error-type']).toBe('UnhandledInvocationError');
      const body = JSON.parse(await text(res.body));
      expect(body).toEqual({ errorMessage: 'evt threw', errorType: 'RangeError' });
    });

    it('answers a function that overruns its timeout with 200 and x-fc-error-type', async () => {
      const res = await invoke('evt', '{"ms":3000}');
      expect(res.statusCode).toBe(200);
      expect(res.headers?.['x-fc-error-type']).toBe('UnhandledInvocationError');
      expect(await text(res.body)).toContain('timeout of 1 s');
    });

    it('holds async payloads to 128 KB: at the limit 202, one byte over 400 EntityTooLarge', async () => {
      const async = { xFcInvocationType: 'Async' };
      expect((await invoke('evt', Buffer.alloc(128 * 1024, 97), async)).statusCode).toBe(202);
      expect(await sdkError(invoke('evt', Buffer.alloc(128 * 1024 + 1, 97), async))).toMatchObject({
        code: 'EntityTooLarge',
        statusCode: 400,
      });
    });

    it("holds an HTTP function's async payload to 128 KB too, an FC event whose own body is smaller included", async () => {
      const async = { xFcInvocationType: 'Async' };
      expect((await invoke('web', Buffer.alloc(128 * 1024, 97), async)).statusCode).toBe(202);
      expect(await sdkError(invoke('web', Buffer.alloc(128 * 1024 + 1, 97), async))).toMatchObject({
        code: 'EntityTooLarge',
        statusCode: 400,
      });
      // 100 KB of body, base64 in its event: the payload FC is sent is past the limit.
      const event = JSON.stringify({
        version: 'v1',
        rawPath: '/',
        body: Buffer.alloc(100 * 1024, 1).toString('base64'),
        isBase64Encoded: true,
        headers: {},
        queryParameters: {},
        requestContext: { http: { method: 'POST', path: '/' } },
      });
      expect(await sdkError(invoke('web', event, async))).toMatchObject({ code: 'EntityTooLarge', statusCode: 400 });
    });

    it.each(['0', '3600', 'soon'])('refuses x-fc-async-delay %s with 400 InvalidArgument', async (delay) => {
      const headers = { xFcInvocationType: 'Async', commonHeaders: { 'x-fc-async-delay': delay } };
      expect(await sdkError(invoke('evt', '{}', headers))).toMatchObject({ code: 'InvalidArgument', statusCode: 400 });
    });

    it('answers an unknown function 404 FunctionNotFound', async () => {
      expect(await sdkError(invoke('nope', '{}'))).toMatchObject({ code: 'FunctionNotFound', statusCode: 404 });
    });
  });

  describe('Put/Get/DeleteAsyncInvokeConfig', () => {
    it.each([
      ['a body that is not JSON', '{"maxAsyncRetryAttempts":', /not valid JSON/],
      ['a JSON null', 'null', /must be a JSON object/],
      ['retries as a string', '{"maxAsyncRetryAttempts":"2"}', /maxAsyncRetryAttempts must be an integer from 0 to 8/],
      ['9 retries', '{"maxAsyncRetryAttempts":9}', /maxAsyncRetryAttempts must be an integer from 0 to 8, got 9/],
      ['a fraction of a retry', '{"maxAsyncRetryAttempts":1.5}', /maxAsyncRetryAttempts/],
      [
        'an age of 0',
        '{"maxAsyncEventAgeInSeconds":0}',
        /maxAsyncEventAgeInSeconds must be an integer from 1 to 604800/,
      ],
      ['an age over 7 days', '{"maxAsyncEventAgeInSeconds":604801}', /maxAsyncEventAgeInSeconds/],
      ['asyncTask as a string', '{"asyncTask":"yes"}', /asyncTask must be true or false/],
      ['destinationConfig as a list', '{"destinationConfig":[]}', /destinationConfig must be a mapping/],
      ['a destination as a bare string', `{"destinationConfig":{"onSuccess":"${ARN('sink')}"}}`, /onSuccess must be/],
      ['an unknown side', '{"destinationConfig":{"onDone":{"destination":"x"}}}', /unknown key onDone/],
      [
        'an ARN of another cloud',
        '{"destinationConfig":{"onFailure":{"destination":"arn:aws:lambda:us-east-1:1:function:f"}}}',
        /onFailure\.destination is not an FC, MNS, EventBridge or RocketMQ ARN/,
      ],
    ])('refuses %s with 400 InvalidArgument and keeps the config in force', async (_label, body, message) => {
      const before = (await get('evt')).body;
      const res = await api('evt/async-invoke-config', { method: 'PUT', body });
      expect(res.status).toBe(400);
      const error = (await res.json()) as { Code: string; Message: string; RequestId: string };
      expect(error).toMatchObject({ Code: 'InvalidArgument', RequestId: res.headers.get('x-fc-request-id') });
      expect(error.Message).toMatch(message);
      expect((await get('evt')).body).toEqual(before);
    });

    it('masks a webhook URL given as a destination: no password, no token in the answer', async () => {
      const hook = 'https://hook-user:HOOKPASSWORD@hooks.example.com/fc?token=APISECRET';
      const body = JSON.stringify({ destinationConfig: { onSuccess: { destination: hook } } });
      const res = await api('evt/async-invoke-config', { method: 'PUT', body });
      const text = await res.text();
      expect([res.status, JSON.parse(text).Message]).toEqual([
        400,
        'destinationConfig onSuccess.destination is not an FC, MNS, EventBridge or RocketMQ ARN: https://***@hooks.example.com/fc?***',
      ]);
      expect(text).not.toMatch(/HOOKPASSWORD|APISECRET|hook-user/);
    });

    it('answers a Put on an unknown function 404 FunctionNotFound', async () => {
      expect(await sdkError(put('nope', { maxAsyncRetryAttempts: 1 }))).toMatchObject({
        code: 'FunctionNotFound',
        statusCode: 404,
      });
    });

    it('applies a Put to a task already retrying: its next failure reads the new retries, its record the new destination', async () => {
      expect((await put('evt', { maxAsyncRetryAttempts: 8, maxAsyncEventAgeInSeconds: 600 })).statusCode).toBe(200);
      expect((await invoke('evt', '{"throw":true}', { xFcAsyncTaskId: 'live_change' })).statusCode).toBe(202);
      await waitFor(async () => ((await task('evt', 'live_change'))?.status === 'Retrying' ? true : undefined));
      await put('evt', { maxAsyncRetryAttempts: 0, destinationConfig: { onFailure: { destination: ARN('sink') } } });
      const done = await finished('evt', 'live_change');
      expect(done).toMatchObject({ status: 'Failed', alreadyRetriedTimes: 1, destinationStatus: 'Succeeded' });
      const records = await client.listAsyncTasks('sink', new $FC.ListAsyncTasksRequest({ includePayload: true }));
      expect(records.body?.tasks?.some((t) => t.taskPayload?.includes('UnhandledInvocationError'))).toBe(true);
    });

    it("records an event function's event itself as its taskPayload and its records' requestPayload, as FC does", async () => {
      await put('evt', { maxAsyncRetryAttempts: 0, destinationConfig: { onSuccess: { destination: ARN('sink') } } });
      expect((await invoke('evt', '{"job":42}', { xFcAsyncTaskId: 'event_payload' })).statusCode).toBe(202);
      await finished('evt', 'event_payload');
      const own = await client.getAsyncTask('evt', 'event_payload', new $FC.GetAsyncTaskRequest({}));
      expect(own.body?.taskPayload).toBe('{"job":42}');
      const records = await client.listAsyncTasks('sink', new $FC.ListAsyncTasksRequest({ includePayload: true }));
      // The sink's own payload is the record (its event), and the record's requestPayload is evt's event:
      // an HTTP envelope around it grew about 4x a hop in a chain.
      const record = records.body?.tasks
        ?.map(
          (t) =>
            JSON.parse(t.taskPayload ?? '{}') as { requestPayload?: string; requestContext?: { requestId?: string } },
        )
        .find((r) => r.requestPayload === '{"job":42}');
      expect(record).toBeDefined();
    });

    it.each([
      ['an empty body (FC requires PutAsyncInvokeConfigInput)', '', /body is required/],
      [
        'a misspelt field',
        '{"maxAsyncRetryAttempt":1}',
        /unknown field maxAsyncRetryAttempt; did you mean maxAsyncRetryAttempts\?/,
      ],
      ["FC 2.0's statefulInvocation", '{"statefulInvocation":true}', /statefulInvocation is FC 2\.0's name.*asyncTask/],
    ])(
      'refuses %s with 400 InvalidArgument instead of putting the defaults in force',
      async (_label, body, message) => {
        await put('evt', { maxAsyncRetryAttempts: 2, asyncTask: true });
        const res = await api('evt/async-invoke-config', { method: 'PUT', body });
        const error = (await res.json()) as { Code: string; Message: string };
        expect([res.status, error.Code]).toEqual([400, 'InvalidArgument']);
        expect(error.Message).toMatch(message);
        // What the SDK reads back is the config in force before the refused call.
        const config = (await get('evt')).body;
        expect([config?.maxAsyncRetryAttempts, config?.asyncTask]).toEqual([2, true]);
      },
    );

    it('refuses an SDK Put without its body 400 InvalidArgument, the config unchanged', async () => {
      await put('evt', { maxAsyncRetryAttempts: 2 });
      const refused = await sdkError(client.putAsyncInvokeConfig('evt', new $FC.PutAsyncInvokeConfigRequest({})));
      expect(refused).toMatchObject({ code: 'InvalidArgument', statusCode: 400 });
      expect(refused.message).toMatch(/body is required/);
      expect((await get('evt')).body?.maxAsyncRetryAttempts).toBe(2);
    });

    it('takes back what GetAsyncInvokeConfig answered (its functionArn and times are ignored)', async () => {
      const read = (await put('evt', { maxAsyncRetryAttempts: 5 })).body?.toMap() ?? {};
      const res = await api('evt/async-invoke-config', {
        method: 'PUT',
        body: JSON.stringify({ ...read, maxAsyncRetryAttempts: 6, createdTime: 'x', functionArn: 'y' }),
      });
      expect(res.status).toBe(200);
      const config = (await get('evt')).body;
      expect([config?.maxAsyncRetryAttempts, config?.createdTime, config?.functionArn]).toEqual([
        6,
        read.createdTime,
        ARN('evt'),
      ]);
    });

    it("replaces the whole config: what a Put leaves out is FC's default, not s.yaml's", async () => {
      const config = (await put('evt', { maxAsyncEventAgeInSeconds: 300 })).body;
      expect(config).toMatchObject({ maxAsyncEventAgeInSeconds: 300, maxAsyncRetryAttempts: 3, destinationConfig: {} });
    });

    it('ListAsyncInvokeConfigs pages by its own nextToken and refuses any other 400 InvalidArgument', async () => {
      await put('sink', { maxAsyncRetryAttempts: 2 });
      const list = (query: string) => fetch(`${emulator.controlUrl}/2023-03-30/async-invoke-configs?${query}`);
      const first = (await (await list('limit=1')).json()) as {
        configs: { functionArn: string }[];
        nextToken?: string;
      };
      expect(first.configs.map((c) => c.functionArn)).toEqual([ARN('evt')]);
      const rest = (await (await list(`limit=1&nextToken=${first.nextToken}`)).json()) as {
        configs: { functionArn: string }[];
      };
      expect(rest.configs.map((c) => c.functionArn)).toEqual([ARN('sink')]);
      // Made up, or ListAsyncTasks' own: once read as a function name to list after (an empty or shifted page).
      for (const token of ['zzz', 'aaa', 'cfg.', 'cfg.%2B%2B', 'eyJ0IjoxfQ']) {
        const refused = await list(`nextToken=${token}`);
        expect([refused.status, ((await refused.json()) as { Code: string }).Code]).toEqual([400, 'InvalidArgument']);
      }
    });

    it('Delete answers 204, then Get and a second Delete 404 AsyncConfigNotExists', async () => {
      const del = () => client.deleteAsyncInvokeConfig('evt', new $FC.DeleteAsyncInvokeConfigRequest({}));
      expect((await del()).statusCode).toBe(204);
      expect(await sdkError(get('evt'))).toMatchObject({ code: 'AsyncConfigNotExists', statusCode: 404 });
      expect(await sdkError(del())).toMatchObject({ code: 'AsyncConfigNotExists', statusCode: 404 });
    });
  });
});

describe('the log line of an async call made with FC 2.0 headers', () => {
  it("says Async for a trigger call with x-fc-stateful-async-invocation-id (FC 2.0's task id)", async () => {
    let out = '';
    const emulator = await startEmulator({
      entry: fixture('echo-handler.mjs'),
      name: 'echo',
      port: 0,
      controlPort: 0,
      logFormat: 'json',
      output: (chunk) => {
        out += chunk;
      },
    });
    try {
      const res = await fetch(`${emulator.triggerUrl}/job`, {
        method: 'POST',
        body: '{}',
        headers: { 'x-fc-stateful-async-invocation-id': 'fc2_trigger_1' },
      });
      expect(res.status).toBe(202);
      const line = await waitFor(() =>
        out
          .split('\n')
          .filter(Boolean)
          .map((l) => JSON.parse(l) as Record<string, unknown>)
          .find((l) => l.kind === 'invocation' && l.taskId === 'fc2_trigger_1'),
      );
      expect(line).toMatchObject({ type: 'Async', status: 202, via: 'http' });
    } finally {
      await emulator.close({ timeoutMs: 1000 });
    }
  });
});
