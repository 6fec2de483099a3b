import { existsSync } from 'node:fs';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { defaultStorageRoot } from '../src/config.js';
import { probeFile } from '../src/probe.js';
import { startEmulator } from './demo/emulator.js';
import { callTranscode, curlLine } from './demo/http.js';
import { poll } from './demo/poll.js';
import { ffmpegProcesses } from './demo/processes.js';
import { waitForRecords } from './demo/records.js';
import { EXAMPLE_DIR, job, prepare, SAMPLES } from './demo/setup.js';
import { fcClient, stopTask, type Task, watchTask } from './demo/tasks.js';

// `npm run demo`: a scripted tour of the example under `fc-async dev`, through its HTTP trigger and
// the official FC SDK. Exits 0 when every step behaved as FC would, 1 otherwise.

const FUNCTION = 'transcode';
const run = Date.now().toString(36);
const problems: string[] = [];
const say = (line = '') => console.log(line);
const check = (ok: boolean, what: string) => {
  say(`  ${ok ? 'ok' : 'NOT OK'}  ${what}`);
  if (!ok) problems.push(what);
};
const status = (task: Task) =>
  say(`    ${task.taskId}: ${task.status}${task.alreadyRetriedTimes ? ` (retried ${task.alreadyRetriedTimes})` : ''}`);

say('# preparing');
await prepare(['sample', 'long'], (line) => say(`  ${line}`));
say('\n# starting fc-async dev --config s.yaml (on free ports)');
const emulator = await startEmulator({ cwd: EXAMPLE_DIR });
const client = fcClient(emulator.controlEndpoint); // signs with the key the emulator checks
say(`  HTTP trigger ${emulator.triggerUrl}, FC API ${emulator.controlEndpoint} (official SDK, signed requests)`);
const succeededIds: string[] = [];

try {
  say('\n# 1. a sync call: the answer comes when the transcode is done');
  const syncJob = job(SAMPLES.sample.key, 'mp4', `demo-${run}/sync`);
  say(`  ${curlLine(emulator.triggerUrl, syncJob, false)}`);
  const sync = await callTranscode(emulator.triggerUrl, syncJob);
  say(`  -> ${sync.status} ${sync.body}`);
  check(sync.status === 200, 'the sync call answered 200 with the outputs');

  say('\n# 2. async calls: 202 at once, the work runs in the background');
  const formats = ['mp4', 'webm', 'gif', 'mp3', 'm3u8'];
  const ids: string[] = [];
  for (const format of formats) {
    const taskId = `demo_${run}_${format}`;
    const answer = await callTranscode(emulator.triggerUrl, job(SAMPLES.sample.key, format, `demo-${run}/async`), {
      taskId,
    });
    say(`  ${format.padEnd(5)} -> ${answer.status}, task ${answer.taskId}, request ${answer.requestId}`);
    check(answer.status === 202, `${format}: accepted with 202`);
    ids.push(taskId);
  }

  say('\n# 3. progress, through the task API (GetAsyncTask with the official SDK)');
  for (const taskId of ids) {
    const task = await watchTask(client, FUNCTION, taskId, { onStatus: status });
    if (task.requestId) succeededIds.push(task.requestId);
    check(task.status === 'Succeeded', `${taskId} succeeded`);
  }

  say('\n# 4. stopping a running task (StopAsyncTask): ffmpeg is killed');
  const longId = `demo_${run}_stop`;
  await callTranscode(emulator.triggerUrl, job(SAMPLES.long.key, 'webm', `demo-${run}/stopped`), { taskId: longId });
  await watchTask(client, FUNCTION, longId, { onStatus: status, until: (t) => t.status !== 'Enqueued' });
  // Where there is a /proc, stop once ffmpeg is seen running; elsewhere, as soon as the task runs.
  const pids = await poll(
    async () => {
      const found = await ffmpegProcesses('long.webm');
      return found === undefined ? [] : found.length > 0 && found;
    },
    { timeoutMs: 30_000 },
  );
  if (pids?.length) say(`    ffmpeg is running: pid ${pids.join(', ')}`);
  await stopTask(client, FUNCTION, longId);
  const stopped = await watchTask(client, FUNCTION, longId, { onStatus: status });
  check(stopped.status === 'Stopped', `${longId} is Stopped`);
  const partial = join(defaultStorageRoot(), 'demo-bucket', `demo-${run}`, 'stopped', 'long.webm');
  check(!existsSync(partial), 'nothing was written to its output_dir');
  const left = await ffmpegProcesses('long.webm');
  if (pids?.length && left) {
    const alive = left.filter((pid) => pids.includes(pid));
    check(alive.length === 0, `its ffmpeg is gone (${alive.length ? `still running: ${alive.join(', ')}` : 'killed'})`);
  }

  say('\n# 5. a missing object: retried twice, then Failed, and dest-fail gets the record');
  const missingId = `demo_${run}_missing`;
  await callTranscode(emulator.triggerUrl, job('videos/missing.mp4', 'mp4', `demo-${run}/never`), {
    taskId: missingId,
  });
  const failed = await watchTask(client, FUNCTION, missingId, { onStatus: status });
  check(failed.status === 'Failed' && failed.alreadyRetriedTimes === 2, `${missingId} failed after 2 retries`);

  say('\n# 6. where everything landed');
  const outDir = join(defaultStorageRoot(), 'demo-bucket', `demo-${run}`);
  for (const folder of ['sync', 'async']) {
    for (const file of (await readdir(join(outDir, folder)).catch(() => [])).sort()) {
      const path = join(outDir, folder, file);
      const format = (await probeFile(path)).format.format_name;
      say(`  ${path}  (${format})`);
    }
  }
  // Destinations are invoked asynchronously once a task is final: their records land a little later.
  const failedIds = [stopped.requestId, failed.requestId].filter((id): id is string => Boolean(id));
  const records = {
    'dest-succ': await waitForRecords('dest-succ', succeededIds, { timeoutMs: 30_000 }),
    'dest-fail': await waitForRecords('dest-fail', failedIds, { timeoutMs: 30_000 }),
  };
  for (const [name, list] of Object.entries(records)) {
    say(`  ${name}: ${list.file}`);
    for (const r of list.records)
      say(`    ${r.requestContext.requestId} condition=${JSON.stringify(r.requestContext.condition)}`);
  }
  check(records['dest-succ'].records.length === formats.length, `dest-succ kept ${formats.length} records`);
  const conditions = records['dest-fail'].records.map((r) => r.requestContext.condition).sort();
  check(
    JSON.stringify(conditions) === JSON.stringify(['Stopped', 'UnhandledInvocationError']),
    'dest-fail kept the stopped task (Stopped) and the failure (UnhandledInvocationError)',
  );
} finally {
  await emulator.stop();
}

say(
  problems.length === 0
    ? '\nThe tour went as expected.'
    : `\n${problems.length} step(s) did not: ${problems.join('; ')}`,
);
process.exit(problems.length === 0 ? 0 : 1);
