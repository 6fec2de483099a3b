import { runPulse } from './measure.js';

// `npm start`: 1 000 async requests within one second at a function that runs 8 at a time and
// lets 200 wait. What does not fit is refused with 429 and Retry-After, at once, instead of
// piling up: backpressure. Change the numbers with PULSE_COUNT, PULSE_CONCURRENCY, PULSE_MAX_QUEUED.
const run = {
  count: Number(process.env.PULSE_COUNT ?? 1000),
  overMs: 1000,
  concurrency: Number(process.env.PULSE_CONCURRENCY ?? 8),
  maxQueuedTasks: Number(process.env.PULSE_MAX_QUEUED ?? 200),
};
console.log(
  `pulse: ${run.count} async requests over ${run.overMs} ms; concurrency ${run.concurrency}, max queued tasks ${run.maxQueuedTasks}`,
);

const r = await runPulse(run);
const others = Object.entries(r.otherStatuses).map(([status, n]) => `${n} × ${status}`);
console.log(`
sent          ${r.sent}, all answered within ${Math.round(r.pulseMs)} ms
accepted      ${r.accepted}  (202)
rejected      ${r.rejected}  (429, ${r.rejectedWithRetryAfter} with Retry-After)${others.length ? `\nother         ${others.join(', ')}` : ''}
completed     ${r.completed}
failed        ${r.failed}
throughput    ${r.throughput.toFixed(1)} tasks/s
concurrency   at most ${r.maxConcurrency} running at once (limit ${r.concurrency})`);

const ok = r.completed === r.accepted && r.maxConcurrency <= r.concurrency && others.length === 0;
console.log(ok ? '\nok: every accepted task completed' : '\nnot ok: see the counts above');
process.exitCode = ok ? 0 : 1;
