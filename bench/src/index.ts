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

/**
 * `teardown` runs after the section, also when the filter left none of its rows. `clock` fixes
 * the section's clock (I/O-bound sections measure wall time) unless BENCH_CLOCK is set.
 */
const sections: {
  name: string;
  legend: string;
  cases: () => BenchCase[];
  teardown?: () => Promise<void>;
  clock?: BenchOptions['clock'];
}[] = [
  { name: 'bridge', legend: BRIDGE_LEGEND, cases: bridgeCases },
  { name: 'tracing', legend: TRACING_LEGEND, cases: tracingCases },
  { name: 'tracing-sdk', legend: TRACING_SDK_LEGEND, cases: tracingSdkCases, teardown: tracingSdkTeardown },
  { name: 'backends', legend: BACKENDS_LEGEND, cases: backendCases, teardown: backendsTeardown, clock: 'wall' },
];

const machine = machineInfo();
console.log(
  `${machine.cpu}, ${machine.cores} cores, Node ${machine.node}, ${options.rounds} rounds of ~${options.roundMs} ms per row, ${options.clock} time`,
);
const results: Record<string, BenchResult[]> = {};
for (const section of sections) {
  try {
    const cases = section.cases().filter((c) => !filter || filter.test(`${section.name} ${c.group}`));
    if (cases.length === 0) continue;
    console.log(`\n${section.legend}\n`);
    const clock = process.env.BENCH_CLOCK ? options.clock : (section.clock ?? options.clock);
    const sectionResults = await runBench(cases, { ...options, clock });
    results[section.name] = sectionResults;
    printTable(sectionResults);
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
for (const section of throughputSections) {
  if (filter && !filter.test(`${section.name} ${section.group}`)) continue;
  console.log(`\n${section.legend}\n`);
  results[section.name] = await section.run(options);
}
const out = fileURLToPath(new URL('../results/latest.json', import.meta.url));
writeJson(out, results, options);
console.log(`\nWrote ${out}`);
