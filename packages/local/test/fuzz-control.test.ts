import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { TERMINAL_STATUSES } from '@fc-async/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Emulator, signAcsRequest } from '../src/index.js';
import { type Answer, exchange, fuzzSeed, Gen, inBatches, jsonOf, LEAK, show, startEchoLogged } from './fuzz-gen.js';
import { waitFor } from './helpers.js';

/**
 * The bad-input rule, fuzzed on the control plane (FC API 2023-03-30) over raw sockets: every
 * route (GetAsyncTask, ListAsyncTasks, StopAsyncTask, Get/Put/DeleteAsyncInvokeConfig,
 * ListAsyncInvokeConfigs, InvokeFunction) and routes that do not exist, with random and malformed
 * query parameters, headers and bodies. Every request gets a well-formed answer below 500: a 2xx,
 * or a 4xx `{ Code, Message, RequestId }` (RequestId as in `x-fc-request-id`) without a stack;
 * nothing is logged as an internal error, the control plane keeps answering, and every task it
 * accepted reaches a terminal status. A failure names its seed and case: replay it with
 * `FUZZ_SEED=<seed> npx vitest run test/fuzz-control.test.ts`.
 */

const CASES = 700;
const API = '/2023-03-30';

const STATUSES = ['Enqueued', 'Succeeded', 'Failed', 'Running', 'Stopped', 'Expired', 'succeeded', 'Done'];
const ARNS = [
  'acs:mns:cn-hangzhou:123:/queues/q/messages',
  'acs:fc:cn-hangzhou:123:functions/not-served',
  'acs:eventbridge:cn-hangzhou:123:eventbus/default',
  'acs:fc:cn-hangzhou:123:functions/',
  'not-an-arn',
  '',
];

/** One fuzz request and whether it is HEAD. */
interface Case {
  bytes: Buffer;
  head: boolean;
}

/** A query value or path segment: percent-encoded mostly, raw (broken encoding, spaces) sometimes. */
function enc(g: Gen, value: string): string {
  return g.chance(0.85) ? encodeURIComponent(value) : value;
}

function query(g: Gen, pairs: [string, string][]): string {
  if (pairs.length === 0) return '';
  return `?${pairs.map(([k, v]) => `${enc(g, k)}=${enc(g, v)}`).join('&')}`;
}

/** ListAsyncTasks' parameters: each valid, odd or absent; sometimes repeated. */
function listParams(g: Gen, tokens: string[]): [string, string][] {
  const pairs: [string, string][] = [];
  const add = (key: string, valid: () => string) => {
    if (g.chance(0.5)) return;
    pairs.push([key, g.chance(0.5) ? valid() : g.oddValue()]);
    if (g.chance(0.05)) pairs.push([key, valid()]);
  };
  add('limit', () => String(1 + g.int(100)));
  add('nextToken', () =>
    tokens.length > 0 && g.chance(0.7) ? g.pick(tokens) : Buffer.from(JSON.stringify(g.json(1))).toString('base64url'),
  );
  add('status', () => g.pick(STATUSES));
  add('prefix', () => g.pick(['t', 'job', '']));
  add('startedTimeBegin', () => String(Date.now() - g.int(1e6)));
  add('startedTimeEnd', () => g.pick([String(Date.now()), '0', String(Number.MAX_SAFE_INTEGER), '9007199254740993']));
  add('sortOrderByTime', () => g.pick(['asc', 'desc', 'ASC', 'Desc']));
  add('includePayload', () => g.pick(['true', 'false']));
  add('qualifier', () => g.pick(['LATEST', 'prod', '1']));
  if (g.chance(0.1)) pairs.push([g.oddValue(), g.oddValue()]);
  return pairs;
}

