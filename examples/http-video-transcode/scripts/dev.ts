import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { localCli } from './demo/emulator.js';
import { curlLine } from './demo/http.js';
import { EXAMPLE_DIR, job, prepare, SAMPLES } from './demo/setup.js';

// `npm run dev [-- <fc-async dev flags>]`: build the code folders, create the sample video on
// first run, run `fc-async dev --config s.yaml` in the foreground (Ctrl-C stops it), and once it
// listens print the curl lines to try against the URL it serves `transcode` on.
const storage = await prepare(['sample'], (line) => console.log(line));
const sample = storage.locate('demo-bucket', SAMPLES.sample.key);

const args = [localCli(EXAMPLE_DIR), 'dev', '--config', 's.yaml', ...process.argv.slice(2)];
// Its own process group: a Ctrl-C reaches it once, through this script, not also from the
// terminal (twice would make it quit at once instead of letting running tasks finish).
const child = spawn(process.execPath, args, { cwd: EXAMPLE_DIR, stdio: ['ignore', 'pipe', 'inherit'], detached: true });
let trigger: string | undefined;
let shown = false;
createInterface({ input: child.stdout }).on('line', (line) => {
  console.log(line);
  // The banner: `  transcode   http://127.0.0.1:9000/   fc-async-handler, index.handler`, then
  // `  dashboard   http://127.0.0.1:9001/  (FC API 2023-03-30 on the same port)`.
  trigger ??= /^\s+transcode\s+(https?:\/\/\S+)/.exec(line)?.[1];
  const control = /^\s+dashboard\s+(https?:\/\/\S+)/.exec(line)?.[1];
  if (!trigger || !control || shown) return;
  shown = true;
  const task = `${control.replace(/\/$/, '')}/2023-03-30/functions/transcode/async-tasks`;
  console.log(`\nsample video: ${sample}\ntry:\n`);
  console.log(`  ${curlLine(trigger, job(SAMPLES.sample.key, 'mp4'), false)}`);
  console.log(`  ${curlLine(trigger, job(SAMPLES.sample.key, 'm3u8', 'hls'), true)}`);
  console.log(`  ${curlLine(trigger, job('videos/missing.mp4', 'mp4'), true)}`);
  console.log(`  curl ${task}/TASK_ID    # GetAsyncTask, TASK_ID being the x-fc-async-task-id of a 202`);
  console.log(`\ntasks live, with a Stop button: ${control}\n`);
});
for (const signal of ['SIGINT', 'SIGTERM'] as const) process.on(signal, () => child.kill(signal));
child.on('exit', (code, signal) => process.exit(code ?? (signal ? 1 : 0)));
