import type { IncomingMessage, ServerResponse } from 'node:http';
import { afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import {
  type AsyncBackend,
  type AsyncTask,
  createFcHandler,
  type DestinationRecord,
  fcHttpEvent,
  getInvocation,
  isFcAsyncError,
  memory,
} from '../src/index.js';
import { fuzzSeed, Gen } from './fuzz-gen.js';
import { asyncEvent, context, deferred, memoryLogger, ok, setup, tick, until } from './helpers.js';
import { gatedStore, slowMemory } from './model-store.js';

/**
 * A model-based test of the local async engine: seeded random sequences of accepts (task ids
 * new, left out or reused; delays; an app behaviour per attempt), stops, clock moves, gets,
 * lists and drains, some left under way to race with what follows, ended by a close with a short
 * timeout. They run on a fake clock against the memory store and against a store whose writes
 * resolve late, as a durable one's do (in some sequences some writes also fail until the close).
 * What the engine did is checked against a reference model of FC's task rules:
 * - every 202 task ends, with exactly one destination call whose side and condition match its
 *   status; nothing else is called, and drain() and close() resolve, close() in its bound;
 * - a status seen terminal never changes; events end with the status, nothing after an end;
 * - attempts (app calls, `approximateInvokeCount`, `alreadyRetriedTimes`) stay within
 *   1 + maxAsyncRetryAttempts, numbered in order; Failed only with none left;
 * - no attempt starts before its X-Fc-Async-Delay or past maxAsyncEventAgeInSeconds; Expired only
 *   past it, with a retry left; Succeeded only after an attempt that answered;
 * - a stop that answered ends the task Stopped, within the stop's grace; Stopped only after a
 *   stop (or at close); a task id is refused (409) until its task ended and was dropped
 *   (maxTasks, retentionMs), and a stop finds it (not 404) until then;
 * - no unhandled rejection; no error logged but for refused writes and deliveries close() cut.
 * Replay one sequence with `FUZZ_SEED=<seed>`; `FUZZ_RUNS=<n>` runs n per store.
 */

/** Sequences per store; `FUZZ_RUNS=<n>` runs more (a longer hunt). */
const SEQUENCES = /^\d+$/.test(process.env.FUZZ_RUNS ?? '') ? Number(process.env.FUZZ_RUNS) : 150;
const T0 = 1_700_000_000_000;
/** The longest a write of the slow store takes to answer (see model-store.ts), ms. */
const CLAIM_WRITE_MS = 20;
const TERMINAL = new Set(['Succeeded', 'Failed', 'Stopped', 'Expired', 'Invalid']);
const FAILURE_STATUS: Record<string, string> = {
  '': 'Succeeded',
  UnhandledInvocationError: 'Failed',
  InvocationError: 'Failed',
  EventAgeExceeded: 'Expired',
  Stopped: 'Stopped',
};

interface Config {
  retries: number;
  maxAgeS: number;
  timeoutS: number;
  stopGraceMs: number;
  concurrency: number;
  baseMs: number;
  jitter: 'none' | 'equal' | 'full';
  maxTasks: number;
  retentionMs: number | undefined;
  maxQueuedTasks: number;
  slowDestinations: boolean;
  /** How often the slow store's writes fail until close() begins (see StoreFaults). */
  faultRate: number;
}

interface Call {
  attempt: number;
  at: number;
  behaviour: string;
}

interface ModelTask {
  taskId: string;
  requestId: string;
  /** The engine's `acceptedAt` lies between these: before the accept was called, and when it answered. */
  acceptedFrom: number;
  acceptedTo: number;
  /** When (see {@link seq}) its accept began: the store writes it then. */
  startSeq: number;
  delayMs: number;
  /** Stops of it: when each began and answered. */
  stops: { from: number; at: number; result: string }[];
  terminal?: string;
  /** When (see {@link seq}) the end was first seen: a read begun after it must see it too. */
  terminalSeq?: number;
}

interface Delivery {
  side: 'onSuccess' | 'onFailure';
  record: DestinationRecord;
  at: number;
}

/** Runs `promise` to its end, the fake clock moving from timer to timer; `undefined` when it did not end by `limitMs`. */
async function settle<T>(promise: Promise<T>, limitMs = 10_000): Promise<{ value: T } | undefined> {
  let out: { value: T } | undefined;
  let failed: { error: unknown } | undefined;
  promise.then(
    (value) => {
      out = { value };
    },
    (error: unknown) => {
      failed = { error };
    },
  );
  const until = Date.now() + limitMs;
  await vi.advanceTimersByTimeAsync(0);
  for (let steps = 0; !out && !failed && Date.now() < until && steps < 10_000; steps++) {
    await vi.advanceTimersToNextTimerAsync();
  }
  if (failed) throw failed.error;
  return out;
}

function randomConfig(g: Gen, slow: boolean): Config {
  return {
    retries: g.int(4),
    maxAgeS: 1 + g.int(4),
    timeoutS: g.pick([0.3, 1, 2]),
    stopGraceMs: g.pick([0, 50, 500]),
    concurrency: 1 + g.int(3),
    baseMs: g.pick([10, 200, 1000]),
    jitter: g.pick(['none', 'equal', 'full'] as const),
    maxTasks: g.pick([0, 1, 3, 10_000]),
    retentionMs: g.pick([undefined, undefined, 500]),
    maxQueuedTasks: g.pick([2, 10_000, 10_000]),
    slowDestinations: g.chance(0.3),
    faultRate: slow ? faultRateOf(g.next()) : 0,
  };
}

/** The slow store's fault rate for a draw in [0, 1): 20% in 10% of its sequences, 5% in 30%, else none. */
function faultRateOf(draw: number): number {
  return draw < 0.1 ? 0.2 : draw < 0.4 ? 0.05 : 0;
}

function randomPlan(g: Gen): string[] {
  const plan: string[] = [];
  for (let i = 1 + g.int(4); i > 0; i--) {
    const b = g.pick(['ok', 'ok', 'throw', 'reject', 'destroy', 'http500', 'hang', 'ignore', 'slow']);
    plan.push(b === 'slow' ? `slow:${g.pick([100, 700, 1500, 2500])}` : b);
  }
  return plan;
}

/** The app: runs the behaviour its plan (header `x-plan`) names for the attempt, and logs the call. */
function makeApp(calls: Map<string, Call[]>, log: string[]) {
  return (req: IncomingMessage, res: ServerResponse): Promise<void> | undefined => {
    const invocation = getInvocation(req);
    if (!invocation) throw new Error('no invocation');
    const plan = String(req.headers['x-plan']).split(',');
    const behaviour = plan[Math.min(invocation.attempt, plan.length - 1)] as string;
    const list = calls.get(invocation.requestId) ?? [];
    calls.set(invocation.requestId, list);
    list.push({ attempt: invocation.attempt, at: Date.now(), behaviour });
    log.push(`  (${Date.now() - T0} ms: attempt ${invocation.attempt} of ${invocation.requestId}: ${behaviour})`);
    if (behaviour === 'ok') {
      res.end('done');
    } else if (behaviour === 'throw') {
      throw new Error('boom');
    } else if (behaviour === 'reject') {
      return Promise.reject(new TypeError('async boom'));
    } else if (behaviour === 'destroy') {
      res.destroy(new Error('socket gone'));
    } else if (behaviour === 'http500') {
      res.statusCode = 500;
      res.end('bad');
    } else if (behaviour === 'hang') {
      invocation.signal.addEventListener('abort', () => {
        res.statusCode = 503;
        res.end('aborted');
      });
    } else if (behaviour.startsWith('slow:')) {
      setTimeout(() => res.end('late'), Number(behaviour.slice(5)));
    }
    // 'ignore': never answers, whatever its signal says.
    return undefined;
  };
}

/** What breaks FC's task rules in one observed task, given what was seen of it before. */
function checkObserved(
  task: AsyncTask,
  issued: number,
  model: Map<string, ModelTask>,
  cfg: Config,
  problems: string[],
): void {
  const m = model.get(task.requestId);
  if (!m) {
    problems.push(`observed task ${task.taskId} with unknown request ${task.requestId}`);
    return;
  }
  // A read answers what the task was when it began: only one begun after an end was seen must show it.
  if (m.terminal !== undefined && issued > (m.terminalSeq ?? 0) && task.status !== m.terminal) {
    problems.push(`${m.requestId}: status went from ${m.terminal} back to ${task.status}`);
  }
  if (TERMINAL.has(task.status)) {
    if (m.terminal !== undefined && m.terminal !== task.status) {
      problems.push(`${m.requestId}: ended ${m.terminal}, then ${task.status}`);
    }
    if (m.terminal === undefined) {
      m.terminal = task.status;
      m.terminalSeq = ++seq;
    }
  }
  const statuses = task.events.map((e) => e.status);
  if (statuses[statuses.length - 1] !== task.status) {
    problems.push(`${m.requestId}: status ${task.status} but last event ${statuses[statuses.length - 1]}`);
  }
  const firstEnd = statuses.findIndex((s) => TERMINAL.has(s));
  if (firstEnd >= 0 && firstEnd !== statuses.length - 1) {
    problems.push(`${m.requestId}: events after its end: ${statuses.join(' > ')}`);
  }
  if (task.events.some((e, i) => e.eventId !== i + 1)) problems.push(`${m.requestId}: event ids out of order`);
  if (task.alreadyRetriedTimes > cfg.retries) {
    problems.push(`${m.requestId}: alreadyRetriedTimes ${task.alreadyRetriedTimes} above ${cfg.retries}`);
  }
}

interface StopCall {
  taskId: string;
  from: number;
  to: number;
  result: string;
  /** The task the stop answered for (a stop that succeeded). */
  requestId?: string;
  /** When (see {@link seq}) it began and answered. */
  fromSeq: number;
  toSeq: number;
}

/**
 * The task a refused stop was about: the last accepted under its id before it began, unless
 * another task of that id was accepted while it was under way (it may have found either).
 */
function stoppedTask(stop: StopCall, model: Map<string, ModelTask>): ModelTask | undefined {
  let named: ModelTask | undefined;
  for (const m of model.values()) {
    if (m.taskId !== stop.taskId || m.startSeq > stop.toSeq) continue;
    if (m.startSeq > stop.fromSeq) return undefined;
    if (!named || m.startSeq > named.startSeq) named = m;
  }
  return named;
}

/** One sequence: its operations, then the checks. Returns the problems found and the operations run. */
async function runSequence(
  seed: number,
  slow: boolean,
  seen: Set<string>,
): Promise<{ problems: string[]; log: string[] }> {
  const g = new Gen(seed);
  const cfg = randomConfig(g, slow);
  const log: string[] = [`config ${JSON.stringify(cfg)}`];
  const problems: string[] = [];
  vi.useFakeTimers({ now: T0 });
  const random = vi.spyOn(Math, 'random').mockImplementation(() => g.next());
  const calls = new Map<string, Call[]>();
  const deliveries = new Map<string, Delivery[]>();
  const model = new Map<string, ModelTask>();
  const latest = new Map<string, ModelTask>();
  const conflicts: { taskId: string; to: number }[] = [];
  const stops: StopCall[] = [];
  const logger = memoryLogger();
  const destination = (side: Delivery['side']) => async (record: DestinationRecord) => {
    const id = record.requestContext.requestId;
    const list = deliveries.get(id) ?? [];
    deliveries.set(id, list);
    list.push({ side, record, at: Date.now() });
    seen.add(`ended "${record.requestContext.condition}"`);
    log.push(`  (${Date.now() - T0} ms: ${side} of ${id}, "${record.requestContext.condition}")`);
    if (cfg.slowDestinations) await new Promise((resolve) => setTimeout(resolve, 1 + g.int(200)));
  };
  const kept =
    cfg.retentionMs === undefined
      ? { maxTasks: cfg.maxTasks }
      : { maxTasks: cfg.maxTasks, retentionMs: cfg.retentionMs };
  const faults = { rate: cfg.faultRate };
  const backend: AsyncBackend = slow ? slowMemory(g, kept, faults) : memory(kept);
  const handler = createFcHandler(makeApp(calls, log), {
    logger,
    env: {},
    async: {
      mode: 'local',
      backend,
      concurrency: cfg.concurrency,
      maxQueuedTasks: cfg.maxQueuedTasks,
      maxAsyncRetryAttempts: cfg.retries,
      maxAsyncEventAgeInSeconds: cfg.maxAgeS,
      timeoutSeconds: cfg.timeoutS,
      stopGraceMs: cfg.stopGraceMs,
      backoff: { baseMs: cfg.baseMs, maxMs: 2000, jitter: cfg.jitter },
    },
    destinations: { onSuccess: destination('onSuccess'), onFailure: destination('onFailure') },
  });
  const ids: string[] = [];
  const now = () => Date.now() - T0;

  const accept = async (taskId: string | undefined, delay: number, plan: string[]) => {
    const headers: Record<string, string> = { 'x-fc-invocation-type': 'Async', 'x-plan': plan.join(',') };
    if (taskId !== undefined) headers['x-fc-async-task-id'] = taskId;
    if (delay > 0) headers['x-fc-async-delay'] = String(delay);
    const acceptedFrom = Date.now();
    const startSeq = ++seq;
    const result = await handler(fcHttpEvent({ method: 'POST', url: '/job', headers }));
    log.push(`  (${now()} ms: accept ${taskId ?? '(request id)'} delay ${delay} plan ${plan} → ${result.statusCode})`);
    seen.add(`accept ${result.statusCode}`);
    if (result.statusCode === 409 && taskId !== undefined) {
      conflicts.push({ taskId, to: Date.now() });
      return;
    }
    // Refused while maxQueuedTasks wait: nothing was queued (a destination call for it would show).
    if (result.statusCode === 429 && cfg.maxQueuedTasks < 10_000) return;
    // The store refused the insert: nothing was accepted.
    if (result.statusCode >= 500 && cfg.faultRate > 0) return;
    if (result.statusCode !== 202) {
      problems.push(`accept answered ${result.statusCode}: ${result.body}`);
      return;
    }
    const requestId = String(result.headers?.['x-fc-request-id']);
    const id = String(result.headers?.['x-fc-async-task-id']);
    if ([...model.values()].some((other) => other.taskId === id)) seen.add('id reused');
    if (taskId !== undefined && id !== taskId) problems.push(`202 names task ${id}, asked for ${taskId}`);
    if (taskId === undefined && id !== requestId) problems.push(`202 task id ${id} is not its request id`);
    for (const other of model.values()) {
      if (other.taskId !== id || other.startSeq > startSeq) continue;
      // Its id is free again only once the earlier task ended and its record went (maxTasks).
      const delivered = deliveries.get(other.requestId)?.[0];
      if (!delivered || delivered.at > Date.now())
        problems.push(`202 for ${id} while ${other.requestId} has not ended`);
      if (cfg.maxTasks === 10_000 && cfg.retentionMs === undefined)
        problems.push(`202 for ${id}, the id of a finished task still kept`);
    }
    const m: ModelTask = {
      taskId: id,
      requestId,
      acceptedFrom,
      acceptedTo: Date.now(),
      startSeq,
      delayMs: delay * 1000,
      stops: [],
    };
    model.set(requestId, m);
    if ((latest.get(id)?.startSeq ?? 0) < startSeq) latest.set(id, m);
    if (!ids.includes(id)) ids.push(id);
  };

  const stop = async (taskId: string) => {
    const from = Date.now();
    const m = latest.get(taskId);
    let result = 'ok';
    let requestId: string | undefined;
    const issued = ++seq;
    try {
      const task = await handler.tasks.stop(taskId);
      requestId = task.requestId;
      seen.add(`stop answered ${task.status}`);
      if (task.status !== 'Stopped' && task.status !== 'Stopping') {
        problems.push(`stop of ${taskId} answered status ${task.status}`);
      }
      if (model.has(task.requestId)) checkObserved(task, issued, model, cfg, problems);
    } catch (error) {
      if (!isFcAsyncError(error) && !(cfg.faultRate > 0 && String(error).includes('store unavailable'))) throw error;
      result = isFcAsyncError(error) ? error.code : 'StoreError';
      seen.add(`stop refused ${result}`);
    }
    const to = Date.now();
    log.push(`  (${now()} ms: stop ${taskId} → ${result})`);
    stops.push({ taskId, from, to, result, requestId, fromSeq: issued, toSeq: ++seq });
    // Its record goes (maxTasks) only once it ended and its destination was called.
    if (result === 'AsyncTaskNotFound' && m && !deliveries.has(m.requestId)) {
      problems.push(`stop of ${taskId}: not found, though ${m.requestId} has not ended`);
    } else if (!['ok', 'AsyncTaskNotFound', 'AsyncTaskAlreadyFinished', 'StoreError'].includes(result)) {
      problems.push(`stop of ${taskId} refused with ${result}`);
    }
  };

  const inflight: Promise<unknown>[] = [];
  /** Runs an operation to its end, or leaves it under way (to race with what comes next). */
  const run = async (what: string, op: () => Promise<void>) => {
    const promise = op().catch((error: unknown) => {
      problems.push(`${what} threw ${String(error)}`);
    });
    if (g.chance(0.35)) {
      log.push(`${what} (left under way)`);
      inflight.push(promise);
    } else {
      log.push(what);
      if (!(await settle(promise))) problems.push(`${what} never answered`);
    }
  };

  let closeStartedAt = Number.POSITIVE_INFINITY;
  try {
    for (let step = 4 + g.int(22); step > 0; step--) {
      const op = g.next();
      if (op < 0.4) {
        // A request id is no caller's task id (FC's rule): only caller ids are reused.
        const named = ids.filter((id) => id.startsWith('t_'));
        const reuse = named.length > 0 && g.chance(0.25);
        const taskId = reuse ? g.pick(named) : g.chance(0.25) ? undefined : `t_${step}`;
        if (taskId !== undefined && !ids.includes(taskId)) ids.push(taskId);
        const delay = g.chance(0.2) ? 1 + g.int(3) : 0;
        const plan = randomPlan(g);
        await run(`accept ${taskId ?? '(request id)'}`, () => accept(taskId, delay, plan));
      } else if (op < 0.55) {
        const taskId = ids.length > 0 && g.chance(0.9) ? g.pick(ids) : 'unknown_task';
        await run(`stop ${taskId}`, () => stop(taskId));
      } else if (op < 0.85) {
        const ms = g.pick([0, 1, 10, 100, 300, 1000, 2500]);
        log.push(`advance ${ms} ms (at ${now()})`);
        await vi.advanceTimersByTimeAsync(ms);
      } else if (op < 0.92) {
        const taskId = ids.length > 0 ? g.pick(ids) : 'unknown_task';
        await run(`get ${taskId}`, async () => {
          const issued = ++seq;
          const task = await handler.tasks.get(taskId);
          if (task && model.has(task.requestId)) checkObserved(task, issued, model, cfg, problems);
        });
      } else if (op < 0.97) {
        await run('list', async () => {
          const issued = ++seq;
          const page = await handler.tasks.list({ limit: 100 });
          for (const task of page.tasks) {
            if (model.has(task.requestId)) checkObserved(task, issued, model, cfg, problems);
          }
        });
      } else {
        const before = [...model.values()];
        const done = await settle(handler.drain(), 300_000);
        log.push(`drain at ${now()} → ${done ? 'drained' : 'hung'}`);
        if (!done) problems.push('drain() did not resolve');
        for (const m of before) {
          if (done && !deliveries.has(m.requestId))
            problems.push(`drained, but ${m.requestId} has no destination call`);
        }
      }
    }
    const timeoutMs = g.pick([0, 10, 500, 3000]);
    closeStartedAt = Date.now();
    // The store is up again: close() can record every end.
    faults.rate = 0;
    log.push(`close at ${now()} with timeoutMs ${timeoutMs}`);
    const closed = await settle(
      handler.close({ timeoutMs }).then(() => Date.now()),
      300_000,
    );
    log.push(`closed at ${closed ? closed.value - T0 : 'never'}`);
    // Past its timeout, close() stops what is left, gives the stopped a grace and their onFailure
    // calls 2 s, then cuts deliveries short (100 ms to record it); the store's answers add a little.
    const bound = timeoutMs + Math.max(cfg.stopGraceMs, 100) + 2000 + 100 + 200;
    if (!closed) problems.push('close() did not resolve');
    else if (closed.value - closeStartedAt > bound) problems.push(`close() took ${closed.value - closeStartedAt} ms`);
    if (!(await settle(Promise.all(inflight), 10_000))) problems.push('operations under way at close never ended');
    if (!(await settle(handler.drain(), 10_000))) problems.push('drain() after close() did not resolve');
    for (const stopCall of stops) {
      const target = stopCall.result === 'ok' ? model.get(stopCall.requestId ?? '') : stoppedTask(stopCall, model);
      if (stopCall.result === 'ok' && !target) problems.push(`stop of ${stopCall.taskId} answered an unknown task`);
      target?.stops.push({ from: stopCall.from, at: stopCall.to, result: stopCall.result });
    }
    for (const { taskId, to } of conflicts) {
      if (![...model.values()].some((m) => m.taskId === taskId && m.acceptedFrom <= to)) {
        problems.push(`409 for ${taskId}, no task of that id`);
      }
    }
    for (const m of model.values()) {
      const view = latest.get(m.taskId) === m ? (await settle(handler.tasks.get(m.taskId)))?.value : undefined;
      const mine = view?.requestId === m.requestId ? view : undefined;
      const taskCalls = calls.get(m.requestId) ?? [];
      checkModelTask(m, mine, taskCalls, deliveries.get(m.requestId) ?? [], cfg, closeStartedAt, slow, problems);
    }
    for (const id of deliveries.keys()) if (!model.has(id)) problems.push(`destination called for unknown ${id}`);
    for (const e of logger.entries) {
      // A delivery still under way once close() is past its timeout and grace is cut (documented).
      // A store that refuses writes is logged.
      const refused = cfg.faultRate > 0 && String(e.fields?.error).includes('store unavailable');
      // The app's own failures (its plans throw, reject and destroy) are logged, with their stacks.
      const appFailed = e.message === 'async attempt failed';
      if (e.level === 'error' && e.fields?.code !== 'DestinationAborted' && !refused && !appFailed) {
        problems.push(`logged error: ${e.message} ${JSON.stringify(e.fields)}`);
      }
    }
  } finally {
    random.mockRestore();
    vi.useRealTimers();
  }
  return { problems, log };
}

/** The checks of one accepted task once the handler closed. */
function checkModelTask(
  m: ModelTask,
  view: AsyncTask | undefined,
  calls: Call[],
  deliveries: Delivery[],
  cfg: Config,
  closeStartedAt: number,
  slow: boolean,
  problems: string[],
): void {
  const id = `${m.taskId} (${m.requestId})`;
  const say = (text: string) => problems.push(`${id}: ${text}`);
  if (deliveries.length !== 1) say(`${deliveries.length} destination calls`);
  if (calls.length > 1 + cfg.retries) say(`${calls.length} attempts, above 1 + ${cfg.retries}`);
  calls.forEach((c, i) => {
    // A claim written but answered with an error counts as an attempt of its own (interrupted).
    const previous = calls[i - 1]?.attempt ?? -1;
    const numbered = cfg.faultRate > 0 ? c.attempt > previous : c.attempt === i;
    if (!numbered) say(`attempt ${i} ran as attempt ${c.attempt}`);
    // The claim is decided on time; a store's late answer to it delays the call by as much.
    const age = c.at - m.acceptedTo - CLAIM_WRITE_MS;
    if (age > cfg.maxAgeS * 1000) say(`attempt ${i} started ${age} ms after accept`);
    if (c.at < m.acceptedFrom + m.delayMs - 50) say(`attempt ${i} started before its delay`);
  });
  const okStop = m.stops.find((s) => s.result === 'ok');
  const delivery = deliveries[0];
  if (view) {
    checkObserved(view, ++seq, new Map([[m.requestId, m]]), cfg, problems);
    if (!TERMINAL.has(view.status)) say(`left ${view.status} after close`);
  }
  if (!delivery) return;
  const { condition, approximateInvokeCount } = delivery.record.requestContext;
  if ((delivery.side === 'onSuccess') !== (condition === '')) say(`${delivery.side} for condition "${condition}"`);
  const status = FAILURE_STATUS[condition];
  if (status === undefined) say(`unknown condition ${condition}`);
  if (view && view.status !== status) say(`status ${view.status} with condition "${condition}"`);
  if (m.terminal !== undefined && m.terminal !== status) say(`seen ${m.terminal}, delivered "${condition}"`);
  if (approximateInvokeCount > 1 + cfg.retries) say(`approximateInvokeCount ${approximateInvokeCount}`);
  // A stop that reaches an attempt while its claim is written keeps the app from being called; a
  // claim written but answered with an error counts, with no call (the attempt was interrupted).
  const claimedOnly = status === 'Stopped' && approximateInvokeCount === calls.length + 1;
  const lost = cfg.faultRate > 0 && approximateInvokeCount > calls.length;
  if (approximateInvokeCount !== calls.length && !claimedOnly && !lost) {
    say(`approximateInvokeCount ${approximateInvokeCount}, ${calls.length} calls`);
  }
  if (okStop && status !== 'Stopped') say(`stopped at ${okStop.at - T0}, ended ${status}`);
  // A stop aborts a running attempt: it ends by the grace, give or take the store's answers.
  const late = okStop ? delivery.at - okStop.at - cfg.stopGraceMs : 0;
  if (cfg.faultRate === 0 && late > (slow ? 4 * CLAIM_WRITE_MS : 0)) say(`ended ${late} ms past the stop's grace`);
  // A stop the store answered with an error may have been written all the same.
  const maybeStop = m.stops.find((s) => s.result === 'StoreError');
  if (status === 'Stopped' && !okStop && !maybeStop && delivery.at < closeStartedAt) say('Stopped without a stop');
  if (status === 'Failed' && approximateInvokeCount !== 1 + cfg.retries) say(`Failed after ${calls.length} attempts`);
  if (status === 'Expired') {
    if (delivery.record.timestamp - m.acceptedFrom <= cfg.maxAgeS * 1000) say('Expired before its max age');
    if (approximateInvokeCount >= 1 + cfg.retries) say('Expired with no retry left');
  }
  if (status === 'Succeeded') {
    const last = calls[calls.length - 1];
    if (!last || !(last.behaviour === 'ok' || last.behaviour.startsWith('slow:'))) {
      say(`Succeeded after a ${last?.behaviour ?? 'missing'} attempt`);
    }
  }
  const finished = m.stops.find((s) => s.result === 'AsyncTaskAlreadyFinished');
  const stoppedBefore =
    [okStop, maybeStop].some((s) => s && s.from <= (finished?.at ?? 0)) || delivery.at >= closeStartedAt;
  if (finished && status === 'Stopped' && !stoppedBefore) {
    say('a stop found it finished, yet it ended Stopped');
  }
}

const COVERED = [
  'accept 202',
  'accept 409',
  'accept 429',
  'ended ""',
  'ended "EventAgeExceeded"',
  'ended "InvocationError"',
  'ended "Stopped"',
  'ended "UnhandledInvocationError"',
  'id reused',
  'stop answered Stopped',
  'stop answered Stopping',
  'stop refused AsyncTaskAlreadyFinished',
  'stop refused AsyncTaskNotFound',
];

/** Orders reads and what they saw: a counter bumped as each read begins and as an end is first seen. */
let seq = 0;

const rejections: unknown[] = [];
beforeAll(() => {
  process.on('unhandledRejection', (reason) => rejections.push(reason));
});

afterEach(() => {
  vi.useRealTimers();
});

describe.each([
  { store: 'the memory store', slow: false, base: 20_261_129, covered: COVERED },
  {
    store: 'a store whose writes resolve late (and some fail)',
    slow: true,
    base: 20_261_130,
    covered: [...COVERED, 'accept 500', 'stop refused StoreError'].sort(),
  },
])('the async engine against its model, on $store', ({ slow, base, covered }) => {
  it(`keeps FC's task rules over ${SEQUENCES} random sequences`, async () => {
    const replay = process.env.FUZZ_SEED !== undefined;
    const seen = new Set<string>();
    const first = fuzzSeed(base * 1000);
    for (let i = 0; i < (replay ? 1 : SEQUENCES); i++) {
      const seed = first + i;
      const { problems, log } = await runSequence(seed, slow, seen);
      if (problems.length > 0) {
        throw new Error(
          `seed ${seed} (FUZZ_SEED=${seed}):\n${problems.join('\n')}\n--- operations:\n${log.join('\n')}`,
        );
      }
    }
    expect(rejections).toEqual([]);
    // The sequences reached every way a task ends and every answer of accept and stop.
    if (!replay) expect([...seen].sort()).toEqual(covered);
  });
});

describe('found by the model', () => {
  it('close() waits for a task whose insert the store is still writing, and runs it', async () => {
    const gate = deferred();
    const { handler, successes } = setup(ok, { backend: gatedStore({ insert: gate.promise }).backend });
    await tick();
    const accepting = handler(asyncEvent({ taskId: 'late' }), context);
    const closing = handler.close({ timeoutMs: 1000 });
    gate.resolve();
    expect((await accepting).statusCode).toBe(202);
    await closing;
    // Answered 202: it ran, rather than being left Enqueued on a closed queue with drain() never resolving.
    expect((await handler.tasks.get('late'))?.status).toBe('Succeeded');
    expect(successes).toHaveLength(1);
  });

  it("a stop while an attempt's claim is being written keeps the app from running", async () => {
    const gate = deferred();
    const { backend, claiming } = gatedStore({ claim: gate.promise });
    let ran = 0;
    const { handler, successes, failures } = setup(
      (req, res) => {
        ran++;
        ok(req, res);
      },
      { backend },
    );
    expect((await handler(asyncEvent({ taskId: 'racy' }), context)).statusCode).toBe(202);
    await claiming;
    // The store says Running already; the engine has not heard back from it yet.
    expect((await handler.tasks.stop('racy')).status).toBe('Stopping');
    gate.resolve();
    await handler.drain();
    expect((await handler.tasks.get('racy'))?.status).toBe('Stopped');
    expect(ran).toBe(0);
    expect(successes).toHaveLength(0);
    expect(failures.map((r) => r.requestContext.condition)).toEqual(['Stopped']);
    await handler.close({ timeoutMs: 100 });
  });

  it.each([false, true])(
    'a queued task whose stop the store failed to write (written: %s) still ends, with one destination call',
    async (applied) => {
      const gate = deferred();
      let ran = 0;
      const { handler, successes, failures } = setup(
        async (req, res) => {
          ran++;
          if (getInvocation(req)?.taskId === 'blocker') await gate.promise;
          ok(req, res);
        },
        { concurrency: 1, backend: gatedStore({ fail: { status: 'Stopped', applied } }).backend },
      );
      await handler(asyncEvent({ taskId: 'blocker' }), context);
      await handler(asyncEvent({ taskId: 'queued' }), context);
      await until('the blocker to run', () => ran > 0);
      // Written after all: the stop is one. Not written: it failed, and the task runs.
      const stopping = handler.tasks.stop('queued');
      if (applied) await expect(stopping).resolves.toMatchObject({ status: 'Stopped' });
      else await expect(stopping).rejects.toThrow('store unavailable');
      gate.resolve();
      // Its job was taken out for the stop: without it, the task waited forever and so did drain().
      await Promise.race([handler.drain(), tick(2000)]);
      expect((await handler.tasks.get('queued'))?.status).toBe(applied ? 'Stopped' : 'Succeeded');
      expect(successes.length + failures.length).toBe(2);
      await handler.close({ timeoutMs: 100 });
    },
  );

  it('a stop the store wrote but failed to answer, found Stopped on a second look, ends the task once', async () => {
    const read = deferred();
    const { backend, reading } = gatedStore({ reads: [read.promise], fail: { status: 'Stopped', applied: true } });
    const { handler, successes, failures } = setup(ok, { backend });
    await handler(asyncEvent({ taskId: 'taken' }), context);
    await reading[0]; // its job is reading it: the stop finds no job to take out
    await expect(handler.tasks.stop('taken')).resolves.toMatchObject({ status: 'Stopped' });
    read.resolve();
    // The job finds the task Stopped and leaves it: the stop calls its destination.
    await Promise.race([handler.drain(), tick(2000)]);
    expect(successes).toHaveLength(0);
    expect(failures.map((r) => r.requestContext.condition)).toEqual(['Stopped']);
    await handler.close({ timeoutMs: 100 });
  });

  it('a stop the store wrote but failed to answer, read neither, still ends the task once', async () => {
    // Reads: 0 by its job, 1 by the stop, 2 the stop's second look (refused), 3 by the job it queues again.
    const [firstJob, secondJob, claim] = [deferred(), deferred(), deferred()];
    const { backend, reading, claiming } = gatedStore({
      reads: [firstJob.promise, undefined, 'fail', secondJob.promise],
      claim: claim.promise,
      fail: { status: 'Stopped', applied: true },
    });
    const { handler, failures } = setup(ok, { backend });
    await handler(asyncEvent({ taskId: 'claimed' }), context);
    await reading[0];
    await expect(handler.tasks.stop('claimed')).rejects.toThrow('store unavailable');
    firstJob.resolve();
    await claiming; // the first job's claim, refused (the task is Stopped), is still being answered
    await reading[3];
    secondJob.resolve();
    await tick(50);
    claim.resolve();
    await Promise.race([handler.drain(), tick(2000)]);
    expect(failures.map((r) => r.requestContext.condition)).toEqual(['Stopped']);
    await handler.close({ timeoutMs: 100 });
  });

  it('a stop that read the task before a claim the store wrote but failed to answer still ends it', async () => {
    const stopRead = deferred();
    const { backend, reading } = gatedStore({ reads: [stopRead.promise], fail: { status: 'Running', applied: true } });
    const { handler, failures, logger } = setup(ok, { backend });
    await handler(asyncEvent({ taskId: 'unanswered' }), context);
    const stopping = handler.tasks.stop('unanswered');
    await reading[0]; // the stop read it Enqueued
    // Its job claims it: the store writes Running, answers with an error, and the job is tried again later.
    await until('the failed write of Running', () =>
      logger.entries.some((e) => e.message === 'async task bookkeeping failed'),
    );
    stopRead.resolve();
    // The stop takes that job out, finds the task Running, and asks it to stop: the job must still come.
    expect((await stopping).status).toBe('Stopping');
    await Promise.race([handler.drain(), tick(2000)]);
    expect((await handler.tasks.get('unanswered'))?.status).toBe('Stopped');
    expect(failures.map((r) => r.requestContext.condition)).toEqual(['Stopped']);
    await handler.close({ timeoutMs: 100 });
  });

  it('close() past its timeout waits for an end the store wrote but failed to answer, and delivers it', async () => {
    vi.useFakeTimers({ now: T0 });
    const { backend } = gatedStore({ fail: { status: 'Succeeded', applied: true } });
    // A short grace: nothing is left to stop, and the job comes back after it.
    const { handler, successes, logger } = setup(ok, { backend, stopGraceMs: 0 });
    await vi.advanceTimersByTimeAsync(0);
    await handler(asyncEvent({ taskId: 'unanswered' }), context);
    await vi.advanceTimersByTimeAsync(10);
    // Its end is written, answered with an error, and its job tried again a second later.
    expect(logger.entries.map((e) => e.message)).toContain('async task bookkeeping failed');
    const closing = handler.close({ timeoutMs: 0 });
    await vi.advanceTimersByTimeAsync(5000);
    await closing;
    expect((await handler.tasks.get('unanswered'))?.status).toBe('Succeeded');
    expect(successes).toHaveLength(1);
  });

  it('a destination whose record the store failed to update is called once, and the task counted done once', async () => {
    vi.useFakeTimers({ now: T0 });
    // Reads: 0 by the job of 'once', held while a stop ends the task.
    const read = deferred();
    const { backend, reading } = gatedStore({
      reads: [read.promise],
      // The job's claim fails, so it comes back a second later; the stop's record of its delivery fails.
      fail: { status: 'Running', applied: false },
      failUpdate: { applied: false },
    });
    const { handler, successes, failures } = setup(
      async (_req, res) => {
        await tick(20);
        res.end('late');
      },
      { backend },
    );
    await vi.advanceTimersByTimeAsync(0);
    await handler(asyncEvent({ taskId: 'once' }), context);
    await vi.advanceTimersByTimeAsync(0);
    await reading[0];
    await expect(handler.tasks.stop('once')).resolves.toMatchObject({ status: 'Stopped' });
    read.resolve();
    // The job comes back, finds the task ended with its delivery unrecorded, and leaves it.
    await vi.advanceTimersByTimeAsync(1200);
    expect(failures.map((r) => r.requestContext.condition)).toEqual(['Stopped']);
    // Counted done once: drain() waits for a task accepted now, not past it.
    await handler(asyncEvent({ taskId: 'next' }), context);
    const atDrain = handler.drain().then(() => handler.tasks.get('next'));
    await vi.advanceTimersByTimeAsync(2000);
    expect((await atDrain)?.status).toBe('Succeeded');
    expect(successes).toHaveLength(1);
    await closed(handler);
  });

  it.each([true, false])(
    'with no destination, a task whose end the store failed to write (written: %s) ends, and drain() resolves',
    async (applied) => {
      vi.useFakeTimers({ now: T0 });
      const { backend } = gatedStore({ fail: { status: 'Succeeded', applied } });
      const { handler } = setup(ok, { backend }, { destinations: {} });
      await vi.advanceTimersByTimeAsync(0);
      await handler(asyncEvent({ taskId: 'quiet' }), context);
      let drained = false;
      void handler.drain().then(() => {
        drained = true;
      });
      await vi.advanceTimersByTimeAsync(3000);
      expect(drained).toBe(true);
      expect((await handler.tasks.get('quiet'))?.status).toBe('Succeeded');
      await closed(handler);
    },
  );

  it('a task the queue refused, whose Invalid the store refused too, answers 503 and is not waited for', async () => {
    const { backend } = gatedStore({ fail: { status: 'Invalid', applied: false } });
    const { handler } = setup(ok, { backend: refusingQueue(backend) });
    const response = await handler(asyncEvent({ taskId: 'unqueued' }), context);
    expect(response.statusCode).toBe(503);
    const drained = await Promise.race([handler.drain().then(() => 'drained'), tick(1000).then(() => 'hung')]);
    expect(drained).toBe('drained');
    await handler.close({ timeoutMs: 100 });
  });

  /**
   * Accepts `taskId` on `backend` while `gate` holds its insert or enqueue, stops it meanwhile,
   * then lets the accept go on: it answers `status`, the task ends Stopped with one onFailure
   * call, and is counted done once (drain() waits for a task accepted after it).
   */
  async function stopDuringAccept(
    backend: AsyncBackend,
    gate: { resolve: () => void },
    taskId: string,
    status: number,
  ) {
    const { handler, successes, failures } = setup(
      async (_req, res) => {
        await tick(20);
        res.end('late');
      },
      { backend },
    );
    await tick();
    const accepting = handler(asyncEvent({ taskId }), context);
    await until('the task in the store', async () => (await handler.tasks.get(taskId)) !== undefined);
    // The store holds it already: the stop ends it, and counts it done.
    await expect(handler.tasks.stop(taskId)).resolves.toMatchObject({ status: 'Stopped' });
    gate.resolve();
    expect((await accepting).statusCode).toBe(status);
    expect(failures.map((r) => r.requestContext.condition)).toEqual(['Stopped']);
    // Counted done once, not again by the failed accept: drain() waits for a task accepted now.
    await handler(asyncEvent({ taskId: 'next' }), context);
    await Promise.race([handler.drain(), tick(2000)]);
    expect((await handler.tasks.get('next'))?.status).toBe('Succeeded');
    expect(successes).toHaveLength(1);
    await handler.close({ timeoutMs: 100 });
  }

  it('a task stopped while the queue refused it is counted done once', async () => {
    const gate = deferred();
    await stopDuringAccept(refusingQueue(memory(), gate.promise), gate, 'raced', 503);
  });

  it('a task stopped while its insert was written, then answered with an error, is counted done once', async () => {
    const gate = deferred();
    await stopDuringAccept(gatedStore({ insert: gate.promise, failInsert: true }).backend, gate, 'unanswered', 500);
  });

  it('a stop whose Stopping the store wrote but failed to answer aborts the running attempt', async () => {
    const { backend } = gatedStore({ fail: { status: 'Stopping', applied: true } });
    let aborted = false;
    const { handler, failures } = setup(
      (req, res) => {
        getInvocation(req)?.signal.addEventListener('abort', () => {
          aborted = true;
          res.statusCode = 503;
          res.end('aborted');
        });
      },
      // Only the abort ends the attempt: no timeout, and a grace longer than the test.
      { backend, stopGraceMs: 60_000, timeoutSeconds: 600 },
    );
    await handler(asyncEvent({ taskId: 'busy' }), context);
    await until('the task to run', async () => (await handler.tasks.get('busy'))?.status === 'Running');
    await expect(handler.tasks.stop('busy')).resolves.toMatchObject({ status: 'Stopping' });
    await Promise.race([handler.drain(), tick(2000)]);
    expect(aborted).toBe(true);
    expect((await handler.tasks.get('busy'))?.status).toBe('Stopped');
    expect(failures.map((r) => r.requestContext.condition)).toEqual(['Stopped']);
    await handler.close({ timeoutMs: 100 });
  });

  it('a job of an earlier task of the same id does not clear the refused write of the task now under it', async () => {
    vi.useFakeTimers({ now: T0 });
    const updated = deferred();
    const { backend } = gatedStore({
      // The first task's delivery is recorded at once (its record goes: maxTasks 0), answered later.
      update: updated.promise,
      kept: { maxTasks: 0 },
      // The second task's claim is written, but answered with an error: its job comes back.
      fail: { status: 'Running', applied: true, skip: 1 },
    });
    const { handler, successes, logger } = setup(ok, { backend });
    await vi.advanceTimersByTimeAsync(0);
    await handler(asyncEvent({ taskId: 'reused' }), context);
    await vi.advanceTimersByTimeAsync(10);
    expect(successes).toHaveLength(1);
    expect((await handler(asyncEvent({ taskId: 'reused' }), context)).statusCode).toBe(202);
    await vi.advanceTimersByTimeAsync(10);
    expect(logger.entries.map((e) => e.message)).toContain('async task bookkeeping failed');
    updated.resolve(); // the first task's job ends now
    let drained = false;
    void handler.drain().then(() => {
      drained = true;
    });
    await vi.advanceTimersByTimeAsync(3000);
    expect(drained).toBe(true);
    expect(new Set(successes.map((r) => r.requestContext.requestId)).size).toBe(2);
    await closed(handler);
  });

  it('close() past its timeout waits for an end the store refuses only after close() looked', async () => {
    vi.useFakeTimers({ now: T0 });
    const answer = deferred();
    const { backend } = gatedStore({ fail: { status: 'Succeeded', applied: true, answer: answer.promise } });
    const { handler, successes } = setup(ok, { backend, stopGraceMs: 0 });
    await vi.advanceTimersByTimeAsync(0);
    await handler(asyncEvent({ taskId: 'unanswered' }), context);
    await vi.advanceTimersByTimeAsync(10);
    // Its end is written; the answer is still to come. close() finds nothing unfinished or refused.
    const closing = handler.close({ timeoutMs: 0 });
    await vi.advanceTimersByTimeAsync(0);
    answer.resolve(); // refused: its job is tried again a second later
    await vi.advanceTimersByTimeAsync(5000);
    await closing;
    expect(successes).toHaveLength(1);
  });
});

/** Closes a handler under fake timers. */
async function closed(handler: { close(options: { timeoutMs: number }): Promise<void> }): Promise<void> {
  const closing = handler.close({ timeoutMs: 100 });
  await vi.advanceTimersByTimeAsync(5000);
  await closing;
}

/** `backend` with a queue that refuses its first job: at once, or once `gate` settles. */
function refusingQueue(backend: AsyncBackend, gate?: Promise<void>): AsyncBackend {
  return {
    name: 'refusing-queue',
    persistent: false,
    create: async (context) => {
      const { store, queue } = await backend.create(context);
      const enqueue = queue.enqueue.bind(queue);
      let refused = false;
      queue.enqueue = (job, delayMs) => {
        if (refused) return enqueue(job, delayMs);
        refused = true;
        if (gate) return gate.then(() => Promise.reject(new Error('queue unavailable')));
        throw new Error('queue unavailable');
      };
      return { store, queue };
    },
  };
}
