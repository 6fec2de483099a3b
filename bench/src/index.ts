import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ASYNC_LEGEND, asyncSection } from './async.js';
import { BACKENDS_LEGEND, backendCases, backendsTeardown } from './backends.js';
import { BRIDGE_LEGEND, bridgeCases } from './bridge.js';
import { EMULATOR_LEGEND, emulatorThroughput } from './emulator.js';
import {
  type BenchCase,
  type BenchOptions,
  type BenchResult,
  machineInfo,
  printTable,
  runBench,
  writeJson,
} from './harness.js';
import { TRACING_LEGEND, TRACING_SDK_LEGEND, tracingCases, tracingSdkCases, tracingSdkTeardown } from './tracing.js';

/**
 * `npm run bench`: runs every section and writes bench/results/latest.json. Environment knobs:
 * BENCH_ROUNDS, BENCH_ROUND_MS, BENCH_WARMUP_MS, BENCH_CLOCK=wall (see BenchOptions), BENCH_FILTER (a regular
 * expression on "section group", e.g. `BENCH_FILTER='bridge raw'`).
 */
const numberFromEnv = (name: string): number | undefined => {
  const value = process.env[name];
  if (value === undefined || value === '') return undefined;
  const n = Number(value);
  if (!Number.isFinite(n) || n <= 0)
    throw new TypeError(`Expected \`${name}\` to be a positive number, got \`${value}\``);
  return n;
};

const options: BenchOptions = {
  rounds: numberFromEnv('BENCH_ROUNDS') ?? 12,
  roundMs: numberFromEnv('BENCH_ROUND_MS') ?? 100,
  warmupMs: numberFromEnv('BENCH_WARMUP_MS') ?? 500,
  clock: process.env.BENCH_CLOCK === 'wall' ? 'wall' : 'cpu',
};
const filter = process.env.BENCH_FILTER ? new RegExp(process.env.BENCH_FILTER) : undefined;

/** Set in a child process that runs one app's rows of a section (see `perApp`): where it writes them. */
const childOut = process.env.BENCH_CHILD_OUT;

/**
 * `teardown` runs after the section, also when the filter left none of its rows. `clock` fixes
 * the section's clock (I/O-bound sections measure wall time) unless BENCH_CLOCK is set. `perApp`
 * runs the rows of each app (the group's first word: raw, express, koa, fastify) in a child
 * process of its own, peers and fc-async together: a deployed function serves one app, so the
 * code they share (fc-async's bridge, Node's http classes) sees one framework's objects, as it
 * does in production, rather than every framework's, which leaves it megamorphic for all rows.
 */
const sections: {
  name: string;
  legend: string;
  cases: () => BenchCase[];
  teardown?: () => Promise<void>;
  clock?: BenchOptions['clock'];
  perApp?: boolean;
}[] = [
  { name: 'bridge', legend: BRIDGE_LEGEND, cases: bridgeCases, perApp: true },
  { name: 'tracing', legend: TRACING_LEGEND, cases: tracingCases, perApp: true },
  {
    name: 'tracing-sdk',
    legend: TRACING_SDK_LEGEND,
    cases: tracingSdkCases,
    teardown: tracingSdkTeardown,
    perApp: true,
  },
  { name: 'backends', legend: BACKENDS_LEGEND, cases: backendCases, teardown: backendsTeardown, clock: 'wall' },
];

const escapeRegExp = (text: string) => text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/** Runs `groups` of `section` in a child process of this script; resolves to their results. */
async function inChild(section: string, groups: readonly string[]): Promise<BenchResult[]> {
  const dir = mkdtempSync(join(tmpdir(), 'fc-async-bench-child-'));
  const out = join(dir, 'results.json');
  try {
    const script = fileURLToPath(import.meta.url);
    const env = {
      ...process.env,
      BENCH_FILTER: `^${escapeRegExp(section)} (?:${groups.map(escapeRegExp).join('|')})$`,
      BENCH_CHILD_OUT: out,
    };
    const child = spawn(process.execPath, [...process.execArgv, script], {
      env,
      stdio: ['ignore', 'inherit', 'inherit'],
    });
    const code = await new Promise<number | null>((resolve, reject) => {
      child.once('error', reject);
      child.once('exit', resolve);
    });
    if (code !== 0) throw new Error(`bench: the child for ${section} ${groups.join(', ')} exited with ${code}`);
    const report = JSON.parse(readFileSync(out, 'utf8')) as { sections: Record<string, BenchResult[]> };
    return report.sections[section] ?? [];
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Each app's rows in a child process of its own, in the section's order. */
async function perApp(section: string, cases: readonly BenchCase[]): Promise<BenchResult[]> {
  const apps = new Map<string, string[]>();
  for (const group of new Set(cases.map((c) => c.group))) {
    const app = group.split(' ')[0] ?? group;
    apps.set(app, [...(apps.get(app) ?? []), group]);
  }
  const results: BenchResult[] = [];
  for (const groups of apps.values()) results.push(...(await inChild(section, groups)));
  return results;
}

const results: Record<string, BenchResult[]> = {};
if (!childOut) {
  const machine = machineInfo();
  console.log(
    `${machine.cpu}, ${machine.cores} cores, Node ${machine.node}, ${options.rounds} rounds of ~${options.roundMs} ms per row, ${options.clock} time`,
  );
}
for (const section of sections) {
  try {
    const cases = section.cases().filter((c) => !filter || filter.test(`${section.name} ${c.group}`));
    if (cases.length === 0) continue;
    if (!childOut) console.log(`\n${section.legend}\n`);
    const clock = process.env.BENCH_CLOCK ? options.clock : (section.clock ?? options.clock);
    const sectionResults =
      section.perApp && !childOut ? await perApp(section.name, cases) : await runBench(cases, { ...options, clock });
    results[section.name] = sectionResults;
    if (!childOut) printTable(sectionResults);
  } finally {
    await section.teardown?.();
  }
}
// Sections with a measurement loop of their own (fresh handlers per round, servers in child processes); they print their rows.
const throughputSections: {
  name: string;
  group: string;
  legend: string;
  run: (options: BenchOptions) => Promise<BenchResult[]>;
}[] = [
  { name: 'async', group: 'engine', legend: ASYNC_LEGEND, run: asyncSection },
  { name: 'emulator', group: '202 throughput', legend: EMULATOR_LEGEND, run: emulatorThroughput },
];
for (const section of childOut ? [] : throughputSections) {
  if (filter && !filter.test(`${section.name} ${section.group}`)) continue;
  console.log(`\n${section.legend}\n`);
  results[section.name] = await section.run(options);
}
const out = childOut ?? fileURLToPath(new URL('../results/latest.json', import.meta.url));
writeJson(out, results, options);
if (!childOut) console.log(`\nWrote ${out}`);
