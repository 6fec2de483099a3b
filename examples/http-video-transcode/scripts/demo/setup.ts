import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { defaultStorageRoot } from '../../src/config.js';
import { ensureSampleVideo } from '../../src/sample.js';
import { LocalStorage } from '../../src/storage.js';
import { bundleFunctions } from '../bundle.js';

/** The example folder (where s.yaml is). */
export const EXAMPLE_DIR = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');

/** The local bucket the sample videos go to. */
export const BUCKET = 'demo-bucket';

/** A 20-second sample (two HLS segments) and a 10-minute one (long enough to stop mid-way). */
export const SAMPLES = {
  sample: { key: 'videos/sample.mp4', seconds: 20, width: 320, height: 240 },
  long: { key: 'videos/long.mp4', seconds: 600, width: 320, height: 240 },
} as const;

/**
 * Builds the code folders s.yaml names and creates the missing sample videos in the local
 * bucket (the same folder the function reads: `STORAGE_ROOT`, else the tmpdir default).
 *
 * @example
 * ```ts
 * const storage = await prepare(['sample'], console.log);
 * ```
 */
export async function prepare(samples: (keyof typeof SAMPLES)[], log: (line: string) => void): Promise<LocalStorage> {
  await bundleFunctions();
  log('built dist/transcode, dist/dest-succ, dist/dest-fail');
  const storage = new LocalStorage(defaultStorageRoot());
  for (const name of samples) {
    const { key, ...size } = SAMPLES[name];
    if (await ensureSampleVideo(storage.locate(BUCKET, key), size)) log(`created ${storage.locate(BUCKET, key)}`);
  }
  return storage;
}

/**
 * A transcode request body for the local bucket.
 *
 * @example
 * ```ts
 * job('videos/sample.mp4', 'm3u8', 'hls'); // { bucket: 'demo-bucket', object: 'videos/sample.mp4', output_dir: 'hls', dst_format: 'm3u8' }
 * ```
 */
export function job(object: string, dstFormat: string, outputDir = 'out') {
  return { bucket: BUCKET, object, output_dir: outputDir, dst_format: dstFormat };
}
