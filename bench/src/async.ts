import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { type FcHandler, functionDestination } from '@fc-async/core';
import PQueue from 'p-queue';
import {
  acceptOne,
  asyncEvent,
  blockedApp,
  contexts,
  localHandler,
  nextMacrotask,
  trivialApp,
} from './async-fixtures.js';
import type { BenchOptions, BenchResult } from './harness.js';

/** Issue 3's targets. */
export const ASYNC_TARGETS = {
  /** µs per accept, from `handler(event, context)` to the 202. */
  acceptUs: 10,
  /** Tasks per second end to end. */
  tasksPerSecond: 20_000,
  /** Heap bytes per queued task beyond its body. */
  heapBytesPerTask: 2048,
};

/** Tasks per round. */
const N = 10_000;
/** Rounds run and thrown away before the measured ones. */
const WARMUP_ROUNDS = 2;

export const ASYNC_LEGEND = `\
Async engine (local mode, memory() backend, tracing left at its default: no SDK registered), in-process.
An accept = handler(event, context) of createFcHandler with an FC 3.0 async event object (POST, 64-byte
JSON body, five client headers) and FC's context with a request id of its own (made before the timed
loop, as FC's runtime makes it) until the 202. Each round is a fresh handler and ${N.toLocaleString('en-US')} operations,
awaited one at a time, yielding to the event loop every 16 (as the harness does); figures are the
median over rounds after ${WARMUP_ROUNDS} warm-up rounds.
- accept, app blocked: the app never answers while the round runs, so the tasks wait in the queue
  (default concurrency 10); process CPU time per accept, including handing the jobs to the queue.
- accept, delayed: X-Fc-Async-Delay: 3599, so no task runs; CPU time per accept (each task waits in the delay heap).
- accept, plain: a trivial app, no delay: tasks run in the turns between accepts; the figure is
  the wall time from each handler() call to its 202 only, summed (the tasks' own time is left out).
- tasks end to end: a trivial app and an onSuccess functionDestination; wall time from the first
  accept to the ${N.toLocaleString('en-US')}th destination call, as tasks/s (and CPU µs per task).
- p-queue alone (peer of the row above): N no-op async jobs on p-queue, concurrency 10, added the same way.
- heap per queued task: ${N.toLocaleString('en-US')} tasks accepted behind a blocked app, in a child process started with
  --expose-gc (full GC before and after), each from the event's JSON bytes (so each task keeps strings
  of its own, as on FC): (Δ heapUsed + Δ arrayBuffers) / ${N.toLocaleString('en-US')} − the body's bytes.
Targets (issue 3): accept ≤ ${ASYNC_TARGETS.acceptUs} µs, ≥ ${ASYNC_TARGETS.tasksPerSecond.toLocaleString('en-US')} tasks/s, ≤ ${ASYNC_TARGETS.heapBytesPerTask} B heap per queued task.`;

interface Sample {
  cpuUs: number;
  wallUs: number;
  ops: number;
  /** The row's own measure, when it is neither clock over the whole round. */
  value?: number;
}

const cpuNow = () => {
  const { user, system } = process.cpuUsage();
  return user + system;
};
const wallNow = () => performance.now() * 1000;

async function rounds(count: number, round: () => Promise<Sample>): Promise<Sample[]> {
  const samples: Sample[] = [];
  for (let r = 0; r < WARMUP_ROUNDS + count; r++) {
    const sample = await round();
    if (r >= WARMUP_ROUNDS) samples.push(sample);
  }
  return samples;
}

/** Accepts N events one at a time, yielding to the event loop every 16, then waits for `until()`. */
async function acceptAll(
  handler: FcHandler,
  event: Record<string, unknown>,
  until: () => Promise<void>,
): Promise<Sample> {
  const ctx = contexts(N);
  const cpu = cpuNow();
  const wall = wallNow();
  for (let i = 0; i < N; i++) {
    await acceptOne(handler, event, ctx[i]);
    if ((i & 15) === 15) await nextMacrotask();
  }
  await until();
  return { cpuUs: cpuNow() - cpu, wallUs: wallNow() - wall, ops: N };
}

/** Accepts N events one at a time; the clocks run around the loop only. */
function timedAccepts(handler: FcHandler, event: Record<string, unknown>): Promise<Sample> {
  return acceptAll(handler, event, nextMacrotask);
}

