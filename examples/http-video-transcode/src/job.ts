import { rmSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, extname, join } from 'node:path';
import type { Logger } from '@fc-async/core';
import type { Credentials } from './credentials.js';
import { runFfmpeg } from './ffmpeg.js';
import { ffmpegArgs } from './formats.js';
import type { TranscodeRequest } from './request.js';
import type { Storage } from './storage.js';

/** What a transcode needs besides the request. */
export interface TranscodeDeps {
  storage: Storage;
  ffmpegPath: string;
  logger: Logger;
  signal?: AbortSignal | undefined;
  credentials?: Credentials | undefined;
  /** Extra ffmpeg input options. */
  inputArgs?: readonly string[] | undefined;
  /** Parent of the per-job work folders. @default os.tmpdir() */
  workDir?: string | undefined;
  killGraceMs?: number | undefined;
  /** Carried into log lines. */
  requestId?: string | undefined;
}

/**
 * The response of a finished transcode.
 *
 * @example
 * ```ts
 * const result: TranscodeResult = { bucket: 'videos', format: 'm3u8', outputs: ['out/cat.m3u8', 'out/cat_000.ts'], durationMs: 812 };
 * ```
 */
export interface TranscodeResult {
  bucket: string;
  format: TranscodeRequest['dst_format'];
  /** Keys written, the main file first. */
  outputs: string[];
  durationMs: number;
}

/**
 * Downloads `<bucket>/<object>` into a private work folder, runs ffmpeg there, and uploads what it
 * wrote to `<output_dir>/`: `<name>.<dst_format>`, plus the segments for `m3u8`. Nothing reaches
 * the output folder unless ffmpeg succeeded; the work folder is always removed. `name` is the
 * object's file name without its extension.
 *
 * @example
 * ```ts
 * const result = await transcodeObject(job, { storage, ffmpegPath: ffmpegPath(), logger, signal });
 * ```
 */
export async function transcodeObject(job: TranscodeRequest, deps: TranscodeDeps): Promise<TranscodeResult> {
  const started = Date.now();
  const { storage, logger, signal, credentials } = deps;
  const work = await mkdtemp(join(deps.workDir ?? tmpdir(), 'transcode-'));
  // Removed also when the process exits before the job ends (a second Ctrl-C exits at once).
  const removeNow = () => rmSync(work, { recursive: true, force: true });
  process.once('exit', removeNow);
  try {
    const ext = extname(job.object);
    const name = basename(job.object, ext).replaceAll('%', '_') || 'output';
    const input = join(work, `input${ext}`);
    const outDir = join(work, 'out');
    await mkdir(outDir);
    await storage.download(job.bucket, job.object, input, { signal, credentials });

    const args = ffmpegArgs({ input, outDir, name, format: job.dst_format, inputArgs: deps.inputArgs });
    const log = { requestId: deps.requestId, format: job.dst_format, object: job.object };
    await runFfmpeg({
      binary: deps.ffmpegPath,
      args,
      signal,
      killGraceMs: deps.killGraceMs,
      onSpawn: (pid) => logger.info('ffmpeg started', { ...log, pid }),
    }).catch((error: unknown) => {
      // A stop or timeout is the app's error handler's to log (at info); a failure is logged here.
      if (!signal?.aborted) logger.warn('ffmpeg did not finish', { ...log, error });
      throw error;
    });

    const main = `${name}.${job.dst_format}`;
    const files = (await readdir(outDir)).sort((a, b) => (a === main ? -1 : b === main ? 1 : a.localeCompare(b)));
    const outputs = await uploadAll(job, files, outDir, deps);
    logger.info('transcode finished', {
      ...log,
      outputs: outputs.length,
      where: storage.locate(job.bucket, outputs[0] ?? main),
    });
    return { bucket: job.bucket, format: job.dst_format, outputs, durationMs: Date.now() - started };
  } finally {
    process.off('exit', removeNow);
    await rm(work, { recursive: true, force: true });
  }
}

/**
 * Uploads `files` (the main file first) to `<output_dir>/`, the main file last so that a playlist
 * never points at segments not there yet. Stopped or failed midway, it removes what it uploaded:
 * nothing reaches the output folder unless every file did. Returns the keys, the main file first.
 */
async function uploadAll(
  job: TranscodeRequest,
  files: string[],
  outDir: string,
  deps: TranscodeDeps,
): Promise<string[]> {
  const { storage, signal, credentials } = deps;
  const keys = files.map((file) => `${job.output_dir}/${file}`);
  const uploaded: string[] = [];
  try {
    for (const i of [...files.keys()].slice(1).concat(files.length > 0 ? [0] : [])) {
      signal?.throwIfAborted();
      await storage.upload(job.bucket, keys[i] as string, join(outDir, files[i] as string), { signal, credentials });
      uploaded.push(keys[i] as string);
    }
  } catch (error) {
    await Promise.all(
      uploaded.map((key) =>
        storage.remove(job.bucket, key, { credentials }).catch((cause: unknown) => {
          deps.logger.warn('could not remove an output of a stopped transcode', { key, error: cause });
        }),
      ),
    );
    throw error;
  }
  return keys;
}