/** A PutAsyncInvokeConfig body: an object of FC's fields (valid or not), or not an object at all. */
function configBody(g: Gen): string {
  const roll = g.int(10);
  if (roll === 0) return g.pick(['{', 'null', '[]', '"x"', '42', '{"a":1', '\u0000', '']);
  if (roll === 1) return JSON.stringify(g.json(2));
  const body: Record<string, unknown> = {};
  const field = (name: string, valid: () => unknown) => {
    if (g.chance(0.5)) body[name] = g.chance(0.6) ? valid() : g.json(1);
  };
  field('maxAsyncRetryAttempts', () => g.int(9));
  field('maxAsyncEventAgeInSeconds', () => 60 + g.int(604_000));
  field('asyncTask', () => g.chance(0.5));
  field('destinationConfig', () => ({
    [g.pick(['onSuccess', 'onFailure', 'onWhatever'])]: g.chance(0.8) ? { destination: g.pick(ARNS) } : g.json(1),
  }));
  return JSON.stringify(body);
}

/** An InvokeFunction payload: an HTTP event (often broken), any JSON, or bytes. */
function invokeBody(g: Gen): string {
  const roll = g.int(4);
  if (roll === 0) return JSON.stringify(g.json(2));
  if (roll === 1) return g.oddValue();
  const http: Record<string, unknown> = { method: g.chance(0.7) ? g.pick(['GET', 'POST', 'get']) : g.json(0) };
  const event: Record<string, unknown> = { rawPath: g.chance(0.8) ? '/' : g.json(1), requestContext: { http } };
  if (g.chance(0.2)) [event.rawPath, http.path] = [undefined, g.pick(['/😀', '/a\ud800', '/x y', g.oddValue()])];
  if (g.chance(0.5)) {
    const type = { 'X-Fc-Invocation-Type': g.pick(['Async', 'Sync', 'x']) };
    event.headers = g.chance(0.4) ? type : g.chance(0.5) ? { ...type, 'X-Odd': g.json(1) } : g.json(1);
  }
  if (g.chance(0.3)) event.queryParameters = g.chance(0.5) ? g.json(1) : { q: g.json(1) };
  if (g.chance(0.3)) event.body = g.json(1);
  if (g.chance(0.3)) event.isBase64Encoded = g.json(0);
  return JSON.stringify(event);
}

