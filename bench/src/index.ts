import { fileURLToPath } from 'node:url';
import { BRIDGE_LEGEND, bridgeCases } from './bridge.js';
import { type BenchOptions, type BenchResult, machineInfo, printTable, runBench, writeJson } from './harness.js';

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

const sections = [{ name: 'bridge', legend: BRIDGE_LEGEND, cases: bridgeCases }];

const machine = machineInfo();
console.log(
  `${machine.cpu}, ${machine.cores} cores, Node ${machine.node}, ${options.rounds} rounds of ~${options.roundMs} ms per row, ${options.clock} time`,
);
const results: Record<string, BenchResult[]> = {};
for (const section of sections) {
  const cases = section.cases().filter((c) => !filter || filter.test(`${section.name} ${c.group}`));
  if (cases.length === 0) continue;
  console.log(`\n${section.legend}\n`);
  const sectionResults = await runBench(cases, options);
  results[section.name] = sectionResults;
  printTable(sectionResults);
}
const out = fileURLToPath(new URL('../results/latest.json', import.meta.url));
writeJson(out, results, options);
console.log(`\nWrote ${out}`);
