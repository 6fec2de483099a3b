import { describe, expect, it } from 'vitest';
import { createFcHandler, type FcHttpResult, TERMINAL_STATUSES } from '../src/index.js';
import { anyContext, anyEvent, anyFc2Request, fuzzSeed, Gen, LEAK, show } from './fuzz-gen.js';
import { event, fc2Response, memoryLogger } from './helpers.js';

/**
 * The bad-input rule, fuzzed on the handler: whatever the event, the handler answers (never
 * throws, rejects or hangs, but for an async attempt a queue in front accepted and the handler
 * refused, which it fails as FC's rule says) with the app's answer or a 4xx `{ code, message }` without a stack,
 * logs no internal error, every 202'd task reaches a terminal status, and a good event is served
 * afterwards. A failure names its seed and case: replay it with
 * `FUZZ_SEED=<seed> npx vitest run test/fuzz-handler.test.ts`.
 */

const FC3_CASES = 1200;
const FC2_CASES = 400;
const HANG_MS = 5000;

/** An app that echoes what it was given (the client address too), as JSON. */
function echoHandler() {
  const logger = memoryLogger();
  const handler = createFcHandler(
    (req, res) => {
      res.setHeader('content-type', 'application/json');
      const peer = { ip: req.socket.remoteAddress, family: req.socket.remoteFamily };
      res.end(JSON.stringify({ method: req.method, url: req.url, headers: req.headers, peer }));
    },
    { env: {}, logger, async: { mode: 'local', backoff: { baseMs: 1, maxMs: 2 } } },
  );
  return { handler, logger };
}

