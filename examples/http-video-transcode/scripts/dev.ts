import { spawn } from 'node:child_process';
import { localCli } from './demo/emulator.js';
import { curlLine } from './demo/http.js';
import { EXAMPLE_DIR, job, prepare, SAMPLES } from './demo/setup.js';

// `npm run dev`: build, create the sample video on first run, print the curl lines, then run
// `fc-async dev --config s.yaml` in the foreground (Ctrl-C stops it).
const storage = await prepare(['sample'], (line) => console.log(line));
const url = process.env.FC_ASYNC_TRIGGER_URL ?? 'http://127.0.0.1:9000/';
console.log(`\nsample video: ${storage.locate('demo-bucket', SAMPLES.sample.key)}\ntry:\n`);
console.log(`  ${curlLine(url, job(SAMPLES.sample.key, 'mp4'), false)}`);
console.log(`  ${curlLine(url, job(SAMPLES.sample.key, 'm3u8', 'hls'), true)}`);
console.log(`  ${curlLine(url, job('videos/missing.mp4', 'mp4'), true)}\n`);

const child = spawn(process.execPath, [localCli(EXAMPLE_DIR), 'dev', '--config', 's.yaml'], {
  cwd: EXAMPLE_DIR,
  stdio: 'inherit',
});
for (const signal of ['SIGINT', 'SIGTERM'] as const) process.on(signal, () => child.kill(signal));
child.on('exit', (code, signal) => process.exit(code ?? (signal ? 1 : 0)));
