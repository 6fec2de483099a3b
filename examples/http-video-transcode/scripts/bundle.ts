import { chmod, copyFile, mkdir, rm, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');

/** The functions of s.yaml, each bundled into `<outDir>/<name>/index.js`. */
export const FUNCTIONS = {
  transcode: 'src/index.ts',
  'dest-succ': 'functions/dest-succ/index.ts',
  'dest-fail': 'functions/dest-fail/index.ts',
} as const;

/** Options of {@link bundleFunctions}. */
export interface BundleOptions {
  /** @default `<example>/dist` */
  outDir?: string;
  /** The linux-x64 ffmpeg copied to `transcode/bin/ffmpeg`. @default the binary of `@ffmpeg-installer/linux-x64` */
  ffmpegBinary?: string;
}

/**
 * Builds the code folders s.yaml deploys: one CommonJS `index.js` per function (FC's built-in
 * `nodejs20` runtime loads `index.handler`), with every dependency bundled, and the npm ffmpeg
 * binary for linux-x64 (FC's architecture) in `transcode/bin/ffmpeg`, where `ffmpegPath()` looks
 * first. Resolves the folders written.
 *
 * @example
 * ```ts
 * await bundleFunctions({ outDir: '/tmp/fc-build' }); // { transcode: '/tmp/fc-build/transcode', ... }
 * ```
 */
export async function bundleFunctions(options: BundleOptions = {}): Promise<Record<keyof typeof FUNCTIONS, string>> {
  const outDir = resolve(options.outDir ?? join(ROOT, 'dist'));
  const ffmpeg = options.ffmpegBinary ?? linuxFfmpeg();
  await rm(outDir, { recursive: true, force: true });
  const folders = {} as Record<keyof typeof FUNCTIONS, string>;
  for (const [name, entry] of Object.entries(FUNCTIONS) as [keyof typeof FUNCTIONS, string][]) {
    const folder = join(outDir, name);
    await build({
      entryPoints: [join(ROOT, entry)],
      outfile: join(folder, 'index.js'),
      bundle: true,
      platform: 'node',
      target: 'node20',
      format: 'cjs',
      logLevel: 'error',
      // Optional at run time, or resolved as files: never bundled.
      external: ['@alicloud/fc20230330', '@ffmpeg-installer/*', '@ffprobe-installer/*', 'proxy-agent'],
      // ESM sources read import.meta.url; in a CommonJS bundle it is the bundle's own URL.
      define: { 'import.meta.url': '__bundleUrl' },
      banner: { js: "const __bundleUrl = require('node:url').pathToFileURL(__filename).href;" },
    });
    await writeFile(join(folder, 'package.json'), `${JSON.stringify({ type: 'commonjs', private: true })}\n`);
    folders[name] = folder;
  }
  await mkdir(join(folders.transcode, 'bin'));
  await copyFile(ffmpeg, join(folders.transcode, 'bin', 'ffmpeg'));
  await chmod(join(folders.transcode, 'bin', 'ffmpeg'), 0o755);
  return folders;
}

/** FC runs linux-x64, whatever the build machine is. */
function linuxFfmpeg(): string {
  try {
    return createRequire(import.meta.url).resolve('@ffmpeg-installer/linux-x64/ffmpeg');
  } catch (error) {
    throw new Error(
      'FC runs linux-x64: install its ffmpeg with `npm install --no-save --force @ffmpeg-installer/linux-x64`, ' +
        'or pass ffmpegBinary (and set FFMPEG_PATH on FC if you use a layer instead)',
      { cause: error },
    );
  }
}
