import { existsSync } from 'node:fs';
import { copyFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { DestinationRecord } from '@fc-async/core';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { bundleFunctions } from '../scripts/bundle.js';
import { type Emulator, localCli, startEmulator } from '../scripts/demo/emulator.js';
import { callTranscode } from '../scripts/demo/http.js';
import { ffmpegProcesses } from '../scripts/demo/processes.js';
import { keptRecords } from '../scripts/demo/records.js';
import { BUCKET, EXAMPLE_DIR, job } from '../scripts/demo/setup.js';
import { type FcClient, fcClient, getTask, stopTask, watchTask } from '../scripts/demo/tasks.js';
import { createSampleVideo } from '../src/sample.js';
import { LocalStorage } from '../src/storage.js';
import { codecs, probe, tempDir, waitFor } from './helpers.js';

// End to end: the s.yaml of this example under the real `fc-async dev` (the CLI of
// @fc-async/local, in its own process, on free ports), driven over HTTP and through the official
// FC SDK. The code folders are built into a temporary copy of the project, next to a copy of s.yaml.

const run = Date.now().toString(36);
const CLIP = 'videos/clip.mp4'; // 2 seconds
const LONG = `videos/long-${run}.mp4`; // long enough to be stopped mid-transcode
let root: string;
let storage: LocalStorage;
let emulator: Emulator | undefined;
let client: FcClient;

beforeAll(async () => {
  root = await tempDir('e2e');
  storage = new LocalStorage(join(root, 'buckets'));
  await Promise.all([
    copyFile(join(EXAMPLE_DIR, 's.yaml'), join(root, 's.yaml')),
    bundleFunctions({ outDir: join(root, 'dist') }),
    createSampleVideo(storage.locate(BUCKET, CLIP), { seconds: 2 }),
    createSampleVideo(storage.locate(BUCKET, LONG), { seconds: 120 }),
  ]);
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    STORAGE_ROOT: join(root, 'buckets'),
    DEST_RECORDS_DIR: join(root, 'records'),
  };
  // On FC these are set; here the handler must keep its own local engine.
  delete env.FC_REGION;
  delete env.FC_FUNCTION_NAME;
  emulator = await startEmulator({ cwd: root, cli: localCli(EXAMPLE_DIR), env, readyTimeoutMs: 60_000 });
  client = fcClient(emulator.controlEndpoint);
}, 90_000);

afterAll(async () => {
  await emulator?.stop();
  if (root) await rm(root, { recursive: true, force: true });
}, 30_000);

// What the emulator printed helps tell why a test failed on CI.
beforeEach(({ onTestFailed }) => {
  onTestFailed(() => console.error(`fc-async dev printed:\n${emulator?.output.slice(-40).join('\n')}`));
});

/** The record the destination function `name` kept for a request, once it is there. */
async function recordOf(name: 'dest-succ' | 'dest-fail', requestId: string | null): Promise<DestinationRecord> {
  const ids = [requestId ?? 'none'];
  return waitFor(
    async () => (await keptRecords(name, ids, join(root, 'records'))).records[0],
    `the ${name} record of ${requestId}`,
    15_000,
  );
}

/** A log line of the app (JSON, in what the emulator printed) about a request, once it is there. */
function appLog(message: string, requestId: string | null): Promise<Record<string, unknown>> {
  const find = () =>
    emulator?.output
      .filter((line) => line.startsWith('{'))
      .map((line) => JSON.parse(line) as Record<string, unknown>)
      .find((entry) => entry.message === message && entry.requestId === requestId);
  return waitFor(find, `the log line "${message}" of ${requestId}`, 15_000);
}

