import { afterEach, describe, expect, it, vi } from 'vitest';
import { Deadlines } from '../src/async/deadlines.js';
import { taskRecord } from '../src/conformance.js';
import { getInvocation, type Invocation, MemoryTaskStore, PQueueDriver, RetentionPruner } from '../src/index.js';
import { asyncEvent, event, memoryLogger, setup } from './helpers.js';

const DAY_MS = 24 * 3600 * 1000;

/** Inserts `taskId` and ends it `Succeeded` now. */
function finish(store: MemoryTaskStore, taskId: string): void {
  store.insert(taskRecord(taskId, { startedTime: Date.now() }));
  store.transition(taskId, 'Succeeded', { from: ['Enqueued'], patch: { endTime: Date.now() } });
}

const listed = (store: MemoryTaskStore) =>
  store.list({ sortOrderByTime: 'asc', limit: 100 }).tasks.map((t) => t.taskId);

// Behaviour of the in-process queue and the memory store that the mutation audit of session 21
// found no test holding.

afterEach(() => {
  vi.useRealTimers();
});

describe('MemoryTaskStore: a task whose destination call outlived its place', () => {
  it('keeps the task through an update that leaves its destination call owed (a persistent backend notes who took it)', () => {
    const store = new MemoryTaskStore({ maxTasks: 0 });
    store.insert(taskRecord('owed'));
    store.transition('owed', 'Succeeded', {
      from: ['Enqueued'],
      patch: { endTime: Date.now(), deliveryPending: true },
    });
    store.update('owed', { deliveredTo: [0] });
    expect(store.get('owed')).toMatchObject({ deliveryPending: true, deliveredTo: [0] });
    store.update('owed', { deliveryPending: undefined, deliveredTo: undefined, destinationStatus: 'Succeeded' });
    expect(store.get('owed')).toBeUndefined();
  });
});

describe('MemoryTaskStore: retentionMs', () => {
  it('keeps a finished task 7 days by default, to the millisecond, and lists none older', () => {
    vi.useFakeTimers({ now: 1_700_000_000_000 });
    const store = new MemoryTaskStore();
    finish(store, 'week_old');
    vi.setSystemTime(1_700_000_000_000 + 7 * DAY_MS);
    expect(listed(store)).toEqual(['week_old']);
    vi.setSystemTime(1_700_000_000_000 + 7 * DAY_MS + 1);
    // Nothing finished since: list() reads the clock itself, as get() does.
    expect(listed(store)).toEqual([]);
    expect(store.size).toBe(0);
  });

  it('drops by age in the order tasks finished after more than a thousand went past maxTasks', () => {
    vi.useFakeTimers({ now: 1_700_000_000_000 });
    const store = new MemoryTaskStore({ maxTasks: 1000, retentionMs: 60_000 });
    // One a millisecond: 1100 go past maxTasks, and the store compacts what it keeps of the order.
    for (let i = 0; i < 2100; i++) {
      finish(store, `t${String(i).padStart(4, '0')}`);
      vi.advanceTimersByTime(1);
    }
    expect(store.size).toBe(1000);
    // t1100 finished at +1100 ms: 60 s later it is the only one past retentionMs.
    vi.setSystemTime(1_700_000_000_000 + 1100 + 60_001);
    const kept = store.list({ sortOrderByTime: 'asc', limit: 1 }).tasks.map((t) => t.taskId);
    expect([kept, store.size]).toEqual([['t1101'], 999]);
  });
});

describe('ListAsyncTasks page tokens', () => {
  it('pages every task listed once, none twice, while tasks are accepted between pages in the same millisecond', () => {
    vi.useFakeTimers({ now: 1_700_000_000_000 });
    for (const sortOrderByTime of ['asc', 'desc'] as const) {
      const store = new MemoryTaskStore();
      const before = Array.from({ length: 9 }, (_, i) => `t_${i}`);
      // Several tasks in each millisecond: the task id breaks their ties.
      for (const [i, id] of before.entries()) {
        if (i % 3 === 0) vi.advanceTimersByTime(1);
        store.insert(taskRecord(id, { startedTime: Date.now() }));
      }
      const seen: string[] = [];
      let nextToken: string | undefined;
      let added = 0;
      do {
        const page = store.list({ sortOrderByTime, limit: 2, ...(nextToken ? { nextToken } : {}) });
        seen.push(...page.tasks.map((t) => t.taskId));
        nextToken = page.nextToken;
        // Accepted meanwhile, in the millisecond of the last tasks: before and after the cursor's id.
        for (const id of [`a_${added}`, `u_${added++}`]) store.insert(taskRecord(id, { startedTime: Date.now() }));
      } while (nextToken);
      expect(new Set(seen).size, `${sortOrderByTime}: no task twice`).toBe(seen.length);
      expect(
        before.filter((id) => !seen.includes(id)),
        `${sortOrderByTime}: none skipped`,
      ).toEqual([]);
    }
  });

  it('refuses with 400 InvalidArgument an issued token whose position was tampered with (its query tag intact)', () => {
    const store = new MemoryTaskStore();
    for (const id of ['t_a', 't_b', 't_c']) finish(store, id);
    const token = store.list({ limit: 1 }).nextToken as string;
    expect(store.list({ limit: 1, nextToken: token }).tasks).toHaveLength(1);
    const issued = JSON.parse(Buffer.from(token, 'base64url').toString()) as unknown[];
    const forge = (parts: unknown[]) => Buffer.from(JSON.stringify(parts)).toString('base64url');
    for (const forged of [
      forge([String(issued[0]), ...issued.slice(1)]),
      forge([issued[0], 7, ...issued.slice(2)]),
      forge([null, null, ...issued.slice(2)]),
    ]) {
      expect(() => store.list({ limit: 1, nextToken: forged })).toThrow(
        expect.objectContaining({ code: 'InvalidArgument', statusCode: 400 }),
      );
    }
  });
});