/** Settles `promise`, or rejects with `hang` once `HANG_MS` pass. */
function bounded<T>(promise: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const hang = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${HANG_MS} ms`)), HANG_MS);
  });
  return Promise.race([promise, hang]).finally(() => clearTimeout(timer));
}

/** What breaks the rule in an answer (status, headers and body), or `undefined`. */
function problemOf(status: unknown, headers: Record<string, unknown>, body: string): string | undefined {
  if (typeof status !== 'number' || status < 200 || status >= 500) return `status ${String(status)}`;
  for (const [name, value] of Object.entries(headers)) {
    if (typeof value !== 'string') return `header ${name} is ${typeof value}`;
  }
  if (LEAK.test(body)) return `a stack or path in the body: ${body.slice(0, 300)}`;
  if (status < 400) return undefined;
  let parsed: unknown;
  try {
    parsed = JSON.parse(body);
  } catch {
    return `a ${status} whose body is not JSON: ${body.slice(0, 200)}`;
  }
  const { code, message, ...rest } = parsed as Record<string, unknown>;
  if (typeof code !== 'string' || !/^[A-Z][A-Za-z]+$/.test(code)) return `code ${String(code)}`;
  if (typeof message !== 'string' || !/\S/.test(message)) return `message ${String(message)}`;
  if (Object.keys(rest).length > 0) return `more than { code, message }: ${body.slice(0, 200)}`;
  return undefined;
}

/** A context whose retry count says a queue in front (FC, the emulator) accepted the call. */
const queuedAttempt = (context: unknown) =>
  typeof context === 'object' && context !== null && (context as { retryCount?: unknown }).retryCount !== undefined;

/** Fails with the seed, the case and its input; builds the label only then (inputs can be large). */
function fail(seed: number, i: number, problem: string, input: () => string): never {
  throw new Error(`seed ${seed}, case ${i}: ${problem}\n  input: ${input()}`);
}

/** Calls the FC 3.0 handler with a promise or, one call in four, with a callback. */
function callFc3(handler: ReturnType<typeof echoHandler>['handler'], g: Gen, input: unknown, context: unknown) {
  if (!g.chance(0.25)) return handler(input, context as never);
  return new Promise<FcHttpResult>((resolve, reject) => {
    handler(input, context as never, (error, result) => (error ? reject(error) : resolve(result as FcHttpResult)));
  });
}

/** Every task accepted reached a terminal status once the handler drained. */
async function expectSettled(handler: ReturnType<typeof echoHandler>['handler'], accepted: Map<string, string>) {
  const drained = await bounded(handler.drain()).then(
    () => true,
    () => false,
  );
  for (const [taskId, label] of accepted) {
    const task = await handler.tasks.get(taskId);
    expect(task && TERMINAL_STATUSES.has(task.status), `${label}: task ${taskId} is ${task?.status}`).toBe(true);
  }
  expect(drained, 'drain() settled').toBe(true);
}

describe('fuzzing the FC 3.0 handler(event, context)', () => {
  it(`answers ${FC3_CASES} malformed events with the app's answer or a 4xx { code, message }, and loses no accepted task`, async () => {
    const seed = fuzzSeed(20_260_301);
    const g = new Gen(seed);
    const { handler, logger } = echoHandler();
    const accepted = new Map<string, string>();
    const statuses = new Set<number>();
    for (let i = 0; i < FC3_CASES; i++) {
      const input = anyEvent(g);
      const context = anyContext(g);
      const shown = () => `event ${show(input)}, context ${show(context)}`;
      let result: FcHttpResult;
      try {
        result = await bounded(callFc3(handler, g, input, context));
      } catch (error) {
        // An attempt a queue in front accepted (a retry count on the context) that the handler refused
        // is a failed invocation, which a built-in handler reports by throwing: the queue retries it.
        if (queuedAttempt(context) && (error as { code?: unknown }).code === 'UnhandledInvocationError') {
          logger.entries.length = 0;
          continue;
        }
        fail(seed, i, `the handler threw, rejected or hung: ${String(error)}`, shown);
      }
      const problem = problemOf(result?.statusCode, result?.headers ?? {}, String(result?.body));
      if (problem) fail(seed, i, problem, shown);
      if (typeof result.isBase64Encoded !== 'boolean') fail(seed, i, 'isBase64Encoded is not a boolean', shown);
      const error = logger.entries.find((e) => e.level === 'error');
      if (error) fail(seed, i, `an internal error was logged: ${show(error)}`, shown);
      if (result.statusCode === 202)
        accepted.set(result.headers['x-fc-async-task-id'] as string, `seed ${seed}, case ${i}`);
      statuses.add(result.statusCode);
      logger.entries.length = 0;
    }
    // The run reached both sides of the rule: refusals, sync answers and accepted async calls.
    expect([...statuses]).toEqual(expect.arrayContaining([200, 202, 400]));
    await expectSettled(handler, accepted);
    const good = await handler(event({ path: '/after' }), {});
    expect(good).toMatchObject({ statusCode: 200 });
    expect(JSON.parse(good.body)).toMatchObject({ method: 'GET', url: '/after' });
    await handler.close({ timeoutMs: 1000 });
  });
});

describe('fuzzing the FC 2.0 handler(req, resp, context)', () => {
  it(`answers ${FC2_CASES} requests with odd fields with the app's answer or a 4xx { code, message }, never a throw`, async () => {
    const seed = fuzzSeed(20_260_302);
    const g = new Gen(seed);
    const { handler, logger } = echoHandler();
    const accepted = new Map<string, string>();
    const statuses = new Set<number>();
    for (let i = 0; i < FC2_CASES; i++) {
      const { req, fields } = anyFc2Request(g);
      const { resp, sent } = fc2Response();
      const shown = () => `req fields ${show(fields)}`;
      try {
        await bounded(handler(req as never, resp, {}));
      } catch (error) {
        fail(seed, i, `the handler threw, rejected or hung: ${String(error)}`, shown);
      }
      if (sent.sends !== 1) fail(seed, i, `resp.send was called ${sent.sends} times`, shown);
      const problem = problemOf(sent.status, sent.headers, sent.body);
      if (problem) fail(seed, i, problem, shown);
      const error = logger.entries.find((e) => e.level === 'error');
      if (error) fail(seed, i, `an internal error was logged: ${show(error)}`, shown);
      if (sent.status === 202) accepted.set(String(sent.headers['x-fc-async-task-id']), `seed ${seed}, case ${i}`);
      statuses.add(sent.status);
      logger.entries.length = 0;
    }
    expect([...statuses]).toEqual(expect.arrayContaining([200, 202, 400]));
    await expectSettled(handler, accepted);
    await handler.close({ timeoutMs: 1000 });
  });
});
