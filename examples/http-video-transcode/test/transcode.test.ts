import { existsSync } from 'node:fs';
import { mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { dirname, join } from 'node:path';
import { type FcHandler, functionDestination, silentLogger } from '@fc-async/core';
import { createHandler } from '@fc-async/express';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createDestinationHandler } from '../functions/destination.js';
import { createApp } from '../src/app.js';
import { TRANSCODE_ASYNC } from '../src/config.js';
import { createSampleVideo } from '../src/sample.js';
import { LocalStorage, type Storage } from '../src/storage.js';
import { codecs, fcEvent, isAlive, memoryLogger, probe, readRecords, tempDir, waitFor } from './helpers.js';

let root: string;
let storage: LocalStorage;
let destDir: string;
const handlers: FcHandler[] = [];

/** The transcode function as s.yaml configures it, queued in-process, its destinations the two event functions. */
function transcodeHandler(app: Parameters<typeof createApp>[0]): FcHandler {
  const destSucc = createDestinationHandler('dest-succ', { dir: destDir, logger: silentLogger });
  const destFail = createDestinationHandler('dest-fail', { dir: destDir, logger: silentLogger });
  const handler = createHandler(createApp({ workDir: root, ...app }), {
    logger: silentLogger,
    async: {
      ...TRANSCODE_ASYNC,
      mode: 'local',
      timeoutSeconds: 60,
      backoff: { baseMs: 10, maxMs: 40, jitter: 'none' },
    },
    // FC hands a destination function the record as a Buffer event.
    destinations: {
      onSuccess: functionDestination((record) => destSucc(Buffer.from(JSON.stringify(record)))),
      onFailure: functionDestination((record) => destFail(Buffer.from(JSON.stringify(record)))),
    },
  });
  handlers.push(handler);
  return handler;
}

const job = (object: string, dst_format: string, output_dir = 'out') => ({
  bucket: 'videos',
  object,
  output_dir,
  dst_format,
});
const asyncCall = (taskId: string) => ({ 'X-Fc-Invocation-Type': 'Async', 'X-Fc-Async-Task-Id': taskId });

beforeAll(async () => {
  root = await tempDir('transcode');
  storage = new LocalStorage(join(root, 'buckets'));
  destDir = join(root, 'destinations');
  await createSampleVideo(storage.locate('videos', 'in/clip.mp4'), { seconds: 2 });
});

afterAll(async () => {
  await Promise.all(handlers.map((h) => h.close()));
  await rm(root, { recursive: true, force: true });
});