// Each step polls with its own deadline, well inside the test's; a run takes 10-40 s.
describe('the example under fc-async dev --config s.yaml', { timeout: 45_000 }, () => {
  it.each([
    { format: 'mp4', formatName: 'mov,mp4,m4a,3gp,3g2,mj2', files: ['clip.mp4'] },
    { format: 'm3u8', formatName: 'hls', files: ['clip.m3u8', 'clip_000.ts'] },
  ])('async $format: 202 at once, Succeeded, the output is $format, dest-succ gets the record', async (c) => {
    const taskId = `e2e_${run}_${c.format}`;
    const answer = await callTranscode(emulator!.triggerUrl, job(CLIP, c.format, `out-${c.format}`), { taskId });
    expect(answer).toMatchObject({ status: 202, taskId, body: '' });
    expect(answer.requestId).toMatch(/^1-/);

    const task = await watchTask(client, 'transcode', taskId, { timeoutMs: 20_000 });
    expect(task).toMatchObject({ status: 'Succeeded', requestId: answer.requestId, alreadyRetriedTimes: 0 });
    const keys = c.files.map((file) => `out-${c.format}/${file}`);
    expect(JSON.parse(task.returnPayload ?? '{}')).toMatchObject({ format: c.format, outputs: keys });

    const main = await probe(storage.locate(BUCKET, keys[0] as string));
    expect(main.format.format_name).toBe(c.formatName);
    expect(codecs(main, 'video')).toEqual(['h264']);
    expect(codecs(main, 'audio')).toEqual(['aac']);
    expect(Number(main.format.duration)).toBeCloseTo(2, 0);
    for (const key of keys) expect(existsSync(storage.locate(BUCKET, key))).toBe(true);

    const record = await recordOf('dest-succ', answer.requestId);
    expect(record.requestContext).toMatchObject({
      functionArn: 'acs:fc:cn-hangzhou:0:functions/transcode',
      approximateInvokeCount: 1,
    });
    expect(record.responseContext.statusCode).toBe(200);
  });

  it('a missing object fails its 3 attempts (2 retries), is Failed, and dest-fail gets the failure', async () => {
    const taskId = `e2e_${run}_missing`;
    const answer = await callTranscode(emulator!.triggerUrl, job('videos/missing.mp4', 'mp4', 'never'), { taskId });
    expect(answer.status).toBe(202);

    const task = await watchTask(client, 'transcode', taskId, { timeoutMs: 20_000 });
    expect(task).toMatchObject({ status: 'Failed', alreadyRetriedTimes: 2 });
    expect(existsSync(storage.locate(BUCKET, 'never'))).toBe(false);

    const record = await recordOf('dest-fail', answer.requestId);
    expect(record.requestContext).toMatchObject({
      requestId: answer.requestId,
      condition: 'UnhandledInvocationError',
      approximateInvokeCount: 3,
    });
    expect(record.responseContext.statusCode).toBe(404);
    expect(JSON.parse(record.responsePayload ?? '{}')).toMatchObject({ errorType: 'ObjectNotFound' });
    expect(JSON.parse(record.requestPayload ?? '{}').body).toContain('videos/missing.mp4');
  });

  it('StopAsyncTask kills the running ffmpeg: the task is Stopped, nothing is written', async () => {
    const taskId = `e2e_${run}_stop`;
    const output = `long-${run}.webm`;
    const answer = await callTranscode(emulator!.triggerUrl, job(LONG, 'webm', 'stopped'), { taskId });
    expect(answer.status).toBe(202);

    const pids = await waitFor(
      async () => {
        const found = await ffmpegProcesses(output);
        if (found === undefined) throw new Error('this test reads /proc to find ffmpeg');
        if (found.length > 0) return found;
        // Finished without ffmpeg ever being seen: fail now, with the task's state.
        const { status } = await getTask(client, 'transcode', taskId);
        if (!['Enqueued', 'Running'].includes(status ?? '')) throw new Error(`the task is ${status} already`);
        return undefined;
      },
      'ffmpeg to run the task',
      15_000,
    );
    expect(pids).toContain((await appLog('ffmpeg started', answer.requestId)).pid);
    await stopTask(client, 'transcode', taskId);
    const task = await watchTask(client, 'transcode', taskId, { timeoutMs: 10_000 });
    expect(task.status).toBe('Stopped');
    // The request settles only once ffmpeg has exited, and the task is Stopped only then.
    expect((await ffmpegProcesses(output))?.filter((pid) => pids.includes(pid))).toEqual([]);
    // Killed mid-way by the abort, not finished on its own: a stop, logged at info.
    const stopped = await appLog('transcode stopped', answer.requestId);
    expect(stopped).toMatchObject({ level: 'info', code: 'TranscodeStopped', reason: 'Stopped' });
    expect(existsSync(storage.locate(BUCKET, `stopped/${output}`))).toBe(false);

    const record = await recordOf('dest-fail', answer.requestId);
    expect(record.requestContext.condition).toBe('Stopped');
  });

  it('the FC API checks the SDK signature against the key it was started with', async () => {
    const wrong = fcClient(emulator!.controlEndpoint, { accessKeyId: 'fc-async-local', accessKeySecret: 'wrong' });
    await expect(getTask(wrong, 'transcode', `e2e_${run}_mp4`)).rejects.toMatchObject({
      code: 'SignatureNotMatch',
      statusCode: 403,
    });
    await expect(getTask(client, 'transcode', `e2e_${run}_nope`)).rejects.toMatchObject({
      code: 'AsyncTaskNotFound',
      statusCode: 404,
    });
  });
});