async function acceptBlocked(): Promise<Sample> {
  const blocked = blockedApp();
  const handler = localHandler(blocked.app, { async: { maxQueuedTasks: N + 100 } });
  await handler.engine?.whenReady();
  const sample = await timedAccepts(handler, asyncEvent());
  blocked.release();
  await handler.close();
  return sample;
}

async function acceptDelayed(): Promise<Sample> {
  const handler = localHandler(trivialApp, { async: { maxQueuedTasks: N + 100 } });
  await handler.engine?.whenReady();
  const sample = await timedAccepts(handler, asyncEvent(3599));
  await handler.close({ timeoutMs: 1 });
  return sample;
}

async function acceptPlain(): Promise<Sample> {
  const handler = localHandler(trivialApp, { async: { maxQueuedTasks: N + 100 } });
  await handler.engine?.whenReady();
  const event = asyncEvent();
  const ctx = contexts(N);
  let inAccept = 0;
  const cpu = cpuNow();
  const wall = wallNow();
  for (let i = 0; i < N; i++) {
    const t = performance.now();
    await acceptOne(handler, event, ctx[i]);
    inAccept += performance.now() - t;
    if ((i & 15) === 15) await nextMacrotask();
  }
  await handler.drain();
  const sample = { cpuUs: cpuNow() - cpu, wallUs: wallNow() - wall, ops: N, value: inAccept * 1000 };
  await handler.close();
  return sample;
}

async function tasksEndToEnd(): Promise<Sample> {
  let delivered = 0;
  let allDelivered!: () => void;
  const done = new Promise<void>((resolve) => {
    allDelivered = resolve;
  });
  const destination = functionDestination(function count() {
    if (++delivered === N) allDelivered();
  });
  const handler = localHandler(trivialApp, {
    async: { maxQueuedTasks: N + 100 },
    destinations: { onSuccess: destination },
  });
  await handler.engine?.whenReady();
  const sample = await acceptAll(handler, asyncEvent(), () => done);
  await handler.drain();
  await handler.close();
  return sample;
}

/**
 * The peer of "tasks end to end": p-queue alone (concurrency 10, as the engine's default) running
 * N no-op async jobs, added one at a time with the same yields, until the last one ends. What a
 * bare in-process queue costs per job, without a request, a record, an attempt or a destination.
 */
async function pQueueAlone(): Promise<Sample> {
  const queue = new PQueue({ concurrency: 10 });
  const job = async () => {};
  const cpu = cpuNow();
  const wall = wallNow();
  for (let i = 0; i < N; i++) {
    void queue.add(job);
    if ((i & 15) === 15) await nextMacrotask();
  }
  await queue.onIdle();
  return { cpuUs: cpuNow() - cpu, wallUs: wallNow() - wall, ops: N };
}

