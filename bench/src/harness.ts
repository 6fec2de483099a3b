import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';
import { dirname } from 'node:path';

/**
 * One measured function. Rows that share a `group` are compared with each other: each `ours`
 * row shows its median divided by the fastest `peer` row's, and, when it has a `target`, its
 * ratio to its `baseline` row against that target.
 */
export interface BenchCase {
  /** Rows with the same group are printed together and may be each other's baseline. */
  group: string;
  /** Unique within the group. */
  name: string;
  /** `ours` rows get a ratio; `peer` rows are what they are compared with. @default 'ours' */
  role?: 'ours' | 'peer';
  /**
   * What the target ratio is taken against: the name of a row of the same group.
   * @default the fastest `peer` row of the group
   */
  baseline?: string | undefined;
  /** Target for the ratio to the baseline (met when ratio <= target). */
  target?: number | undefined;
  /** Called once per operation; may return a promise, which is awaited before the next call. */
  fn: () => unknown;
  /** Called once before warm-up; throws when the case is not measuring what it should. */
  check?: () => unknown;
}

/** How long and how often. */
export interface BenchOptions {
  /** Warm-up time per case before the first round, run in interleaved slices. @default 500 */
  warmupMs?: number;
  /** Target duration of one round; the number of operations per round is calibrated to it. @default 100 */
  roundMs?: number;
  /** Rounds per case; the reported figure is the median of the rounds. @default 12 */
  rounds?: number;
  /**
   * `cpu`: the process's CPU time (user + system, all threads, so GC helpers count), which a busy
   * machine disturbs much less than wall time; `wall`: elapsed time.
   * @default 'cpu'
   */
  clock?: 'cpu' | 'wall';
}

/** What one row measured. */
export interface BenchResult {
  group: string;
  name: string;
  role: 'ours' | 'peer';
  /** Median over rounds, microseconds per operation. */
  usPerOp: number;
  opsPerSec: number;
  /** Fastest and slowest round, microseconds per operation. */
  minUs: number;
  maxUs: number;
  /** First and third quartile of the rounds (set by {@link runBench}), microseconds per operation. */
  q1Us?: number | undefined;
  q3Us?: number | undefined;
  /** Every round, microseconds per operation, in the order run (set by {@link runBench}). */
  samples?: number[] | undefined;
  /** Operations per round and rounds actually run. */
  opsPerRound: number;
  rounds: number;
  /** For `ours` rows: the fastest peer of the group and the ratio to it. */
  bestPeer?: string | undefined;
  ratioToBestPeer?: number | undefined;
  /** For `ours` rows: the baseline row (the best peer unless named) and the ratio to it. */
  baseline?: string | undefined;
  ratio?: number | undefined;
  target?: number | undefined;
  met?: boolean | undefined;
}

const clocks = {
  wall: () => Number(process.hrtime.bigint()) / 1000,
  cpu: () => {
    const { user, system } = process.cpuUsage();
    return user + system;
  },
};

function isThenable(value: unknown): value is PromiseLike<unknown> {
  return typeof (value as PromiseLike<unknown> | undefined)?.then === 'function';
}

const nextMacrotask = () => new Promise<void>((resolve) => setImmediate(resolve));

/**
 * Runs `fn` `n` times, awaiting each call when it returns a promise; returns elapsed µs.
 *
 * An async loop yields to the event loop every 16 calls. Without that, a loop of awaits never
 * empties the microtask queue, so `process.nextTick` callbacks (the `finish` and `close` events
 * of a response, for one) never run: their cost goes unmeasured and what they hold is never
 * freed. In production every invocation arrives as a macrotask of its own.
 */
async function loop(fn: () => unknown, n: number, isAsync: boolean, now: () => number): Promise<number> {
  const start = now();
  if (isAsync) {
    for (let i = 0; i < n; i++) {
      await fn();
      if ((i & 15) === 15) await nextMacrotask();
    }
    await nextMacrotask();
  } else {
    for (let i = 0; i < n; i++) fn();
  }
  return now() - start;
}

