import type { AsyncTask, DestinationRecord } from '@fc-async/core';
import { afterEach, beforeEach, describe, expect, inject, it } from 'vitest';
import { uniquePrefix, until } from './helpers.js';
import { type Instance, Instances, type Reported } from './instances.js';

let cluster: Instances;
let reported: Reported[];
let deliveries: DestinationRecord[];
let acceptor: Instance;
let workers: [Instance, Instance];
const start = (prefix: string, role: 'worker' | 'accept') => cluster.start(prefix, role);

beforeEach(async () => {
  cluster = await Instances.open(inject('redisUrl'));
  reported = cluster.reported;
  deliveries = cluster.deliveries;
  const prefix = uniquePrefix();
  const [a, w1, w2] = await Promise.all([start(prefix, 'accept'), start(prefix, 'worker'), start(prefix, 'worker')]);
  acceptor = a;
  workers = [w1, w2];
});

afterEach(() => cluster.close());

async function post(instance: Instance, taskId: string, body: Record<string, number>): Promise<number> {
  const response = await fetch(`http://127.0.0.1:${instance.port}/work`, {
    method: 'POST',
    headers: { 'x-fc-invocation-type': 'Async', 'x-fc-async-task-id': taskId, 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  await response.arrayBuffer();
  return response.status;
}

async function get<T>(instance: Instance, path: string): Promise<T> {
  const response = await fetch(`http://127.0.0.1:${instance.port}${path}`);
  return (await response.json()) as T;
}

const startedOf = (taskId: string) => reported.filter((r) => r.type === 'started' && r.taskId === taskId);
const deliveriesOf = (task: AsyncTask) => deliveries.filter((d) => d.requestContext.requestId === task.requestId);

describe('bullmq(): two worker processes and one accepting process', () => {
  it('a worker killed with SIGKILL mid-task: the other worker finishes the task, the cut attempt counted', async () => {
    expect(await post(acceptor, 'long_1', { ms: 60_000, retryMs: 10 })).toBe(202);
    await until('a worker to start the task', () => startedOf('long_1').length === 1);
    const first = startedOf('long_1')[0] as Reported;
    const victim = workers.find((w) => w.child.pid === first.pid) as Instance;
    const survivor = workers.find((w) => w !== victim) as Instance;
    expect(victim).toBeDefined();
    victim.child.kill('SIGKILL');

    let task: AsyncTask | null = null;
    await until('the task to succeed on the other worker', async () => {
      task = await get<AsyncTask | null>(acceptor, '/_tasks/long_1');
      return task?.status === 'Succeeded';
    });
    const done = task as unknown as AsyncTask;
    expect(startedOf('long_1').map((r) => [r.pid, r.attempt])).toEqual([
      [victim.child.pid, 0],
      [survivor.child.pid, 1],
    ]);
    expect(done.alreadyRetriedTimes).toBe(1);
    expect(done.instanceId).toBe(`worker-${survivor.child.pid}`);
    expect(done.events.find((e) => e.status === 'Retrying')?.eventDetail).toMatch(/interrupted/);
    await until('the destination', () => deliveriesOf(done).length === 1);
    expect(deliveriesOf(done)[0]?.requestContext).toMatchObject({ condition: '', approximateInvokeCount: 2 });
  });

  it('tasks accepted on any instance are listed alike by every instance, each run once on a worker', async () => {
    const ids: string[] = [];
    const instances = [acceptor, ...workers];
    for (let i = 0; i < 12; i++) {
      const id = `list_${String(i).padStart(2, '0')}`;
      ids.push(id);
      expect(await post(instances[i % 3] as Instance, id, { ms: 10 })).toBe(202);
    }
    await until('every task to succeed', async () => {
      const tasks = await get<AsyncTask[]>(acceptor, '/_tasks');
      return tasks.length === 12 && tasks.every((t) => t.status === 'Succeeded');
    });
    for (const instance of instances) {
      const tasks = await get<AsyncTask[]>(instance, '/_tasks');
      expect(tasks.map((t) => t.taskId).sort()).toEqual(ids);
      expect(new Set(tasks.map((t) => t.status))).toEqual(new Set(['Succeeded']));
    }
    const workerPids = new Set(workers.map((w) => w.child.pid));
    for (const id of ids) {
      expect(startedOf(id), id).toHaveLength(1);
      expect(workerPids.has(startedOf(id)[0]?.pid), id).toBe(true);
    }
    await until('every destination', () => deliveries.length === 12);
  });

  it('a stop issued on one instance aborts the task running on another', async () => {
    expect(await post(acceptor, 'stop_me', { ms: 60_000 })).toBe(202);
    await until('a worker to start the task', () => startedOf('stop_me').length === 1);
    const runner = startedOf('stop_me')[0]?.pid;
    const stopping = await get<AsyncTask>(acceptor, '/_stop/stop_me');
    expect(stopping.status).toBe('Stopping');
    await until('the running worker to abort', () =>
      reported.some((r) => r.type === 'aborted' && r.taskId === 'stop_me' && r.pid === runner),
    );
    let task: AsyncTask | null = null;
    await until('the task to be recorded Stopped', async () => {
      task = await get<AsyncTask | null>(workers[0], '/_tasks/stop_me');
      return task?.status === 'Stopped';
    });
    const stopped = task as unknown as AsyncTask;
    await until('onFailure', () => deliveriesOf(stopped).length === 1);
    expect(deliveriesOf(stopped)[0]?.requestContext.condition).toBe('Stopped');
    expect(startedOf('stop_me')).toHaveLength(1);
  });
});
