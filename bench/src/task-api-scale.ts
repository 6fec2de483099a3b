// The task API and the dashboard with 100,000 tasks, on each backend, through `fc-async dev`'s
// control plane (loopback only). Not part of `npm run bench`: run it by hand,
//   npx tsx src/task-api-scale.ts [memory|sqlite|bullmq ...]
// and compare two builds by running it in turn in each checkout. Prints one JSON line per figure:
// the median of REPEAT runs, with the fastest and the slowest.
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { bullmq } from '@fc-async/bullmq';
import type { AsyncTaskStatus, TaskRecord, TaskStore } from '@fc-async/core';
import { taskRecord } from '@fc-async/core/conformance';
import { startEmulator } from '@fc-async/local';
import { sqlite } from '@fc-async/sqlite';
import { startEnv } from './backends-env.js';

const COUNT = Number(process.env.TASKS ?? 100_000);
const REPEAT = Number(process.env.REPEAT ?? 7);
const BASE_TIME = 1_700_000_000_000;
const FN = 'app';

/** Finished mostly, as after a pulse test: 60% Succeeded, 20% Failed, 3% Stopped, 2% Expired, 15% still queued. */
function statusOf(i: number): AsyncTaskStatus {
  const r = i % 100;
  return r < 60 ? 'Succeeded' : r < 80 ? 'Failed' : r < 83 ? 'Stopped' : r < 85 ? 'Expired' : 'Enqueued';
}

/** 99% `order_`, 1% `refund_` (the rare prefix a user filters by). */
const idOf = (i: number) => `${i % 100 === 7 ? 'refund' : 'order'}_${String(i).padStart(6, '0')}`;

function recordOf(i: number): TaskRecord {
  const status = statusOf(i);
  // Three tasks a millisecond step: ties broken by id.
  const startedTime = BASE_TIME + Math.floor(i / 3) * 7;
  const finished = status !== 'Enqueued';
  return taskRecord(idOf(i), {
    status,
    startedTime,
    acceptedAt: startedTime,
    ...(finished ? { endTime: Date.now() - 1000 + (i % 1000), durationMs: 5 } : { dueAt: Date.now() + 3_600_000 }),
  });
}

async function fill(store: TaskStore): Promise<void> {
  for (let i = 0; i < COUNT; i += 1000) {
    const batch: unknown[] = [];
    for (let j = i; j < Math.min(COUNT, i + 1000); j++) batch.push(store.insert(recordOf(j)));
    await Promise.all(batch);
  }
}

const silent = { debug() {}, info() {}, warn() {}, error() {} };