/** Everything of one request but the framing: method, target, extra header lines, body. */
function anyApiCall(g: Gen, serial: () => number, known: string[], tokens: string[]) {
  const fn = g.chance(0.9)
    ? 'echo'
    : g.pick(['nope', '%zz', 'ec%68o', 'a'.repeat(200), '%F0%9F%98%80', '..', 'echo%2Fx', '']);
  const base = `${API}/functions/${fn}`;
  const taskId = () => (known.length > 0 && g.chance(0.5) ? g.pick(known) : enc(g, g.oddValue()));
  const qualifier = () => (g.chance(0.8) ? '' : query(g, [['qualifier', g.chance(0.5) ? 'LATEST' : g.oddValue()]]));
  const headers: string[] = [];
  let body = '';
  let method: string;
  let target: string;
  switch (g.int(10)) {
    case 0:
      [method, target] = ['GET', `${base}/async-tasks/${taskId()}${qualifier()}`];
      break;
    case 1:
      [method, target] = ['GET', `${base}/async-tasks${query(g, listParams(g, tokens))}`];
      break;
    case 2:
      [method, target] = ['PUT', `${base}/async-tasks/${taskId()}/stop${qualifier()}`];
      break;
    case 3:
      [method, target] = [g.pick(['GET', 'DELETE']), `${base}/async-invoke-config${qualifier()}`];
      break;
    case 4:
      [method, target, body] = ['PUT', `${base}/async-invoke-config${qualifier()}`, configBody(g)];
      if (g.chance(0.8)) headers.push('Content-Type: application/json');
      break;
    case 5:
    case 6: {
      [method, target, body] = ['POST', `${base}/invocations${qualifier()}`, invokeBody(g)];
      const type = g.pick(['Async', 'Async', 'Sync', 'async', g.oddValue()]);
      if (g.chance(0.8)) headers.push(`X-Fc-Invocation-Type: ${type}`);
      if (g.chance(0.5)) headers.push(`X-Fc-Async-Task-Id: ${g.chance(0.5) ? `c${g.seed}_${serial()}` : g.oddValue()}`);
      if (g.chance(0.2)) headers.push(`X-Fc-Async-Delay: ${g.chance(0.3) ? '1' : g.oddValue()}`);
      if (g.chance(0.2)) headers.push(`X-Fc-Log-Type: ${g.pick(['Tail', 'None', g.oddValue()])}`);
      if (g.chance(0.5))
        headers.push(`Content-Type: ${g.pick(['application/json', 'application/octet-stream', 'text/plain', 'é'])}`);
      break;
    }
    case 7: {
      const pairs: [string, string][] = [];
      if (g.chance(0.5)) pairs.push(['limit', g.chance(0.5) ? String(1 + g.int(100)) : g.oddValue()]);
      if (g.chance(0.5)) pairs.push(['functionName', g.pick(['echo', g.oddValue()])]);
      if (g.chance(0.5)) pairs.push(['nextToken', g.oddValue()]);
      [method, target] = ['GET', `${API}/async-invoke-configs${query(g, pairs)}`];
      break;
    }
    case 8:
      method = g.pick(['POST', 'PATCH', 'HEAD', 'OPTIONS', 'TRACE', 'M-SEARCH', 'delete', 'PUT']);
      target = g.pick([
        `${base}/async-tasks`,
        `${base}/async-tasks/x`,
        `${base}/async-invoke-config`,
        `${base}/invocations`,
      ]);
      break;
    default:
      method = g.pick(['GET', 'POST', 'HEAD', 'DELETE']);
      target = g.pick([
        `${API}/`,
        `${API}/functions`,
        `${API}/functions/`,
        `${base}/async-tasks/a/b/c`,
        `${base}/async-tasks/x/stop/extra`,
        `${base}/%`,
        `${base}/async-tasks/%E0%A4%A`,
        '/2016-08-15/services/s/functions/echo/invocations',
        '/api/functions',
        '/api/nothing',
        '/nothing',
        '/%zz',
      ]);
  }
  for (let n = g.chance(0.3) ? 1 + g.int(2) : 0; n > 0; n--) {
    headers.push(
      g.pick([
        'Authorization: ACS3-HMAC-SHA256 Credential=x,SignedHeaders=host,Signature=00',
        'Authorization: Basic Zm9vOmJhcg==',
        `Authorization: ${g.oddValue()}`,
        'Origin: http://evil.example',
        'Sec-Fetch-Site: cross-site',
        `X-Acs-Date: ${g.oddValue()}`,
        'Accept: */*',
        `X-Big: ${'b'.repeat(g.pick([100, 9000]))}`,
        `Expect: ${g.pick(['100-continue', 'something-else'])}`,
      ]),
    );
  }
  return { method, target, headers, body };
}

/** Frames a call: Host (a loopback name, rarely another or none), the headers, Content-Length, the body. */
function frame(g: Gen, host: string, call: ReturnType<typeof anyApiCall>): Case {
  const hosts = g.chance(0.93)
    ? [`Host: ${host}`]
    : g.pick([[], ['Host: evil.example'], ['Host: '], ['Host: localhost']]);
  let body = Buffer.from(call.body, 'utf8');
  const head = [`${call.method} ${call.target} HTTP/1.1`, ...hosts, ...call.headers, 'Connection: close'];
  if (g.chance(0.02)) {
    // Over the API's 1 MB (InvokeFunction's 32 MB) limit: refused from Content-Length alone.
    head.push(`Content-Length: ${call.target.includes('/invocations') ? 40_000_000 : 2_000_000}`);
    body = Buffer.alloc(0);
  } else if (body.length > 0 || g.chance(0.3)) head.push(`Content-Length: ${body.length}`);
  const bytes = Buffer.concat([Buffer.from(`${head.join('\r\n')}\r\n\r\n`, 'utf8'), body]);
  return { bytes, head: call.method === 'HEAD' };
}

