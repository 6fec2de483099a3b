import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

type Env = Record<string, string | undefined>;

/**
 * The ffmpeg binary, first found of: `FFMPEG_PATH`; `bin/ffmpeg` beside this module (where the
 * FC build puts it, see scripts/bundle.ts); the binary of the npm package `@ffmpeg-installer/ffmpeg`.
 * Nothing is downloaded at run time.
 *
 * @example
 * ```ts
 * spawn(ffmpegPath(), ['-version']);
 * ```
 */
export function ffmpegPath(env: Env = process.env): string {
  return env.FFMPEG_PATH || bundled('ffmpeg') || installed('@ffmpeg-installer/ffmpeg');
}

/**
 * The ffprobe binary: `FFPROBE_PATH`, else `bin/ffprobe` beside this module, else the npm package
 * `@ffprobe-installer/ffprobe`.
 *
 * @example
 * ```ts
 * spawn(ffprobePath(), ['-of', 'json', '-show_format', 'out.mp4']);
 * ```
 */
export function ffprobePath(env: Env = process.env): string {
  return env.FFPROBE_PATH || bundled('ffprobe') || installed('@ffprobe-installer/ffprobe');
}

function bundled(name: string): string | undefined {
  const file = fileURLToPath(new URL(`./bin/${name}`, import.meta.url));
  return existsSync(file) ? file : undefined;
}

function installed(pkg: string): string {
  try {
    return (createRequire(import.meta.url)(pkg) as { path: string }).path;
  } catch (error) {
    throw new Error(`No ${pkg.split('/')[1]} binary: install ${pkg} for this platform, or set its *_PATH variable`, {
      cause: error,
    });
  }
}