/** Runs async-heap.ts in a child process with --expose-gc (forced GC stays out of this process). */
function heapPerTask(): Promise<{ heapUsedPerTask: number; arrayBuffersPerTask: number; bodyBytes: number }> {
  const script = fileURLToPath(new URL('./async-heap.ts', import.meta.url));
  const child = spawn(process.execPath, [...process.execArgv, '--expose-gc', script, String(N)], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let out = '';
  child.stdout.setEncoding('utf8');
  child.stdout.on('data', (chunk: string) => {
    out += chunk;
  });
  return new Promise((resolve, reject) => {
    child.once('error', reject);
    child.once('exit', (code) => {
      if (code !== 0) return reject(new Error(`async-heap.ts exited with ${code}`));
      try {
        resolve(JSON.parse(out.trim().split('\n').pop() ?? ''));
      } catch (error) {
        reject(error);
      }
    });
  });
}

const median = (values: number[]) => {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = (sorted.length - 1) / 2;
  return ((sorted[Math.floor(mid)] as number) + (sorted[Math.ceil(mid)] as number)) / 2;
};

function result(name: string, perOp: number[], target?: number, lowerIsBetter = true): BenchResult {
  const usPerOp = median(perOp);
  const row: BenchResult = {
    group: 'async engine',
    name,
    role: 'ours',
    usPerOp,
    opsPerSec: 1e6 / usPerOp,
    minUs: Math.min(...perOp),
    maxUs: Math.max(...perOp),
    samples: perOp,
    opsPerRound: N,
    rounds: perOp.length,
  };
  if (target !== undefined) {
    row.target = target;
    row.met = lowerIsBetter ? usPerOp <= target : row.opsPerSec >= target;
  }
  return row;
}

const fmt = (x: number, digits = 1) => x.toFixed(digits);
const verdict = (met: boolean | undefined) => (met === undefined ? '' : met ? 'met' : 'NOT MET');

/** The issue-3 section: accept cost, end-to-end tasks/s and heap per queued task of the memory backend. */
export async function asyncSection(options: BenchOptions = {}): Promise<BenchResult[]> {
  const count = options.rounds ?? 12;
  const wall = options.clock === 'wall';
  const perOp = (samples: Sample[], pick: (s: Sample) => number) => samples.map((s) => pick(s) / s.ops);
  const clock = (s: Sample) => (wall ? s.wallUs : s.cpuUs);
  const rows: BenchResult[] = [];
  const log = (label: string, value: string, target: string, met?: boolean) =>
    console.log(`  ${label.padEnd(34)} ${value.padStart(22)}   ${target.padEnd(22)} ${verdict(met)}`);

  const blocked = await rounds(count, acceptBlocked);
  const b = result('accept, app blocked', perOp(blocked, clock), ASYNC_TARGETS.acceptUs);
  rows.push(b);
  log('accept, app blocked', `${fmt(b.usPerOp, 2)} µs/accept`, `≤ ${ASYNC_TARGETS.acceptUs} µs`, b.met);

  const delayed = await rounds(count, acceptDelayed);
  const d = result('accept, delayed', perOp(delayed, clock), ASYNC_TARGETS.acceptUs);
  rows.push(d);
  log('accept, delayed', `${fmt(d.usPerOp, 2)} µs/accept`, `≤ ${ASYNC_TARGETS.acceptUs} µs`, d.met);

  const plain = await rounds(count, acceptPlain);
  const p = result(
    'accept, plain (wall, to the 202)',
    perOp(plain, (s) => s.value ?? 0),
    ASYNC_TARGETS.acceptUs,
  );
  rows.push(p);
  log('accept, plain (wall, to the 202)', `${fmt(p.usPerOp, 2)} µs/accept`, `≤ ${ASYNC_TARGETS.acceptUs} µs`, p.met);

  const tasks = await rounds(count, tasksEndToEnd);
  const t = result(
    'tasks end to end',
    perOp(tasks, (s) => s.wallUs),
    ASYNC_TARGETS.tasksPerSecond,
    false,
  );
  rows.push(t);
  const tCpu = median(perOp(tasks, (s) => s.cpuUs));
  log(
    'tasks end to end',
    `${Math.round(t.opsPerSec).toLocaleString('en-US')} tasks/s`,
    `≥ ${ASYNC_TARGETS.tasksPerSecond.toLocaleString('en-US')} tasks/s`,
    t.met,
  );
  console.log(`  ${''.padEnd(34)} ${`${fmt(t.usPerOp)} µs wall, ${fmt(tCpu)} µs CPU per task`.padStart(22)}`);

  const peer = await rounds(count, pQueueAlone);
  const q = result(
    'p-queue alone, no-op jobs',
    perOp(peer, (s) => s.wallUs),
  );
  q.role = 'peer';
  rows.push(q);
  t.bestPeer = q.name;
  t.ratioToBestPeer = t.usPerOp / q.usPerOp;
  log('p-queue alone, no-op jobs (peer)', `${Math.round(q.opsPerSec).toLocaleString('en-US')} jobs/s`, '', undefined);
  console.log(
    `  ${''.padEnd(34)} ${`a task end to end costs ${fmt(t.ratioToBestPeer, 1)}× a bare p-queue job (${fmt(q.usPerOp, 2)} µs wall)`}`,
  );

  const heap = await heapPerTask();
  const beyondBody = heap.heapUsedPerTask + heap.arrayBuffersPerTask - heap.bodyBytes;
  const h: BenchResult = {
    group: 'async engine',
    name: 'heap bytes per queued task beyond its body',
    role: 'ours',
    usPerOp: beyondBody,
    opsPerSec: 0,
    minUs: beyondBody,
    maxUs: beyondBody,
    opsPerRound: N,
    rounds: 1,
    target: ASYNC_TARGETS.heapBytesPerTask,
    met: beyondBody <= ASYNC_TARGETS.heapBytesPerTask,
  };
  rows.push(h);
  log('heap per queued task', `${Math.round(beyondBody)} B`, `≤ ${ASYNC_TARGETS.heapBytesPerTask} B`, h.met);
  console.log(
    `  ${''.padEnd(34)} ${`heapUsed ${Math.round(heap.heapUsedPerTask)} B + arrayBuffers ${Math.round(heap.arrayBuffersPerTask)} B − body ${heap.bodyBytes} B`}`,
  );
  return rows;
}
