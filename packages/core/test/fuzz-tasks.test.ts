import { describe, expect, it } from 'vitest';
import { type AsyncTask, createFcHandler, isFcAsyncError, type TaskQuery } from '../src/index.js';
import { fuzzSeed, Gen, show } from './fuzz-gen.js';
import { asyncEvent, memoryLogger } from './helpers.js';

/**
 * ListAsyncTasks in-process (`handler.tasks.list`), fuzzed: any query answers a page that keeps
 * its filters, its limit and its order, or rejects with a 400 `InvalidArgument`; page tokens are
 * chained into later queries. Values are JSON-like (objects whose `toString` is not a function
 * are left out: see the report on paging.ts). Replay with `FUZZ_SEED=<seed>`.
 */

const CASES = 1500;

const ODD: readonly unknown[] = [
  undefined,
  null,
  '',
  ' ',
  'x',
  '5',
  'asc ',
  'DESC',
  'SUCCEEDED',
  -1,
  0,
  1.5,
  101,
  Number.NaN,
  Number.POSITIVE_INFINITY,
  2 ** 53 + 2,
  true,
  [],
  [5],
  {},
  { a: 1 },
];

function anyQuery(g: Gen, tokens: string[]): Record<string, unknown> {
  const q: Record<string, unknown> = {};
  const field = (key: string, valid: () => unknown) => {
    if (g.chance(0.5)) q[key] = g.chance(0.6) ? valid() : g.pick(ODD);
  };
  const now = Date.now();
  field('limit', () => 1 + g.int(g.chance(0.5) ? 5 : 100));
  field('nextToken', () =>
    tokens.length > 0 && g.chance(0.8) ? g.pick(tokens) : Buffer.from('[1,"a"]').toString('base64url'),
  );
  field('status', () => g.pick(['Succeeded', 'Failed', 'Enqueued', 'Stopped', 'Running']));
  field('prefix', () => g.pick(['a_', 'b_', 'a_1', '', 'zzz']));
  field('startedTimeBegin', () => g.pick([0, now - 60_000, now + 60_000]));
  field('startedTimeEnd', () => g.pick([0, now + 60_000, Number.MAX_SAFE_INTEGER]));
  field('sortOrderByTime', () => g.pick(['asc', 'desc']));
  field('includePayload', () => g.chance(0.5));
  return q;
}

/** Why task `t` does not match `query`'s filters, or `undefined` when it does. */
function mismatch(query: TaskQuery, t: AsyncTask): string | undefined {
  if (query.status !== undefined && t.status !== query.status) return `a ${t.status} task for status ${query.status}`;
  if (query.prefix !== undefined && !t.taskId.startsWith(query.prefix))
    return `task ${t.taskId} for prefix ${query.prefix}`;
  const at = t.startedTime ?? 0;
  if (query.startedTimeBegin !== undefined && at < query.startedTimeBegin) return `task ${t.taskId} before begin`;
  if (query.startedTimeEnd !== undefined && at > query.startedTimeEnd) return `task ${t.taskId} after end`;
  return undefined;
}

/**
 * What a page breaks of its query (none given: the defaults), or `undefined`. `all` is every
 * task: a first page (no `nextToken`) holds as many of those that match as its limit allows.
 */
function pageProblem(
  given: TaskQuery | undefined,
  tasks: AsyncTask[],
  all: AsyncTask[],
  more: boolean,
): string | undefined {
  const query = given ?? {};
  const limit = query.limit ?? 20;
  if (tasks.length > limit) return `${tasks.length} tasks for limit ${query.limit}`;
  for (const t of tasks) {
    const wrong = mismatch(query, t);
    if (wrong) return wrong;
    if (query.includePayload !== true && t.taskPayload !== undefined) return 'a payload not asked for';
  }
  if (query.nextToken === undefined) {
    const matching = all.filter((t) => mismatch(query, t) === undefined).length;
    if (tasks.length !== Math.min(limit, matching))
      return `${tasks.length} tasks where ${matching} match (limit ${limit})`;
    if (more !== matching > limit) return `nextToken ${more ? 'given' : 'missing'} with ${matching} matching`;
  }
  const times = tasks.map((t) => t.startedTime ?? 0);
  const sorted = [...times].sort((a, b) => (query.sortOrderByTime === 'asc' ? a - b : b - a));
  if (times.some((t, i) => t !== sorted[i])) return `tasks out of ${query.sortOrderByTime ?? 'desc'} order`;
  return undefined;
}

describe('fuzzing tasks.list (ListAsyncTasks in-process)', () => {
  it(`answers ${CASES} random queries with a page that keeps its filters, or a 400 InvalidArgument`, async () => {
    const seed = fuzzSeed(20_260_308);
    const g = new Gen(seed);
    const handler = createFcHandler(
      (req, res) => {
        res.statusCode = req.url?.startsWith('/fail') ? 500 : 200;
        res.end('done');
      },
      { env: {}, logger: memoryLogger(), async: { mode: 'local', maxAsyncRetryAttempts: 0 } },
    );
    for (let i = 0; i < 40; i++) {
      const path = i % 4 === 0 ? '/fail' : '/ok';
      const accepted = await handler(asyncEvent({ taskId: `${i % 3 === 0 ? 'b' : 'a'}_${i}`, path }), {});
      expect(accepted.statusCode).toBe(202);
    }
    await handler.drain();
    const all = (await handler.tasks.list({ limit: 100 })).tasks;
    expect(all).toHaveLength(40);
    const tokens: string[] = [];
    const outcomes = new Set<string>();
    for (let i = 0; i < CASES; i++) {
      const query = g.chance(0.03) ? g.pick(ODD) : anyQuery(g, tokens);
      const label = `seed ${seed}, case ${i}: query ${show(query)}`;
      try {
        const page = await handler.tasks.list(query as TaskQuery);
        const problem = pageProblem(query as TaskQuery | undefined, page.tasks, all, page.nextToken !== undefined);
        if (problem) throw new Error(`${label}: ${problem}`);
        if (page.nextToken !== undefined) {
          expect(typeof page.nextToken, label).toBe('string');
          tokens.push(page.nextToken);
        }
        outcomes.add('page');
      } catch (error) {
        if (!isFcAsyncError(error)) throw new Error(`${label}: rejected with ${String(error)}`);
        expect({ status: error.statusCode, code: error.code }, label).toEqual({ status: 400, code: 'InvalidArgument' });
        expect(error.message, label).toMatch(/\S/);
        outcomes.add('refused');
      }
    }
    expect([...outcomes].sort()).toEqual(['page', 'refused']);
    expect(tokens.length).toBeGreaterThan(0);
    await handler.close({ timeoutMs: 1000 });
  });
});