describe('PQueueDriver', () => {
  it('runs a delayed job in due order after a stop of another reshapes its heap', async () => {
    vi.useFakeTimers({ now: 1_700_000_000_000 });
    const ran: string[] = [];
    const queue = new PQueueDriver(1);
    queue.start(async ({ taskId }) => {
      ran.push(taskId);
      return undefined;
    });
    // The stop moves the heap's last entry (37 ms) under one due later (44 ms): it must move up.
    for (const ms of [65, 44, 4, 57, 81, 37, 23]) queue.enqueue({ taskId: `d${ms}` }, ms);
    expect(queue.cancel('d65')).toBe(true);
    await vi.advanceTimersByTimeAsync(37);
    expect(ran).toEqual(['d4', 'd23', 'd37']);
    await vi.advanceTimersByTimeAsync(81 - 37);
    expect(ran).toEqual(['d4', 'd23', 'd37', 'd44', 'd57', 'd81']);
  });

  it('ignores a job enqueued after close(): it never runs, and no timer holds the process for it', async () => {
    vi.useFakeTimers({ now: 1_700_000_000_000 });
    const ran: string[] = [];
    const queue = new PQueueDriver(1);
    queue.start(async ({ taskId }) => {
      ran.push(taskId);
      return undefined;
    });
    queue.close();
    queue.enqueue({ taskId: 'late' }, 3_600_000);
    queue.enqueue({ taskId: 'now' }, 0);
    expect([queue.pending(), vi.getTimerCount()]).toEqual([0, 0]);
    await vi.advanceTimersByTimeAsync(3_600_000);
    expect(ran).toEqual([]);
  });
});

describe('RetentionPruner', () => {
  it('lets other work run between its batches: each step in its own turn of the event loop', async () => {
    const turns: string[] = [];
    class Pruner extends RetentionPruner {
      left = 6;
      constructor() {
        super(60_000, 2, memoryLogger());
      }
      protected async step(): Promise<number> {
        turns.push('step');
        // A request arriving meanwhile: it runs before the next step.
        setImmediate(() => turns.push('request'));
        const n = Math.min(2, this.left);
        this.left -= n;
        return n;
      }
    }
    const pruner = new Pruner();
    expect(await pruner.run()).toBe(6);
    pruner.stop();
    expect(turns).toEqual(['step', 'request', 'step', 'request', 'step', 'request', 'step']);
  });
});

describe('Deadlines (attempt and destination call timeouts)', () => {
  it('a timeout cleared after it fired, or twice, leaves the others pending', async () => {
    vi.useFakeTimers({ now: 1_700_000_000_000 });
    const fired: string[] = [];
    const timeouts = new Deadlines(100);
    const first = timeouts.add(() => fired.push('first'));
    await vi.advanceTimersByTimeAsync(50);
    const second = timeouts.add(() => fired.push('second'));
    const third = timeouts.add(() => fired.push('third'));
    await vi.advanceTimersByTimeAsync(50);
    expect(fired).toEqual(['first']);
    // The attempt that timed out settles, and clears its timeout as every attempt and destination call does.
    first.clear();
    third.clear();
    third.clear();
    await vi.advanceTimersByTimeAsync(50);
    expect(fired).toEqual(['first', 'second']);
    second.clear();
    timeouts.idle();
    expect(vi.getTimerCount()).toBe(0);
  });
});

describe("a local async attempt's region and account", () => {
  it("are the call's FC headers before the environment, as a sync call's are", async () => {
    const seen: Invocation[] = [];
    const { handler } = setup(
      (req, res) => {
        seen.push(getInvocation(req) as Invocation);
        res.end('ok');
      },
      {},
      { env: { FC_REGION: 'cn-beijing', FC_ACCOUNT_ID: '999' } },
    );
    // `local` and `0` are also the task ARN's stand-ins for none: the attempt looks further.
    const headers = { 'x-fc-function-name': 'demo', 'x-fc-region': 'local', 'x-fc-account-id': '0' };
    await handler(event({ method: 'POST', path: '/', headers }));
    await handler(asyncEvent({ method: 'POST', path: '/', taskId: 'where_1', headers }));
    await handler.drain();
    expect(seen.map((i) => [i.type, i.region, i.accountId])).toEqual([
      ['Sync', 'local', '0'],
      ['Async', 'local', '0'],
    ]);
    await handler.close({ timeoutMs: 1000 });
  });
});
