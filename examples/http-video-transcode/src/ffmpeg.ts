import { spawn } from 'node:child_process';
import { FcAsyncError } from '@fc-async/core';
import type { TranscodeErrorCode } from './errors.js';

/** Options of {@link runFfmpeg}. */
export interface RunFfmpegOptions {
  /** The ffmpeg (or ffprobe) binary. */
  binary: string;
  args: readonly string[];
  /** Stops the run: SIGTERM, then SIGKILL after `killGraceMs`. */
  signal?: AbortSignal | undefined;
  /** How long ffmpeg may take to exit after SIGTERM before it gets SIGKILL, ms. @default 2000 */
  killGraceMs?: number | undefined;
  /** Called once the process runs, with its pid. */
  onSpawn?: ((pid: number) => void) | undefined;
  /** The environment of the process. @default process.env */
  env?: NodeJS.ProcessEnv | undefined;
}

/**
 * What {@link runFfmpeg} resolves with.
 *
 * @example
 * ```ts
 * const { stdout } = await runFfmpeg({ binary: ffprobePath(), args: ['-of', 'json', '-show_format', file] });
 * ```
 */
export interface FfmpegRun {
  stdout: string;
  /** The last 4 KB of stderr. */
  stderr: string;
}

const TAIL = 4096;

/**
 * Runs ffmpeg to completion, in a process group of its own (a Ctrl-C in the terminal reaches
 * only the server, which then stops the task through `signal`). Rejects with an `FcAsyncError`: `TranscodeStopped` (503) when
 * `signal` aborts (the process is killed: SIGTERM, then SIGKILL after the grace period, and the
 * promise settles only once it has exited), `TranscodeFailed` (500) on a non-zero exit (the
 * stderr tail is the `cause`, for logs), `FfmpegNotFound` (500) when the binary cannot start.
 *
 * @example
 * ```ts
 * await runFfmpeg({ binary: ffmpegPath(), args: ['-i', 'in.mov', 'out.mp4'], signal: getInvocation(req)?.signal });
 * ```
 */
export function runFfmpeg(options: RunFfmpegOptions): Promise<FfmpegRun> {
  const { binary, args, signal } = options;
  const grace = options.killGraceMs ?? 2000;
  if (signal?.aborted) return Promise.reject(stopped(signal));
  return new Promise<FfmpegRun>((resolve, reject) => {
    // In a process group of its own: a terminal's Ctrl-C reaches every process of the foreground
    // group, and would kill ffmpeg before fc-async could stop the task (the attempt would fail
    // instead of being stopped or kept); the invocation's signal stops it instead. Killed if this
    // process exits first (not when it is killed outright: SIGKILL, an unhandled SIGHUP).
    const child = spawn(binary, args, {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: options.env ?? process.env,
      detached: true,
    });
    const onExit = () => child.kill('SIGKILL');
    process.once('exit', onExit);
    let stdout = '';
    let stderr = '';
    let killTimer: NodeJS.Timeout | undefined;
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
      stdout += chunk;
    });
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
      stderr = (stderr + chunk).slice(-TAIL);
    });
    const onAbort = () => {
      child.kill('SIGTERM');
      killTimer = setTimeout(() => child.kill('SIGKILL'), grace);
    };
    signal?.addEventListener('abort', onAbort, { once: true });
    if (child.pid !== undefined) options.onSpawn?.(child.pid);

    let settled = false;
    const settle = (error: unknown) => {
      if (settled) return;
      settled = true;
      signal?.removeEventListener('abort', onAbort);
      process.off('exit', onExit);
      clearTimeout(killTimer);
      if (error) reject(error);
      else resolve({ stdout, stderr });
    };
    child.once('error', (error: NodeJS.ErrnoException) => {
      // The path stays in the cause (logs); callers see the code only.
      const message = `ffmpeg could not be started (${error.code ?? 'error'}); check FFMPEG_PATH`;
      settle(new FcAsyncError('FfmpegNotFound', message, { statusCode: 500, cause: error }));
    });
    child.once('close', (code, exitSignal) => {
      if (signal?.aborted) return settle(stopped(signal));
      if (code === 0) return settle(undefined);
      const how = code === null ? `was killed by ${exitSignal}` : `exited with code ${code}`;
      settle(
        new FcAsyncError('TranscodeFailed', `ffmpeg ${how}`, {
          statusCode: 500,
          cause: new Error(stderr.trim() || '(no output)'),
        }),
      );
    });
  });
}

function stopped(signal: AbortSignal): FcAsyncError<TranscodeErrorCode> {
  return new FcAsyncError('TranscodeStopped', 'The transcode was stopped and ffmpeg killed', {
    statusCode: 503,
    cause: signal.reason,
  });
}
