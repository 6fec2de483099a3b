import { existsSync } from 'node:fs';
import { mkdir, rename } from 'node:fs/promises';
import { dirname } from 'node:path';
import { ffmpegPath } from './binaries.js';
import { runFfmpeg } from './ffmpeg.js';

/** Options of {@link createSampleVideo}. */
export interface SampleOptions {
  /** @default 2 */
  seconds?: number;
  /** @default 160 */
  width?: number;
  /** @default 120 */
  height?: number;
  /** @default 10 */
  fps?: number;
  /** @default ffmpegPath() */
  ffmpeg?: string;
}

/**
 * Writes an H.264/AAC MP4 made by ffmpeg itself (the `testsrc` pattern and a 440 Hz tone), so no
 * video has to be downloaded. Written to a temporary name and renamed, so a half-written file
 * never looks like a sample.
 *
 * @example
 * ```ts
 * await createSampleVideo('/tmp/buckets/videos/clip.mp4', { seconds: 2 });
 * ```
 */
export async function createSampleVideo(file: string, options: SampleOptions = {}): Promise<void> {
  const { seconds = 2, width = 160, height = 120, fps = 10 } = options;
  for (const [name, value] of Object.entries({ seconds, width, height, fps })) {
    if (!Number.isInteger(value) || value < 1) {
      throw new TypeError(`Expected \`${name}\` to be an integer from 1 and up, got \`${String(value)}\``);
    }
  }
  await mkdir(dirname(file), { recursive: true });
  const partial = `${file}.partial.mp4`;
  await runFfmpeg({
    binary: options.ffmpeg ?? ffmpegPath(),
    args: [
      ...['-hide_banner', '-nostdin', '-y', '-loglevel', 'error'],
      ...['-f', 'lavfi', '-i', `testsrc=duration=${seconds}:size=${width}x${height}:rate=${fps}`],
      ...['-f', 'lavfi', '-i', `sine=frequency=440:duration=${seconds}`],
      ...['-c:v', 'libx264', '-preset', 'ultrafast', '-pix_fmt', 'yuv420p', '-c:a', 'aac', '-shortest'],
      ...['-movflags', '+faststart', partial],
    ],
  });
  await rename(partial, file);
}

/**
 * Creates the sample at `file` unless it exists. Resolves `true` when it created one.
 *
 * @example
 * ```ts
 * if (await ensureSampleVideo(storage.locate('demo-bucket', 'videos/sample.mp4'))) console.log('sample created');
 * ```
 */
export async function ensureSampleVideo(file: string, options: SampleOptions = {}): Promise<boolean> {
  if (existsSync(file)) return false;
  await createSampleVideo(file, options);
  return true;
}