/** What breaks the rule in a control plane answer (to HEAD when `head`), or `undefined`. */
function problemOf(answer: Answer | string, head: boolean): string | undefined {
  if (typeof answer === 'string') return answer;
  if (answer.status >= 500) return `status ${answer.status}: ${answer.body.toString('utf8').slice(0, 300)}`;
  if (answer.status < 400) return undefined;
  const requestId = answer.headers['x-fc-request-id'];
  if (!requestId || !/^1-/.test(requestId)) return `a ${answer.status} without x-fc-request-id`;
  if (!String(answer.headers['content-type']).startsWith('application/json'))
    return `a ${answer.status} not typed as JSON`;
  if (head) return undefined;
  const text = answer.body.toString('utf8');
  if (LEAK.test(text)) return `a stack or path in the body: ${text.slice(0, 300)}`;
  const body = jsonOf(answer);
  if (!body) return `a ${answer.status} without a JSON body: ${JSON.stringify(text.slice(0, 200))}`;
  const { Code, Message, RequestId, ...rest } = body;
  if (typeof Code !== 'string' || !/^[A-Z][A-Za-z.]+$/.test(Code)) return `Code ${String(Code)}`;
  if (typeof Message !== 'string' || !/\S/.test(Message)) return `Message ${String(Message)}`;
  if (RequestId !== requestId) return `RequestId ${String(RequestId)} is not x-fc-request-id ${requestId}`;
  if (Object.keys(rest).length > 0) return `more than { Code, Message, RequestId }: ${text.slice(0, 200)}`;
  return undefined;
}

describe('fuzzing the control plane over raw sockets', () => {
  let emulator: Emulator;
  const lines: Record<string, unknown>[] = [];
  const outDir = mkdtempSync(join(tmpdir(), 'fc-async-fuzz-control-'));
  beforeAll(async () => {
    emulator = await startEchoLogged(lines, outDir);
  });
  afterAll(async () => {
    await emulator.close();
    rmSync(outDir, { recursive: true, force: true });
  });

  it(`answers ${CASES} API calls with random values with a 2xx or a 4xx { Code, Message, RequestId }, and loses no task`, async () => {
    const seed = fuzzSeed(20_260_304);
    const g = new Gen(seed);
    const host = new URL(emulator.controlUrl).host;
    let serial = 0;
    const known: string[] = [];
    const tokens: string[] = [];
    const accepted = new Map<string, number>();
    const statuses = new Set<number>();
    const failures: string[] = [];
    // Generated one batch at a time: later calls name the tasks and page tokens earlier ones got.
    const width = 4;
    for (let i = 0; i < CASES; i += width) {
      const batch = Array.from({ length: Math.min(width, CASES - i) }, () =>
        frame(
          g,
          host,
          anyApiCall(g, () => ++serial, known, tokens),
        ),
      );
      await inBatches(batch.length, width, async (k) => {
        const c = batch[k] as Case;
        const answer = await exchange(emulator.controlUrl, c.bytes, c.head);
        const problem = problemOf(answer, c.head);
        if (problem) failures.push(`seed ${seed}, case ${i + k}: ${problem}\n  request: ${show(c.bytes)}`);
        if (typeof answer === 'string') return;
        statuses.add(answer.status);
        const taskId = answer.headers['x-fc-async-task-id'];
        if (answer.status === 202 && taskId) {
          accepted.set(taskId, i + k);
          known.push(taskId);
        }
        const token = answer.status === 200 ? jsonOf(answer)?.nextToken : undefined;
        if (typeof token === 'string') tokens.push(token);
      });
    }
    expect(failures.slice(0, 12)).toEqual([]);
    expect([...statuses]).toEqual(expect.arrayContaining([200, 202, 400, 404]));
    expect(lines.filter((l) => l.level === 'error')).toEqual([]);

    // Still answering, and every accepted task finished.
    expect((await fetch(`${emulator.controlUrl}/api/functions`)).status).toBe(200);
    for (const [taskId, i] of accepted) {
      const status = await waitFor(async () => {
        const res = await fetch(`${emulator.controlUrl}${API}/functions/echo/async-tasks/${taskId}`);
        const task = (await res.json()) as { status?: string };
        return task.status && TERMINAL_STATUSES.has(task.status as never) ? task.status : undefined;
      }).catch(() => `not terminal (seed ${seed}, case ${i})`);
      expect(['Succeeded', 'Expired', 'Stopped'], `task ${taskId}`).toContain(status);
    }
  });
});

