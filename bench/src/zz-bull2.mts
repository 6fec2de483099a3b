// temporary: bullmq accept vs queue.add, alternating rounds (not committed)
import { Queue } from 'bullmq';
import { createFcHandler } from '@fc-async/core';
import { bullmq } from '@fc-async/bullmq';
import { jobEvent, JOB_BODY, startEnv } from './backends-env.js';
const env = await startEnv();
const silent = { debug() {}, info() {}, warn() {}, error() {} };
const h = createFcHandler((_req, res) => res.end('{"ok":true}'), { logger: silent as any, env: {}, tracing: { enabled: false },
  async: { mode: 'local', concurrency: 10, maxQueuedTasks: 1e7, backend: bullmq({ connection: env.redisUrl, prefix: 'ours', worker: false }) } });
await h.engine!.whenReady();
const q = new Queue('tasks', { connection: { host: '127.0.0.1', port: env.redisPort, maxRetriesPerRequest: null }, prefix: 'raw' });
const rawJob = () => ({ method: 'POST', url: '/transcode', headers: jobEvent('x').headers, body: JOB_BODY });
let n = 0; const R = Number(process.env.R ?? 20), M = Number(process.env.M ?? 300);
const ra: number[] = [], ca: number[] = [], rr: number[] = [];
const rc = await q.client;
const rcpu = async () => { const t = await rc.info('cpu'); const g = (k: string) => Number(new RegExp(k + ':([0-9.]+)').exec(t)![1]); return (g('used_cpu_user') + g('used_cpu_sys')) * 1e6; };
for (let r = 0; r < R; r++) {
  let r0 = await rcpu(); let c = process.cpuUsage(); let w = performance.now();
  for (let i = 0; i < M; i++) { const res = await h(jobEvent(`t_${n++}`)); if (res.statusCode !== 202) throw new Error(String(res.statusCode)); }
  const a = performance.now() - w; const ac = process.cpuUsage(c); const ar = await rcpu() - r0;
  r0 = await rcpu(); c = process.cpuUsage(); w = performance.now();
  for (let i = 0; i < M; i++) await q.add('task', rawJob(), { jobId: `r_${n++}` });
  const b = performance.now() - w; const bc = process.cpuUsage(c); const br = await rcpu() - r0;
  if (r >= 3) { rr.push(ar / br); ra.push(a / b); ca.push((ac.user + ac.system) / (bc.user + bc.system)); }
  if (r === R - 1) console.log(`last round: ours ${(a * 1000 / M).toFixed(0)} µs wall ${((ac.user + ac.system) / M).toFixed(0)} µs cpu redis ${(ar/M).toFixed(0)}; raw ${(b * 1000 / M).toFixed(0)} wall ${((bc.user + bc.system) / M).toFixed(0)} cpu redis ${(br/M).toFixed(0)}`);
}
const med = (x: number[]) => x.sort((p, q) => p - q)[x.length >> 1].toFixed(3);
console.log(`wall ratio ${med(ra)}  cpu ratio ${med(ca)}  redis ratio ${med(rr)}`);
await q.close(); await h.close?.(); env.stop(); process.exit(0);