/** The q-quantile of `values` (0.5: the median), interpolating between neighbours. */
function quantile(values: readonly number[], q: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  const at = (sorted.length - 1) * q;
  const lo = Math.floor(at);
  const low = sorted[lo] as number;
  return low + ((sorted[Math.ceil(at)] as number) - low) * (at - lo);
}

interface Prepared {
  c: BenchCase;
  isAsync: boolean;
  /** Operations per round. */
  n: number;
  /** Latest estimate of µs per operation. */
  perOp: number;
  samples: number[];
}

/** Checks the case, tells sync from async, and estimates its cost by doubling a batch to ~10 ms. */
async function calibrate(c: BenchCase, now: () => number): Promise<Prepared> {
  await c.check?.();
  const isAsync = isThenable(c.fn());
  if (isAsync) await c.fn();
  let n = 1;
  let t = await loop(c.fn, n, isAsync, now);
  while (t < 10_000) {
    n *= 2;
    t = await loop(c.fn, n, isAsync, now);
  }
  return { c, isAsync, n, perOp: t / n, samples: [] };
}

const opsFor = (ms: number, perOp: number) => Math.max(1, Math.round((ms * 1000) / perOp));

/**
 * Measures every case: each is checked and calibrated, all are warmed up, then rounds are
 * interleaved across cases (round 1 of every case, then round 2, ...) so that a slow drift of the
 * machine hits all rows alike. No GC is forced between rounds: a forced full GC shrinks the young
 * generation and the next round pays for many more scavenges (measured here: rounds 3 to 6
 * times slower); a round is long enough to carry its own share of ordinary GC instead.
 *
 * @example
 * ```ts
 * const results = await runBench([
 *   { group: 'parse', name: 'JSON.parse', role: 'peer', fn: () => JSON.parse('{"a":1}') },
 *   { group: 'parse', name: 'mine', fn: () => myParse('{"a":1}'), target: 1 },
 * ]);
 * printTable(results);
 * ```
 */
export async function runBench(cases: readonly BenchCase[], options: BenchOptions = {}): Promise<BenchResult[]> {
  const warmupMs = options.warmupMs ?? 500;
  const roundMs = options.roundMs ?? 100;
  const rounds = options.rounds ?? 12;
  const now = clocks[options.clock ?? 'cpu'];
  const prepared: Prepared[] = [];
  for (const c of cases) prepared.push(await calibrate(c, now));
  // Warm up in interleaved slices too, so that code shared by several rows (Node's http
  // classes) is optimised against all of them, not only against the row that ran first.
  const slices = 5;
  for (let w = 0; w < slices; w++) {
    for (const p of prepared) {
      const n = opsFor(warmupMs / slices, p.perOp);
      p.perOp = (await loop(p.c.fn, n, p.isAsync, now)) / n;
    }
  }
  for (const p of prepared) p.n = opsFor(roundMs, p.perOp);
  for (let r = 0; r < rounds; r++) {
    // Rotate the starting case so no row always runs right after the same neighbour.
    for (let i = 0; i < prepared.length; i++) {
      const p = prepared[(i + r) % prepared.length] as Prepared;
      p.samples.push((await loop(p.c.fn, p.n, p.isAsync, now)) / p.n);
    }
  }
  return compare(prepared);
}

