import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Emulator, signAcsRequest } from '../src/index.js';
import { startEcho, waitFor } from './helpers.js';

// Found by mutation testing (session 18): query readings of ListAsyncTasks no other test pinned.

const tasksPath = '/2023-03-30/functions/echo/async-tasks';

describe('FC API query parameters: what a hand-written URL may send', () => {
  let emulator: Emulator;

  /** The task ids of a listing at `query`, or the error the control plane answered. */
  async function list(query: string): Promise<{ status: number; ids?: string[]; code?: string }> {
    const res = await fetch(`${emulator.controlUrl}${tasksPath}?${query}`);
    const body = (await res.json()) as { tasks?: { taskId: string }[]; Code?: string };
    return res.status === 200
      ? { status: 200, ids: body.tasks?.map((t) => t.taskId) }
      : { status: res.status, code: body.Code };
  }

  beforeAll(async () => {
    emulator = await startEcho();
    // Started one after the other, so that ascending and descending orders differ.
    for (const id of ['m18_a', 'm18_b', 'm18_c']) {
      const res = await fetch(`${emulator.triggerUrl}/job`, {
        method: 'POST',
        headers: { 'x-fc-invocation-type': 'Async', 'x-fc-async-task-id': id },
        body: '{}',
      });
      expect(res.status).toBe(202);
      await waitFor(async () => ((await list(`prefix=${id}&status=Succeeded`)).ids?.length === 1 ? true : undefined));
    }
  });
  afterAll(() => emulator.close());

  it('reads sortOrderByTime in any case: ASC lists oldest first, DESC newest first', async () => {
    expect(await list('prefix=m18_&sortOrderByTime=ASC')).toEqual({ status: 200, ids: ['m18_a', 'm18_b', 'm18_c'] });
    expect(await list('prefix=m18_&sortOrderByTime=Desc')).toEqual({ status: 200, ids: ['m18_c', 'm18_b', 'm18_a'] });
  });

  it('reads an empty status as no status filter, as an empty form field means', async () => {
    expect(await list('prefix=m18_&status=&sortOrderByTime=asc')).toEqual({
      status: 200,
      ids: ['m18_a', 'm18_b', 'm18_c'],
    });
  });

  it.each([
    ['a limit in exponent notation', `${tasksPath}?limit=1e1`],
    ['a start time in exponent notation', `${tasksPath}?startedTimeBegin=1e3`],
    ["ListAsyncInvokeConfigs' limit with trailing letters", '/2023-03-30/async-invoke-configs?limit=2x'],
  ])('refuses %s 400 InvalidArgument, not a number read from its digits', async (_label, path) => {
    const res = await fetch(`${emulator.controlUrl}${path}`);
    expect(res.status).toBe(400);
    expect(((await res.json()) as { Code: string }).Code).toBe('InvalidArgument');
  });
});

describe('async invoke configs through the API', () => {
  let emulator: Emulator;
  beforeAll(async () => {
    emulator = await startEcho();
  });
  afterAll(() => emulator.close());

  const configUrl = () => `${emulator.controlUrl}/2023-03-30/functions/echo/async-invoke-config`;
  const put = async (body: object) => {
    const res = await fetch(configUrl(), { method: 'PUT', body: JSON.stringify(body) });
    expect(res.status).toBe(200);
    return (await res.json()) as { createdTime: string; lastModifiedTime: string; maxAsyncRetryAttempts: number };
  };

  it('keeps createdTime of the first Put; a later Put moves lastModifiedTime only', async () => {
    const first = await put({ maxAsyncRetryAttempts: 1 });
    // Until the clock shows another millisecond, so that a new createdTime would differ.
    await waitFor(() => (new Date().toISOString() > first.createdTime ? true : undefined));
    const second = await put({ maxAsyncRetryAttempts: 2 });
    expect(second.maxAsyncRetryAttempts).toBe(2);
    expect(second.createdTime).toBe(first.createdTime);
    expect(second.lastModifiedTime > first.createdTime).toBe(true);
    await fetch(configUrl(), { method: 'DELETE' });
  });

  it('gives ListAsyncInvokeConfigs no nextToken when the page holds the last config', async () => {
    await put({ maxAsyncRetryAttempts: 1 });
    const res = await fetch(`${emulator.controlUrl}/2023-03-30/async-invoke-configs?limit=1`);
    const page = (await res.json()) as { configs: { functionArn: string }[]; nextToken?: string };
    expect(page.configs).toHaveLength(1);
    expect(page.nextToken).toBeUndefined();
    await fetch(configUrl(), { method: 'DELETE' });
  });
});

describe('InvokeFunction with an HTTP event', () => {
  let emulator: Emulator;
  beforeAll(async () => {
    emulator = await startEcho();
  });
  afterAll(() => emulator.close());

  it('runs a call whose event carries x-fc-retry-count sync: the header is not the caller asking for Async', async () => {
    const event = {
      version: 'v1',
      rawPath: '/retried',
      headers: { 'x-fc-retry-count': '2' },
      queryParameters: {},
      body: '',
      isBase64Encoded: false,
      requestContext: { http: { method: 'GET', path: '/retried' } },
    };
    const res = await fetch(`${emulator.controlUrl}/2023-03-30/functions/echo/invocations`, {
      method: 'POST',
      body: JSON.stringify(event),
    });
    expect(res.status).toBe(200);
    expect(res.headers.get('x-fc-http-status')).toBe('200');
    expect(res.headers.get('x-fc-async-task-id')).toBeNull();
    expect(((await res.json()) as { event: { rawPath: string } }).event.rawPath).toBe('/retried');
  });
});

describe('a signed API call with a key set', () => {
  const key = { accessKeyId: 'm18-key', accessKeySecret: 'm18-secret' };
  let emulator: Emulator;
  beforeAll(async () => {
    emulator = await startEcho({ credentials: key });
  });
  afterAll(() => emulator.close());

  const path = '/2023-03-30/functions/echo/async-invoke-config';
  /** A PUT of `sent` signed over `signed`. */
  function put(signed: string, sent: string): Promise<Response> {
    const host = new URL(emulator.controlUrl).host;
    const signedHeaders = { host, 'content-type': 'application/json' };
    const request = { method: 'PUT', path, query: '', headers: signedHeaders, body: Buffer.from(signed) };
    const headers = { ...signedHeaders, ...signAcsRequest(request, key) };
    return fetch(`${emulator.controlUrl}${path}`, { method: 'PUT', headers, body: sent });
  }

  it('is refused 403 SignatureNotMatch when its body is not the one signed, and changes nothing', async () => {
    const tampered = await put('{"maxAsyncRetryAttempts":1}', '{"maxAsyncRetryAttempts":0}');
    expect(tampered.status).toBe(403);
    expect(((await tampered.json()) as { Code: string }).Code).toBe('SignatureNotMatch');
    expect((await fetch(`${emulator.controlUrl}${path}`)).status).toBe(404);
    // The same call with the body it signed is served.
    expect((await put('{"maxAsyncRetryAttempts":1}', '{"maxAsyncRetryAttempts":1}')).status).toBe(200);
  });
});
