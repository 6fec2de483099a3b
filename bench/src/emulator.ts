import { type ChildProcess, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { BenchResult } from './harness.js';
import { freePort, type LoadResult, runLoad } from './http-load.js';

/** The emulator's 202 throughput, as a share of a bare Node http server's, measured in one run. */
export const TARGET = 0.7;
const CONNECTIONS = 16;
const WARMUP_MS = 1000;
const MEASURE_MS = 5000;
/** Each row's measured time is cut into slices run in turn, so that a drift of the machine hits all rows alike. */
const SLICES = 5;

export const EMULATOR_LEGEND = `emulator: 202 responses/s over loopback, ${CONNECTIONS} keep-alive connections, ${MEASURE_MS / 1000} s per row (in ${SLICES} interleaved slices) after ${WARMUP_MS / 1000} s of warm-up, one raw-socket load client for every row.
Peers: a bare Node http server answering 202, and a "hand-rolled accept" on the same stack (reads the body, keeps the request in a Map under a new id, answers 202 with it: the least a task-accepting server does). "front door": fc-async dev accepting async POSTs (FC event, detection, task record, queue, 202, log line) with X-Fc-Async-Delay so that the tasks run after the window (measured in turn with the peers); "with tasks": the same while every task runs through an Express app in the same process (measured after, in one block). Target: front door ≥ ${TARGET}× the bare server.`;

const BODY = '{"job":"bench"}';
const request = (port: number, extra = '') =>
  Buffer.from(
    `POST /work HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nX-Fc-Invocation-Type: Async\r\n${extra}` +
      `Content-Type: application/json\r\nContent-Length: ${BODY.length}\r\n\r\n${BODY}`,
  );

const BARE_SERVER = `
const server = require('node:http').createServer((req, res) => {
  req.resume();
  res.writeHead(202, { 'content-length': '0' });
  res.end();
});
server.keepAliveTimeout = 65000;
server.listen(Number(process.argv[1]), '127.0.0.1');`;

/**
 * The least an HTTP server that accepts tasks does: read the body, keep the request under a new
 * id, answer 202 with the id. No task record, no queue, no validation, no log: the floor under
 * the front door's row, on the same Node HTTP stack.
 */
const HAND_ROLLED_SERVER = `
const tasks = new Map();
let next = 0;
const server = require('node:http').createServer((req, res) => {
  const chunks = [];
  req.on('data', (chunk) => chunks.push(chunk));
  req.on('end', () => {
    const id = 'task-' + next++;
    tasks.set(id, { method: req.method, url: req.url, headers: { ...req.headers }, body: Buffer.concat(chunks) });
    res.writeHead(202, { 'x-fc-request-id': id, 'x-fc-async-task-id': id, 'content-length': '0' });
    res.end();
  });
});
server.keepAliveTimeout = 65000;
server.listen(Number(process.argv[1]), '127.0.0.1');`;

/** Resolves once `GET path` answers on the port (the child is up), or rejects after 30 s. */
async function ready(child: ChildProcess, port: number, path: string): Promise<void> {
  const deadline = Date.now() + 30_000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`the server exited with ${child.exitCode}`);
    try {
      if ((await fetch(`http://127.0.0.1:${port}${path}`)).ok) return;
    } catch {
      // not listening yet
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`nothing answered on port ${port}`);
}

interface Target {
  port: number;
  child: ChildProcess;
  request: Buffer;
  loads: LoadResult[];
  /** CPU time the server process used during its slices, ms (Linux; 0 elsewhere). */
  cpuMs: number;
}

/** User plus system CPU time of a process so far, ms, from /proc (0 where there is none). */
function cpuTime(pid: number | undefined): number {
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.split(' ') ?? [];
    return (Number(fields[11]) + Number(fields[12])) * 10; // clock ticks of 10 ms
  } catch {
    return 0;
  }
}

/** Starts a server in a child process and waits until it answers `GET path`. */
async function start(spawnAt: (port: number) => ChildProcess, path: string, extra = ''): Promise<Target> {
  const port = await freePort();
  const child = spawnAt(port);
  await ready(child, port, path);
  return { port, child, request: request(port, extra), loads: [], cpuMs: 0 };
}

async function load(t: Target, durationMs: number): Promise<LoadResult> {
  const before = cpuTime(t.child.pid);
  const result = await runLoad({ port: t.port, request: t.request, connections: CONNECTIONS, warmupMs: 0, durationMs });
  t.cpuMs += cpuTime(t.child.pid) - before;
  return result;
}

/** The slices of one row added up. */
function total(loads: LoadResult[]): LoadResult {
  const byStatus: Record<number, number> = {};
  for (const l of loads)
    for (const [s, n] of Object.entries(l.byStatus)) byStatus[Number(s)] = (byStatus[Number(s)] ?? 0) + n;
  return {
    byStatus,
    perSecond: loads.map((l) => (l.byStatus[202] ?? 0) / (l.durationMs / 1000)),
    durationMs: loads.reduce((sum, l) => sum + l.durationMs, 0),
  };
}