function compare(prepared: Prepared[]): BenchResult[] {
  const results: BenchResult[] = prepared.map(({ c, n, samples }) => {
    const usPerOp = quantile(samples, 0.5);
    return {
      group: c.group,
      name: c.name,
      role: c.role ?? 'ours',
      usPerOp,
      opsPerSec: 1e6 / usPerOp,
      minUs: Math.min(...samples),
      maxUs: Math.max(...samples),
      q1Us: quantile(samples, 0.25),
      q3Us: quantile(samples, 0.75),
      samples,
      opsPerRound: n,
      rounds: samples.length,
      target: c.target,
    };
  });
  for (const [i, row] of results.entries()) {
    if (row.role !== 'ours') continue;
    const sameGroup = results.filter((r) => r.group === row.group);
    const best = sameGroup.filter((r) => r.role === 'peer').sort((a, b) => a.usPerOp - b.usPerOp)[0];
    if (best) {
      row.bestPeer = best.name;
      row.ratioToBestPeer = row.usPerOp / best.usPerOp;
    }
    const named = (prepared[i] as Prepared).c.baseline;
    const base = named === undefined ? best : sameGroup.find((r) => r.name === named);
    if (!base) {
      if (named !== undefined || row.target !== undefined)
        throw new Error(`No baseline for "${row.group} ${row.name}"`);
      continue;
    }
    row.baseline = base.name;
    row.ratio = row.usPerOp / base.usPerOp;
    if (row.target !== undefined) row.met = row.ratio <= row.target;
  }
  return results;
}

const fmt = (x: number, digits = 1) => x.toFixed(digits);

/**
 * Prints one block per group: µs/op (median of rounds), ops/s, spread (half the interquartile
 * range of the rounds, or of their full range when quartiles are missing, relative to the
 * median), and for our rows the ratio to the group's best
 * peer and, when the row has a target, the ratio to its baseline against the target.
 */
export function printTable(results: readonly BenchResult[], log: (line: string) => void = console.log): void {
  const header = ['', 'µs/op', 'ops/s', 'spread', '× best peer', 'target', 'result'];
  const rows: string[][] = [];
  for (const group of new Set(results.map((r) => r.group))) {
    rows.push([group]);
    for (const r of results.filter((x) => x.group === group)) {
      const target = r.target === undefined ? '' : `≤ ${fmt(r.target, 2)}× ${r.baseline}`;
      rows.push([
        `  ${r.name}`,
        fmt(r.usPerOp),
        Math.round(r.opsPerSec).toLocaleString('en-US'),
        `±${fmt((((r.q3Us ?? r.maxUs) - (r.q1Us ?? r.minUs)) / 2 / r.usPerOp) * 100, 0)}%`,
        r.ratioToBestPeer === undefined ? '' : `${fmt(r.ratioToBestPeer, 2)}× ${r.bestPeer}`,
        target,
        r.met === undefined ? '' : `${fmt(r.ratio ?? 0, 2)}× ${r.met ? 'met' : 'NOT MET'}`,
      ]);
    }
  }
  const widths = header.map((h, i) =>
    Math.max(h.length, ...rows.map((row) => (row.length > 1 ? row[i]?.length : 0) ?? 0)),
  );
  const line = (cells: string[]) =>
    cells
      .map((cell, i) => (i === 0 || i >= 4 ? cell.padEnd(widths[i] ?? 0) : cell.padStart(widths[i] ?? 0)))
      .join('  ')
      .trimEnd();
  log(line(header));
  for (const row of rows) log(row.length === 1 ? `${row[0]}` : line(row));
}

/** The machine and runtime, for the JSON report. */
export function machineInfo() {
  const cpu = cpus();
  return {
    node: process.version,
    v8: process.versions.v8,
    platform: `${process.platform} ${process.arch}`,
    cpu: cpu[0]?.model ?? 'unknown',
    cores: cpu.length,
    memoryGB: Math.round(totalmem() / 2 ** 30),
  };
}

/** Writes results (grouped by section) and the machine description as JSON. */
export function writeJson(path: string, sections: Record<string, readonly BenchResult[]>, options: BenchOptions): void {
  mkdirSync(dirname(path), { recursive: true });
  const report = { date: new Date().toISOString(), machine: machineInfo(), options, sections };
  writeFileSync(path, `${JSON.stringify(report, null, 2)}\n`);
}