describe('transcode, sync', () => {
  it('writes <output_dir>/<name>.mp4 and answers the keys it wrote', async () => {
    const handler = transcodeHandler({ storage, logger: silentLogger });
    const result = await handler(fcEvent(job('in/clip.mp4', 'mp4', 'sync')), {});
    expect(result.statusCode).toBe(200);
    expect(JSON.parse(result.body)).toMatchObject({ bucket: 'videos', format: 'mp4', outputs: ['sync/clip.mp4'] });
    const p = await probe(storage.locate('videos', 'sync/clip.mp4'));
    expect(p.format.format_name).toContain('mp4');
    expect(codecs(p, 'video')).toEqual(['h264']);
    expect(codecs(p, 'audio')).toEqual(['aac']);
    expect(Number(p.format.duration)).toBeCloseTo(2, 0);
  });

  it('answers 404 ObjectNotFound for a missing object', async () => {
    const handler = transcodeHandler({ storage, logger: silentLogger });
    const result = await handler(fcEvent(job('in/missing.mp4', 'mp4')), {});
    expect(result.statusCode).toBe(404);
    const message = 'Object "in/missing.mp4" was not found in bucket "videos"';
    expect(JSON.parse(result.body)).toEqual({
      code: 'ObjectNotFound',
      message,
      errorType: 'ObjectNotFound',
      errorMessage: message,
    });
  });

  it('reads a JSON body sent as application/octet-stream (the official SDK’s InvokeFunction default)', async () => {
    const handler = transcodeHandler({ storage, logger: silentLogger });
    const event = fcEvent(job('in/missing.mp4', 'mp4'), { 'content-type': 'application/octet-stream' });
    const result = await handler(event, {});
    // Read and checked: the object is missing, not the body unreadable.
    expect([result.statusCode, JSON.parse(result.body).code]).toEqual([404, 'ObjectNotFound']);
  });

  it('answers 413 EntityTooLarge for a JSON body over 16 KB', async () => {
    const handler = transcodeHandler({ storage, logger: silentLogger });
    const result = await handler(fcEvent({ ...job('in/clip.mp4', 'mp4'), pad: 'x'.repeat(17 * 1024) }), {});
    expect(result.statusCode).toBe(413);
    expect(JSON.parse(result.body)).toMatchObject({ code: 'EntityTooLarge', errorType: 'EntityTooLarge' });
  });

  it('refuses to fetch what a disguised playlist points to, and answers 500 TranscodeFailed', async () => {
    const hits: string[] = [];
    const server = createServer((req, res) => {
      hits.push(req.url ?? '');
      res.end('segment');
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/internal/seg.ts`;
      const playlist = `#EXTM3U\n#EXT-X-TARGETDURATION:10\n#EXTINF:10,\n${url}\n#EXT-X-ENDLIST\n`;
      await mkdir(dirname(storage.locate('videos', 'in/innocent.avi')), { recursive: true });
      await writeFile(storage.locate('videos', 'in/innocent.avi'), playlist);
      const logger = memoryLogger();
      const handler = transcodeHandler({ storage, logger });
      const result = await handler(fcEvent(job('in/innocent.avi', 'mp4', 'evil')), {});
      expect(result.statusCode).toBe(500);
      expect(JSON.parse(result.body)).toMatchObject({ code: 'TranscodeFailed', message: 'ffmpeg exited with code 1' });
      expect(hits).toEqual([]);
      expect(String((logger.entries.find((e) => e.level === 'error')?.fields.cause as Error)?.message)).toContain(
        'not on whitelist',
      );
    } finally {
      await new Promise((resolve) => server.close(resolve));
    }
  });

  it.each([
    ['a body that is not JSON', '{"bucket":', /JSON/],
    ['no bucket', { object: 'in/clip.mp4', output_dir: 'out', dst_format: 'mp4' }, /`bucket`/],
    ['a key leaving the bucket', job('../../etc/passwd', 'mp4'), /`object`/],
    ['an output folder leaving the bucket', job('in/clip.mp4', 'mp4', '../out'), /`output_dir`/],
    ['an unknown format', job('in/clip.mp4', 'wav'), /`dst_format` must be one of mp4, mov/],
  ])('answers 400 InvalidArgument for %s', async (_name, body, message) => {
    const handler = transcodeHandler({ storage, logger: silentLogger });
    const result = await handler(fcEvent(body), {});
    expect(result.statusCode).toBe(400);
    const error = JSON.parse(result.body);
    expect(error.code).toBe('InvalidArgument');
    expect(error.message).toMatch(message);
  });
});

describe('transcode, async', () => {
  it('answers 202 at once; the task succeeds, the output is there and dest-succ keeps the record', async () => {
    const handler = transcodeHandler({ storage, logger: silentLogger });
    const accepted = await handler(fcEvent(job('in/clip.mp4', 'mp4', 'async'), asyncCall('mp4_ok')), {});
    expect(accepted.statusCode).toBe(202);
    expect(accepted.headers['x-fc-async-task-id']).toBe('mp4_ok');
    await handler.drain();

    const task = await handler.tasks.get('mp4_ok');
    expect(task?.status).toBe('Succeeded');
    expect(JSON.parse(task?.returnPayload ?? '{}').outputs).toEqual(['async/clip.mp4']);
    expect((await probe(storage.locate('videos', 'async/clip.mp4'))).format.format_name).toContain('mp4');

    const records = await readRecords(join(destDir, 'dest-succ.jsonl'));
    const record = records.find((r) => r.requestContext.requestId === task?.requestId);
    expect(record?.requestContext).toMatchObject({ condition: '', approximateInvokeCount: 1 });
    expect(JSON.parse(record?.responsePayload ?? '{}').outputs).toEqual(['async/clip.mp4']);
  });

  it('m3u8: writes a VOD playlist and its segments', async () => {
    const handler = transcodeHandler({ storage, logger: silentLogger });
    const accepted = await handler(fcEvent(job('in/clip.mp4', 'm3u8', 'hls'), asyncCall('hls_ok')), {});
    expect(accepted.statusCode).toBe(202);
    await handler.drain();

    const task = await handler.tasks.get('hls_ok');
    expect(task?.status).toBe('Succeeded');
    expect(JSON.parse(task?.returnPayload ?? '{}').outputs).toEqual(['hls/clip.m3u8', 'hls/clip_000.ts']);
    const playlist = await readFile(storage.locate('videos', 'hls/clip.m3u8'), 'utf8');
    expect(playlist).toContain('#EXT-X-PLAYLIST-TYPE:VOD');
    expect(playlist).toContain('clip_000.ts');
    expect((await probe(storage.locate('videos', 'hls/clip.m3u8'))).format.format_name).toBe('hls');
    const segment = await probe(storage.locate('videos', 'hls/clip_000.ts'));
    expect(segment.format.format_name).toBe('mpegts');
    expect(codecs(segment, 'video')).toEqual(['h264']);
  });

  it('m3u8: cuts 10-second segments', async () => {
    await createSampleVideo(storage.locate('videos', 'in/long.mp4'), { seconds: 21 });
    const handler = transcodeHandler({ storage, logger: silentLogger });
    const result = await handler(fcEvent(job('in/long.mp4', 'm3u8', 'hls-long')), {});
    expect(result.statusCode).toBe(200);
    const playlist = await readFile(storage.locate('videos', 'hls-long/long.m3u8'), 'utf8');
    const durations = [...playlist.matchAll(/#EXTINF:([\d.]+),/g)].map((m) => Number(m[1]));
    expect(durations.map(Math.round)).toEqual([10, 10, 1]);
    expect(playlist).toContain('#EXT-X-TARGETDURATION:10');
    expect(JSON.parse(result.body).outputs).toEqual([
      'hls-long/long.m3u8',
      'hls-long/long_000.ts',
      'hls-long/long_001.ts',
      'hls-long/long_002.ts',
    ]);
  });

  it('a missing object fails after its 2 retries and dest-fail receives the failure', async () => {
    const handler = transcodeHandler({ storage, logger: silentLogger });
    const accepted = await handler(fcEvent(job('in/missing.mp4', 'mp4', 'never'), asyncCall('missing_object')), {});
    expect(accepted.statusCode).toBe(202);
    await handler.drain();

    const task = await handler.tasks.get('missing_object');
    expect(task?.status).toBe('Failed');
    expect(task?.alreadyRetriedTimes).toBe(2);
    expect(existsSync(storage.locate('videos', 'never/missing.mp4'))).toBe(false);

    const records = await readRecords(join(destDir, 'dest-fail.jsonl'));
    const record = records.find((r) => r.requestContext.requestId === task?.requestId);
    expect(record?.requestContext).toMatchObject({ condition: 'UnhandledInvocationError', approximateInvokeCount: 3 });
    expect(record?.responseContext.statusCode).toBe(404);
    // The record says why: the app's error answer carries FC's errorType and errorMessage.
    expect(JSON.parse(record?.responsePayload ?? '{}')).toEqual({
      errorType: 'ObjectNotFound',
      errorMessage: 'Object "in/missing.mp4" was not found in bucket "videos"',
    });
    expect(record?.requestPayload).toContain('in/missing.mp4');
  });

  it('stopping a running transcode kills ffmpeg and records Stopped', async () => {
    await createSampleVideo(storage.locate('videos', 'in/twenty.mp4'), { seconds: 20 });
    const logger = memoryLogger();
    // `-re` reads the input at its own frame rate, so ffmpeg is surely still running when the stop arrives.
    const handler = transcodeHandler({ storage, logger, inputArgs: ['-re'] });
    const accepted = await handler(fcEvent(job('in/twenty.mp4', 'webm', 'stopped'), asyncCall('stop_me')), {});
    expect(accepted.statusCode).toBe(202);

    const pid = await waitFor(
      () => logger.entries.find((e) => e.message === 'ffmpeg started')?.fields.pid as number | undefined,
      'ffmpeg to start',
    );
    expect(isAlive(pid)).toBe(true);
    expect((await handler.tasks.stop('stop_me')).status).toBe('Stopping');
    await waitFor(async () => (await handler.tasks.get('stop_me'))?.status === 'Stopped', 'the task to be Stopped');

    expect(isAlive(pid)).toBe(false);
    await handler.drain();
    expect(existsSync(storage.locate('videos', 'stopped/twenty.webm'))).toBe(false);
    const task = await handler.tasks.get('stop_me');
    const records = await readRecords(join(destDir, 'dest-fail.jsonl'));
    expect(records.find((r) => r.requestContext.requestId === task?.requestId)?.requestContext.condition).toBe(
      'Stopped',
    );
    // A stop is no failure: logged at info, without stacks, and the work folder is gone.
    expect(logger.entries.filter((e) => e.level === 'error' || e.level === 'warn')).toEqual([]);
    expect(logger.entries.find((e) => e.message === 'transcode stopped')).toMatchObject({
      level: 'info',
      fields: { code: 'TranscodeStopped', reason: 'Stopped' },
    });
    expect((await readdir(root)).filter((name) => name.startsWith('transcode-'))).toEqual([]);
  });

  it('stopped while it uploads, it leaves nothing in output_dir', async () => {
    let firstUpload: (() => void) | undefined;
    const uploading = new Promise<void>((resolve) => {
      firstUpload = resolve;
    });
    // The first upload ends only once the task is stopped: the stop lands between two uploads.
    const base: Storage = storage;
    const slow: Storage = {
      download: (...args) => base.download(...args),
      remove: (...args) => base.remove(...args),
      locate: (...args) => base.locate(...args),
      async upload(bucket, key, file, options) {
        await base.upload(bucket, key, file, options);
        if (!firstUpload) return;
        firstUpload();
        firstUpload = undefined;
        const signal = options?.signal;
        await new Promise((resolve) => signal?.addEventListener('abort', resolve, { once: true }));
      },
    };
    const handler = transcodeHandler({ storage: slow, logger: silentLogger });
    const accepted = await handler(fcEvent(job('in/clip.mp4', 'm3u8', 'hls-stopped'), asyncCall('stop_upload')), {});
    expect(accepted.statusCode).toBe(202);
    await uploading;
    await handler.tasks.stop('stop_upload');
    await waitFor(async () => (await handler.tasks.get('stop_upload'))?.status === 'Stopped', 'the task to be Stopped');
    await handler.drain();
    expect(await readdir(storage.locate('videos', 'hls-stopped')).catch(() => [])).toEqual([]);
  });
});

describe('transcode, misconfigured', () => {
  it('answers 500 FfmpegNotFound without the path when ffmpeg cannot start, and logs the cause', async () => {
    const logger = memoryLogger();
    const handler = transcodeHandler({ storage, logger, ffmpegPath: join(root, 'no-such-ffmpeg') });
    const result = await handler(fcEvent(job('in/clip.mp4', 'mp4', 'none')), {});
    expect(result.statusCode).toBe(500);
    expect(JSON.parse(result.body)).toMatchObject({
      code: 'FfmpegNotFound',
      message: 'ffmpeg could not be started (ENOENT); check FFMPEG_PATH',
    });
    const logged = logger.entries.find((e) => e.level === 'error');
    expect(String((logged?.fields.cause as Error)?.message)).toContain('no-such-ffmpeg');
  });
});
