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
      logger.warn('ffmpeg did not finish', { ...log, error });
      throw error;
    });

    const main = `${name}.${job.dst_format}`;
    const files = (await readdir(outDir)).sort((a, b) => (a === main ? -1 : b === main ? 1 : a.localeCompare(b)));
    const outputs: string[] = [];
    for (const file of files) {
      signal?.throwIfAborted();
      const key = `${job.output_dir}/${file}`;
      await storage.upload(job.bucket, key, join(outDir, file), { signal, credentials });
      outputs.push(key);
    }
    logger.info('transcode finished', {
      ...log,
      outputs: outputs.length,
      where: storage.locate(job.bucket, outputs[0] ?? main),
    });
    return { bucket: job.bucket, format: job.dst_format, outputs, durationMs: Date.now() - started };
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}