async function prefill(kind: string, dir: string, redisUrl: string): Promise<void> {
  if (kind === 'memory') return;
  const backend =
    kind === 'sqlite'
      ? sqlite(join(dir, 'tasks.db'), { synchronous: 'normal' })
      : bullmq({ connection: redisUrl, prefix: `fc-async:${FN}` });
  const { store, queue } = await backend.create({ concurrency: 1, logger: silent });
  await fill(store);
  await queue.close?.();
  await store.close?.();
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number;

async function timed(label: string, kind: string, run: () => Promise<unknown>): Promise<void> {
  await run(); // warm
  const ms: number[] = [];
  for (let i = 0; i < REPEAT; i++) {
    const t = performance.now();
    await run();
    ms.push(performance.now() - t);
  }
  const round = (x: number) => Math.round(x * 100) / 100;
  console.log(
    JSON.stringify({
      backend: kind,
      what: label,
      medianMs: round(median(ms)),
      minMs: round(Math.min(...ms)),
      maxMs: round(Math.max(...ms)),
    }),
  );
}

async function main(): Promise<void> {
  const kinds = process.argv.slice(2).length > 0 ? process.argv.slice(2) : ['memory', 'sqlite', 'bullmq'];
  const env = await startEnv();
  try {
    for (const kind of kinds) await measure(kind, env.dir, env.redisUrl);
  } finally {
    env.stop();
  }
}

async function measure(kind: string, dir: string, redisUrl: string): Promise<void> {
  await prefill(kind, dir, redisUrl);
  const emulator = await startEmulator({
    entry: fileURLToPath(new URL('./emulator-app.ts', import.meta.url)),
    name: FN,
    port: 0,
    controlPort: 0,
    maxQueuedTasks: COUNT * 2,
    output: () => {},
    ...(kind === 'sqlite' ? { store: `sqlite:${join(dir, 'tasks.db')}` } : {}),
    ...(kind === 'bullmq' ? { redis: redisUrl } : {}),
  });
  const api = `${emulator.controlUrl}/2023-03-30/functions/${FN}/async-tasks`;
  try {
    if (kind === 'memory') await fillOverHttp(emulator.triggerUrl);
    const get = async (url: string) => {
      const res = await fetch(url);
      const text = await res.text();
      if (!res.ok) throw new Error(`${url}: ${res.status} ${text.slice(0, 200)}`);
      return text;
    };
    const list = async (query: Record<string, string>) =>
      JSON.parse(await get(`${api}?${new URLSearchParams(query)}`)) as {
        tasks: { taskId: string }[];
        nextToken?: string;
      };
    const deep = async (query: Record<string, string>) => {
      let page = await list({ ...query, limit: '100' });
      for (let i = 0; i < 50 && page.nextToken; i++)
        page = await list({ ...query, limit: '100', nextToken: page.nextToken });
      return page;
    };
    const first = (await list({ limit: '1', sortOrderByTime: 'asc' })).tasks[0];
    console.log(JSON.stringify({ backend: kind, listedFirst: first?.taskId }));
    await timed('GetAsyncTask', kind, () => get(`${api}/${idOf(Math.floor(COUNT / 2) + 1)}`));
    const queries: [string, Record<string, string>][] = [
      ['unfiltered desc', {}],
      ['unfiltered asc', { sortOrderByTime: 'asc' }],
      ['status=Failed', { status: 'Failed' }],
      ['status=Expired (2%)', { status: 'Expired' }],
      ['prefix=refund_ (1%)', { prefix: 'refund_' }],
      [
        'time range (middle third)',
        { startedTimeBegin: String(BASE_TIME + COUNT * 0.8), startedTimeEnd: String(BASE_TIME + COUNT * 1.6) },
      ],
    ];
    for (const [name, query] of queries) {
      await timed(`first page (100) ${name}`, kind, () => list({ ...query, limit: '100' }));
      await timed(`51 pages (100 each) ${name}`, kind, () => deep(query));
    }
    // The 51st page alone: where a deep page costs its offset, it costs the most here.
    const token = await (async () => {
      let page = await list({ limit: '100' });
      for (let i = 0; i < 49 && page.nextToken; i++) page = await list({ limit: '100', nextToken: page.nextToken });
      return page.nextToken as string;
    })();
    await timed('51st page alone, unfiltered desc', kind, () => list({ limit: '100', nextToken: token }));
    let stopped = 0;
    await timed('StopAsyncTask (an Enqueued task)', kind, async () => {
      // Enqueued ones are i % 100 >= 85 (HTTP-filled memory: every one not run).
      const i = 85 + stopped++ * 100;
      const res = await fetch(`${api}/${idOf(i)}/stop`, { method: 'PUT' });
      await res.text();
    });
    const dashboard = `sortOrderByTime=desc&returnPayload=false&limit=50`;
    await timed('dashboard first load (/, assets, functions, first 50)', kind, async () => {
      await Promise.all([
        get(`${emulator.controlUrl}/`),
        get(`${emulator.controlUrl}/assets/dashboard.js`),
        get(`${emulator.controlUrl}/assets/view.js`),
        get(`${emulator.controlUrl}/assets/dashboard.css`),
      ]);
      await get(`${emulator.controlUrl}/api/functions`);
      await get(`${api}?${dashboard}`);
    });
    await timed('dashboard filter change: status=Failed', kind, () => get(`${api}?${dashboard}&status=Failed`));
    await timed('dashboard filter change: prefix=refund_', kind, () => get(`${api}?${dashboard}&prefix=refund_`));
    await timed('dashboard filter change: prefix=zz (no match)', kind, () => get(`${api}?${dashboard}&prefix=zz`));
    // An accept's wait while a listing runs: how long the event loop is held.
    const stall = async (query: string) => {
      const listing = get(`${api}?${query}`);
      await new Promise((r) => setImmediate(r));
      const t = performance.now();
      await get(`${emulator.controlUrl}/api/functions`);
      const waited = performance.now() - t;
      await listing;
      return waited;
    };
    for (const query of [`limit=100`, `limit=100&prefix=zz`]) {
      const waits: number[] = [];
      for (let i = 0; i < REPEAT; i++) waits.push(await stall(query));
      console.log(
        JSON.stringify({
          backend: kind,
          what: `a request's wait during list ${query}`,
          medianMs: Math.round(median(waits) * 100) / 100,
        }),
      );
    }
  } finally {
    await emulator.close({ timeoutMs: 0 });
  }
}

/** The in-memory store is the emulator's own: filled over HTTP, every task delayed an hour (Enqueued). */
async function fillOverHttp(trigger: string): Promise<void> {
  const url = new URL('/work', trigger);
  for (let i = 0; i < COUNT; i += 200) {
    const sends: Promise<void>[] = [];
    for (let j = i; j < Math.min(COUNT, i + 200); j++) {
      sends.push(
        fetch(url, {
          method: 'POST',
          headers: {
            'x-fc-invocation-type': 'Async',
            'x-fc-async-task-id': idOf(j),
            'x-fc-async-delay': '3500',
            'content-type': 'application/json',
          },
          body: '{"job":"bench"}',
        }).then(async (res) => {
          await res.arrayBuffer();
          if (res.status !== 202) throw new Error(`accept of ${idOf(j)}: ${res.status}`);
        }),
      );
    }
    await Promise.all(sends);
  }
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