describe('fuzzing the signature checks of a control plane with an access key', () => {
  const key = { accessKeyId: 'fuzz-key', accessKeySecret: 'fuzz-secret' };
  let emulator: Emulator;
  const lines: Record<string, unknown>[] = [];
  const outDir = mkdtempSync(join(tmpdir(), 'fc-async-fuzz-signed-'));
  beforeAll(async () => {
    emulator = await startEchoLogged(lines, outDir, { credentials: key, requireSignatures: true });
  });
  afterAll(async () => {
    await emulator.close();
    rmSync(outDir, { recursive: true, force: true });
  });

  it('answers 300 requests with broken or tampered signatures with a 4xx { Code, Message, RequestId }', async () => {
    const seed = fuzzSeed(20_260_305);
    const g = new Gen(seed);
    const host = new URL(emulator.controlUrl).host;
    const failures: string[] = [];
    const cases = Array.from({ length: 300 }, () => signedCase(g, host, key));
    const codes = new Set<string>();
    await inBatches(cases.length, 4, async (i) => {
      const c = cases[i] as Case & { valid: boolean };
      const answer = await exchange(emulator.controlUrl, c.bytes, false);
      const problem = problemOf(answer, false);
      if (problem) failures.push(`seed ${seed}, case ${i}: ${problem}\n  request: ${show(c.bytes)}`);
      if (typeof answer === 'string') return;
      if (c.valid && answer.status !== 200)
        failures.push(`seed ${seed}, case ${i}: a valid signature got ${answer.status}`);
      if (!c.valid && answer.status < 400)
        failures.push(`seed ${seed}, case ${i}: a broken signature got ${answer.status}`);
      codes.add(String(jsonOf(answer)?.Code ?? answer.status));
    });
    expect(failures.slice(0, 12)).toEqual([]);
    expect([...codes]).toEqual(expect.arrayContaining(['200', 'SignatureNotMatch', 'InvalidArgument']));
    expect(lines.filter((l) => l.level === 'error')).toEqual([]);
  });
});

/** A ListAsyncTasks call signed the SDK's way, then (mostly) broken in one place. */
function signedCase(g: Gen, host: string, key: { accessKeyId: string; accessKeySecret: string }) {
  const path = `${API}/functions/echo/async-tasks`;
  // Never limit=9: one tampering swaps the query for it.
  const q = g.chance(0.5) ? `limit=${1 + g.int(5)}` : '';
  const signed = signAcsRequest(
    {
      method: 'GET',
      path,
      query: q,
      headers: { host, 'x-acs-action': 'ListAsyncTasks', 'x-acs-version': '2023-03-30' },
    },
    key,
  );
  const headers: Record<string, string> = { ...signed };
  let target = q ? `${path}?${q}` : path;
  const valid = g.chance(0.15);
  if (!valid) {
    const name = g.pick(Object.keys(headers));
    switch (g.int(6)) {
      case 0:
        headers[name] = g.oddValue();
        break;
      case 1:
        delete headers[name];
        break;
      case 2:
        headers.authorization = (headers.authorization as string).replace(
          /Signature=[0-9a-f]+/,
          `Signature=${g.oddValue()}`,
        );
        break;
      case 3:
        headers.authorization = (headers.authorization as string).replace(
          /SignedHeaders=[^,]+/,
          `SignedHeaders=${g.oddValue()}`,
        );
        break;
      case 4:
        target = `${path}?${g.pick(['limit=9', 'limit=%zz', 'a=%E0%A4%A', 'limit=1&limit=1'])}`;
        break;
      default:
        headers[`x-acs-${g.pick(['extra', 'date', 'signature-nonce'])}`] = g.oddValue();
    }
  }
  const lines = Object.entries(headers).map(([name, value]) => `${name}: ${value}`);
  const head = [`GET ${target} HTTP/1.1`, ...lines, 'Connection: close'].join('\r\n');
  return { bytes: Buffer.from(`${head}\r\n\r\n`, 'utf8'), head: false, valid };
}