function row(name: string, role: 'ours' | 'peer', load: LoadResult, peer?: BenchResult): BenchResult {
  const accepted = load.byStatus[202] ?? 0;
  const opsPerSec = accepted / (load.durationMs / 1000);
  const result: BenchResult = {
    group: '202 throughput',
    name,
    role,
    usPerOp: 1e6 / opsPerSec,
    opsPerSec,
    minUs: 1e6 / Math.max(1, ...load.perSecond),
    maxUs: 1e6 / Math.max(1, Math.min(...load.perSecond)),
    opsPerRound: accepted,
    rounds: load.perSecond.length,
  };
  if (peer) {
    const ratio = result.usPerOp / peer.usPerOp;
    Object.assign(result, { bestPeer: peer.name, ratioToBestPeer: ratio, baseline: peer.name, ratio });
  }
  return result;
}

/**
 * Runs the bare server, then `fc-async dev` (the built CLI of @fc-async/local) twice, each in a
 * child process under the same load, and prints responses per second and the share of the bare
 * server's. A row's `ratio` is its µs per response over the bare server's (≤ 1 / TARGET meets it).
 */
export async function emulatorThroughput(): Promise<BenchResult[]> {
  const require = createRequire(import.meta.url);
  const cli = join(dirname(require.resolve('@fc-async/local/package.json')), 'dist/cli.js');
  const app = join(dirname(fileURLToPath(import.meta.url)), 'emulator-app.ts');
  const emulator = (flags: string[]) => (port: number) =>
    spawn(
      process.execPath,
      [cli, 'dev', app, '--name', 'bench', '--port', String(port), '--control-port', '0', ...flags],
      {
        stdio: ['ignore', 'ignore', 'inherit'],
      },
    );

  const targets: Target[] = [];
  try {
    const script = (source: string) => (port: number) =>
      spawn(process.execPath, ['-e', source, String(port)], { stdio: 'ignore' });
    targets.push(await start(script(BARE_SERVER), '/'));
    targets.push(await start(script(HAND_ROLLED_SERVER), '/'));
    targets.push(await start(emulator(['--max-queued-tasks', '10000000']), '/health', 'X-Fc-Async-Delay: 3599\r\n'));
    for (const t of targets) await load(t, WARMUP_MS);
    for (const t of targets) t.cpuMs = 0;
    for (let slice = 0; slice < SLICES; slice++) {
      for (const t of targets) t.loads.push(await load(t, MEASURE_MS / SLICES));
    }
    // Last and in one block: its tasks keep running after the load stops, which would slow the other rows.
    const tasks = await start(emulator([]), '/health');
    targets.push(tasks);
    await load(tasks, WARMUP_MS);
    tasks.cpuMs = 0;
    tasks.loads.push(await load(tasks, MEASURE_MS));
  } finally {
    for (const t of targets) t.child.kill('SIGKILL');
  }
  const [bare, handRolled, frontDoor, withTasks] = targets.map((t) => total(t.loads)) as [
    LoadResult,
    LoadResult,
    LoadResult,
    LoadResult,
  ];

  const peer = row('bare node:http answering 202', 'peer', bare);
  const floor = row('node:http, hand-rolled accept', 'peer', handRolled, peer);
  const door = row('fc-async dev, front door', 'ours', frontDoor, peer);
  const full = row('fc-async dev, with tasks', 'ours', withTasks, peer);
  Object.assign(door, { target: 1 / TARGET, met: door.opsPerSec / peer.opsPerSec >= TARGET });
  for (const [i, r] of [peer, floor, door, full].entries()) {
    const t = targets[i] as Target;
    const cpu = t.cpuMs > 0 ? `  ${((t.cpuMs * 1000) / r.opsPerRound).toFixed(1).padStart(6)} µs CPU/response` : '';
    const share = r === peer ? '' : `  ${(r.opsPerSec / peer.opsPerSec).toFixed(2)}× bare`;
    const verdict = r.met === undefined ? '' : `  (target ≥ ${TARGET}×: ${r.met ? 'met' : 'NOT MET'})`;
    console.log(
      `  ${r.name.padEnd(30)} ${Math.round(r.opsPerSec).toLocaleString('en-US').padStart(8)} /s${cpu}${share}${verdict}`,
    );
  }
  for (const [name, load] of [
    ['front door', frontDoor],
    ['with tasks', withTasks],
  ] as const) {
    const others = Object.entries(load.byStatus).filter(([status]) => status !== '202');
    if (others.length > 0) console.log(`  ${name}: other statuses ${JSON.stringify(Object.fromEntries(others))}`);
  }
  console.log(
    `  front door / hand-rolled accept: ${(door.opsPerSec / floor.opsPerSec).toFixed(2)}× (what fc-async's accept costs on top of the least a task-accepting server does)`,
  );
  return [peer, floor, door, full];
}
