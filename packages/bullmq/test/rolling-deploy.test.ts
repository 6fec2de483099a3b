import type { ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import type { AsyncTask, DestinationRecord } from '@fc-async/core';
import { type PENDING, within } from '@fc-async/test-kit/wait';
import { afterEach, beforeEach, describe, expect, inject, it } from 'vitest';
import { uniquePrefix, until } from './helpers.js';
import { type Instance, Instances, type Reported } from './instances.js';

// A rolling deploy: instance A (the old one) is sent SIGTERM while requests keep coming, and
// instance B (the new one) takes over. Both are worker processes on one Redis and one prefix
// (fixtures/instance.ts: SIGTERM closes the server, then handler.close({ timeoutMs: 2000 })).

let cluster: Instances;
let reported: Reported[];
let deliveries: DestinationRecord[];
const start = (prefix: string) => cluster.start(prefix, 'worker');

beforeEach(async () => {
  cluster = await Instances.open(inject('redisUrl'));
  reported = cluster.reported;
  deliveries = cluster.deliveries;
});

afterEach(() => cluster.close());

/** The status of an async POST, or `null` when the instance refused or cut the connection. */
async function post(instance: Instance, taskId: string, body: Record<string, number>): Promise<number | null> {
  try {
    const response = await fetch(`http://127.0.0.1:${instance.port}/work`, {
      method: 'POST',
      headers: {
        'x-fc-invocation-type': 'Async',
        'x-fc-async-task-id': taskId,
        'content-type': 'application/json',
      },
      body: JSON.stringify(body),
      signal: AbortSignal.timeout(15_000),
    });
    await response.arrayBuffer();
    return response.status;
  } catch {
    return null;
  }
}

async function get<T>(instance: Instance, path: string): Promise<T> {
  const response = await fetch(`http://127.0.0.1:${instance.port}${path}`, { signal: AbortSignal.timeout(15_000) });
  return (await response.json()) as T;
}

const eventsOf = (taskId: string) => reported.filter((r) => r.taskId === taskId);
const deliveriesOf = (task: AsyncTask) => deliveries.filter((d) => d.requestContext.requestId === task.requestId);

/** Each attempt's start is followed by its end before the next starts: never two at once. */
function overlaps(taskId: string): Reported[] | undefined {
  let open: Reported | undefined;
  for (const event of eventsOf(taskId)) {
    if (event.type === 'started') {
      if (open) return [open, event];
      open = event;
    } else open = undefined;
  }
  return undefined;
}

async function exited(child: ChildProcess, ms: number): Promise<number | null | typeof PENDING> {
  if (child.exitCode !== null || child.signalCode !== null) return child.exitCode;
  return within(
    once(child, 'exit').then(([code]) => code as number | null),
    ms,
  );
}

describe('bullmq(): a rolling deploy, old instance sent SIGTERM while requests keep coming', () => {
  it('every task accepted on either instance ends once with one destination call; those cut on A run on B, never at once', async () => {
    const prefix = uniquePrefix();
    const [a, b] = [await start(prefix), await start(prefix)];
    const accepted = new Set<string>();
    // Long tasks (4 s, past A's 2 s close timeout) until A runs one of them.
    for (let i = 0; i < 8; i++) {
      expect(await post(a, `long_${i}`, { ms: 4000, retryMs: 100 })).toBe(202);
      accepted.add(`long_${i}`);
    }
    await until('instance A to run a long task', () =>
      reported.some((r) => r.type === 'started' && r.pid === a.child.pid),
    );

    // A steady stream to A, then to B once A refuses: the load balancer's retry, with the task id.
    let sigterm = false;
    const refusedByA: string[] = [];
    for (let i = 0; i < 40; i++) {
      const id = `flow_${String(i).padStart(2, '0')}`;
      if (i === 8) {
        a.child.kill('SIGTERM');
        sigterm = true;
      }
      let status = await post(a, id, { ms: 200 });
      if (status === null || status === 503) {
        if (sigterm) refusedByA.push(id);
        status = await post(b, id, { ms: 200 });
      }
      // 409: A stored it before its answer was cut; the task exists all the same.
      expect([id, status === 202 || status === 409]).toEqual([id, true]);
      accepted.add(id);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    expect(refusedByA.length).toBeGreaterThan(0);
    expect(await exited(a.child, 20_000)).toBe(0);

    const ids = [...accepted];
    let tasks: (AsyncTask | null)[] = [];
    await until(
      'every accepted task to end and be delivered',
      async () => {
        tasks = await Promise.all(ids.map((id) => get<AsyncTask | null>(b, `/_tasks/${id}`)));
        return tasks.every((t) => t?.status === 'Succeeded' && t.destinationStatus !== undefined);
      },
      45_000,
    );
    await until('one destination call per task', () => deliveries.length >= ids.length, 10_000);
    for (const task of tasks as AsyncTask[]) {
      expect([task.taskId, deliveriesOf(task).length, overlaps(task.taskId)]).toEqual([task.taskId, 1, undefined]);
    }
    expect(deliveries).toHaveLength(ids.length);
    // The long tasks A was running when it closed: aborted there, run again on B under the same
    // attempt number (not the function's failure), and ended there.
    const cut = ids.filter((id) => eventsOf(id).some((e) => e.type === 'aborted' && e.pid === a.child.pid));
    expect(cut.length).toBeGreaterThan(0);
    for (const id of cut) {
      expect(eventsOf(id).map((e) => [e.type, e.pid === a.child.pid ? 'A' : 'B', e.attempt])).toEqual([
        ['started', 'A', 0],
        ['aborted', 'A', undefined],
        ['started', 'B', 0],
        ['ended', 'B', undefined],
      ]);
      const task = tasks.find((t) => t?.taskId === id) as AsyncTask;
      expect([id, task.alreadyRetriedTimes, task.instanceId]).toEqual([id, 0, `worker-${b.child.pid}`]);
    }
    // Nothing else ran twice.
    for (const id of ids.filter((id) => !cut.includes(id))) {
      expect([id, eventsOf(id).filter((e) => e.type === 'started').length]).toEqual([id, 1]);
    }
  }, 120_000);

  it('a stop sent to B during A’s shutdown aborts the attempt on A: Stopped, one onFailure, never run on B', async () => {
    const prefix = uniquePrefix();
    const [a, b] = [await start(prefix), await start(prefix)];
    // Both busy with fillers so that A surely takes one of the targets.
    for (let i = 0; i < 8; i++) expect(await post(b, `stop_${i}`, { ms: 60_000 })).toBe(202);
    await until('instance A to run a task', () => reported.some((r) => r.type === 'started' && r.pid === a.child.pid));
    const onA = reported.find((r) => r.type === 'started' && r.pid === a.child.pid)?.taskId as string;
    a.child.kill('SIGTERM');
    const stopping = await get<AsyncTask>(b, `/_stop/${onA}`);
    expect(['Stopping', 'Stopped']).toContain(stopping.status);
    let task: AsyncTask | null = null;
    await until('the task to be recorded Stopped', async () => {
      task = await get<AsyncTask | null>(b, `/_tasks/${onA}`);
      return task?.status === 'Stopped' && task.destinationStatus !== undefined;
    });
    expect(await exited(a.child, 20_000)).toBe(0);
    const stopped = task as unknown as AsyncTask;
    await until('onFailure', () => deliveriesOf(stopped).length === 1, 10_000);
    expect(deliveriesOf(stopped)[0]?.requestContext.condition).toBe('Stopped');
    expect(eventsOf(onA).map((e) => [e.type, e.pid === a.child.pid ? 'A' : 'B'])).toEqual([
      ['started', 'A'],
      ['aborted', 'A'],
    ]);
    // B, still running, delivers it no second time.
    await new Promise((resolve) => setTimeout(resolve, 1500));
    expect(deliveriesOf(stopped)).toHaveLength(1);
  }, 90_000);
});
