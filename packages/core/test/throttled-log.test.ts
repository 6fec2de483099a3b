import { afterEach, describe, expect, it, vi } from 'vitest';
import { createFcHandler, errorResponse, FcAsyncError } from '../src/index.js';
import { asyncEvent, context, memoryLogger } from './helpers.js';

// A burst refused 429 (maxQueuedTasks reached) logs its first refusal, then once how many more followed
// within 10 s: not one line per request (8,000 refusals wrote 7,892 lines), and no count lost.

afterEach(() => {
  vi.useRealTimers();
});

const throttled = () =>
  new FcAsyncError('ResourceThrottled', '2 async tasks are already waiting; retry later', {
    statusCode: 429,
    headers: { 'retry-after': '1' },
  });

describe('429 answers in the log', () => {
  it('one line for the first of a burst, one with the count of the rest 10 s later, then a new burst starts over', () => {
    vi.useFakeTimers();
    const logger = memoryLogger();
    for (let i = 0; i < 8000; i++) expect(errorResponse(throttled(), logger, `r${i}`).statusCode).toBe(429);
    expect(logger.entries.map((e) => e.message)).toEqual(['async requests refused with 429 ResourceThrottled']);
    vi.advanceTimersByTime(10_000);
    expect(logger.entries.at(-1)).toMatchObject({
      message: 'async requests refused with 429 in the last 10 s',
      fields: { refused: 7999 },
    });
    errorResponse(throttled(), logger, 'later');
    expect(logger.entries).toHaveLength(3);
    vi.advanceTimersByTime(10_000);
    // Nothing more refused in that window: nothing more to say.
    expect(logger.entries).toHaveLength(3);
  });
});

describe('503 answers while shutting down, in the log', () => {
  // A balancer still routing to an instance in its pre-stop: each refusal wrote a line (200 for 200).
  const closing = () =>
    new FcAsyncError('ServiceUnavailable', 'The function is shutting down and accepts no new async requests', {
      statusCode: 503,
    });

  it('are logged as a burst too, apart from 429s', () => {
    vi.useFakeTimers();
    const logger = memoryLogger();
    for (let i = 0; i < 200; i++) expect(errorResponse(closing(), logger, `r${i}`).statusCode).toBe(503);
    errorResponse(throttled(), logger, 'full');
    expect(logger.entries.map((e) => e.message)).toEqual([
      'requests refused with 503: the function is shutting down',
      'async requests refused with 429 ResourceThrottled',
    ]);
    vi.advanceTimersByTime(10_000);
    expect(logger.entries.at(-1)).toMatchObject({
      message: 'requests refused with 503 (shutting down) in the last 10 s',
      fields: { refused: 199 },
    });
  });
});

describe("a burst's count when the handler closes", () => {
  it('is logged as close() ends, not lost to a process that exits before the 10 s are up', async () => {
    const logger = memoryLogger();
    const handler = createFcHandler((_req, res) => void setTimeout(() => res.end('done'), 50), {
      logger,
      env: {},
      async: { mode: 'local' },
    });
    expect((await handler(asyncEvent({ taskId: 'running' }), context)).statusCode).toBe(202);
    const closing = handler.close();
    for (let i = 0; i < 20; i++) {
      expect((await handler(asyncEvent({ taskId: `late_${i}` }), context)).statusCode).toBe(503);
    }
    await closing;
    const refusals = logger.entries.filter((e) => e.message.startsWith('requests refused with 503'));
    expect(refusals.map((e) => [e.message, e.fields?.refused])).toEqual([
      ['requests refused with 503: the function is shutting down', undefined],
      ['requests refused with 503 (shutting down) in the last 10 s', 19],
    ]);
  });
});

describe('503 answers because the store under the engine failed, in the log', () => {
  // A full disk refused 1,935 accepts of a burst: 1,935 ERROR lines, each with its stack.
  const diskFull = () =>
    new FcAsyncError('SqliteWriteFailed', 'The task store could not commit the write (SQLITE_FULL); retry later', {
      statusCode: 503,
      cause: Object.assign(new Error('database or disk is full'), { code: 'SQLITE_FULL' }),
      headers: { 'retry-after': '1' },
    });

  it('log the first whole, as an error with its cause, then the count of the rest, per code', () => {
    vi.useFakeTimers();
    const logger = memoryLogger();
    for (let i = 0; i < 500; i++) {
      const answer = errorResponse(diskFull(), logger, `r${i}`);
      expect([answer.statusCode, JSON.parse(String(answer.body)).code]).toEqual([503, 'SqliteWriteFailed']);
    }
    const redis = new FcAsyncError('RedisUnavailable', 'Redis did not answer in time; retry later', {
      statusCode: 503,
      cause: new Error('Command timed out'),
    });
    errorResponse(redis, logger, 'r-redis');
    expect(logger.entries.map((e) => [e.level, e.message])).toEqual([
      ['error', 'requests refused with 503 SqliteWriteFailed'],
      ['error', 'requests refused with 503 RedisUnavailable'],
    ]);
    expect(logger.entries[0]?.fields?.error).toBeInstanceOf(FcAsyncError);
    vi.advanceTimersByTime(10_000);
    expect(logger.entries.at(-1)).toMatchObject({
      level: 'warn',
      message: 'requests refused with 503 SqliteWriteFailed in the last 10 s',
      fields: { refused: 499, code: 'SqliteWriteFailed' },
    });
  });
});
