import { bridgeCases } from './bridge.js';
import { printTable, runBench } from './harness.js';
const [group, ...names] = process.argv.slice(2);
const cases = bridgeCases().filter((c) => c.group === group && (names.length === 0 || names.includes(c.name)));
printTable(await runBench(cases, { rounds: 8 }));
