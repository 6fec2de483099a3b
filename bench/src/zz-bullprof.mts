import { createFcHandler } from '@fc-async/core';
import { bullmq } from '@fc-async/bullmq';
import { jobEvent, startEnv } from './backends-env.js';
const env = await startEnv();
const silent = { debug() {}, info() {}, warn() {}, error() {} };
const h = createFcHandler((_req, res) => res.end('{"ok":true}'), { logger: silent as any, env: {}, tracing: { enabled: false },
  async: { mode: 'local', concurrency: 10, maxQueuedTasks: 1e7, backend: bullmq({ connection: env.redisUrl, prefix: 'ours', worker: false }) } });
await h.engine!.whenReady();
let n = 0;
const M = Number(process.env.M ?? 6000);
const c = process.cpuUsage(); const w = performance.now();
for (let i = 0; i < M; i++) { const res = await h(jobEvent(`t_${n++}`)); if (res.statusCode !== 202) throw new Error(String(res.statusCode)); }
const cc = process.cpuUsage(c);
console.log(`${((performance.now() - w) * 1000 / M).toFixed(0)} µs wall ${((cc.user + cc.system) / M).toFixed(0)} µs cpu (user ${(cc.user/M).toFixed(0)})`);
await h.close?.(); env.stop(); process.exit(0);
