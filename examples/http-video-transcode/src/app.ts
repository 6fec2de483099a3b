import { createConsoleLogger, getInvocation, isFcAsyncError, type Logger } from '@fc-async/core';
import express, { type ErrorRequestHandler, type Express } from 'express';
import { ffmpegPath } from './binaries.js';
import { credentialsFromHeaders } from './credentials.js';
import { FORMATS } from './formats.js';
import { transcodeObject } from './job.js';
import { parseTranscodeRequest } from './request.js';
import type { Storage } from './storage.js';

/** Options of {@link createApp}. */
export interface AppOptions {
  /** Where objects are read and outputs written. */
  storage: Storage;
  /** @default ffmpegPath() */
  ffmpegPath?: string | undefined;
  /** @default a JSON-lines console logger */
  logger?: Logger | undefined;
  /** Extra ffmpeg input options, e.g. `['-threads', '2']`. @default [] */
  inputArgs?: readonly string[] | undefined;
  /** Parent of the per-job work folders. @default os.tmpdir() */
  workDir?: string | undefined;
  /** Time ffmpeg gets between SIGTERM and SIGKILL when a task is stopped, ms. @default 2000 */
  killGraceMs?: number | undefined;
}

/**
 * The transcode function as an ordinary Express app. `POST /` with
 * `{ bucket, object, output_dir, dst_format }` answers `{ bucket, format, outputs, durationMs }`;
 * errors answer `{ code, message }` (400 `InvalidArgument`, 404 `ObjectNotFound`, 503
 * `TranscodeStopped`, 500 `TranscodeFailed`). `GET /` describes the API. A stopped or timed-out
 * async task aborts `getInvocation(req).signal`, which kills ffmpeg.
 *
 * @example
 * ```ts
 * import { createHandler } from '@fc-async/express';
 * export const handler = createHandler(createApp({ storage: new LocalStorage('/tmp/buckets') }));
 * ```
 */
export function createApp(options: AppOptions): Express {
  if (!options?.storage) throw new TypeError('Expected `storage` in the app options, got `undefined`');
  const logger = options.logger ?? createConsoleLogger();
  const binary = options.ffmpegPath ?? ffmpegPath();
  const app = express();
  app.disable('x-powered-by');

  app.get('/', (_req, res) => {
    res.json({ usage: 'POST / {"bucket","object","output_dir","dst_format"}', formats: FORMATS });
  });

  app.post('/', express.json({ limit: '16kb' }), async (req, res) => {
    const job = parseTranscodeRequest(req.body);
    const invocation = getInvocation(req);
    const result = await transcodeObject(job, {
      storage: options.storage,
      ffmpegPath: binary,
      logger,
      signal: invocation?.signal,
      credentials: credentialsFromHeaders(req.headers),
      inputArgs: options.inputArgs,
      workDir: options.workDir,
      killGraceMs: options.killGraceMs,
      requestId: invocation?.requestId,
    });
    res.json(result);
  });

  app.use(errors(logger));
  return app;
}

/** `{ code, message }` for every error; server errors are logged with their cause. */
function errors(logger: Logger): ErrorRequestHandler {
  return function transcodeErrors(error, req, res, _next) {
    const requestId = getInvocation(req)?.requestId;
    if (isFcAsyncError(error)) {
      if (error.statusCode >= 500) logger.error('transcode failed', { requestId, error, cause: error.cause });
      res.status(error.statusCode).json(error.toJSON());
      return;
    }
    const status = Number((error as { status?: unknown })?.status);
    if (status >= 400 && status < 500) {
      const code = status === 413 ? 'EntityTooLarge' : 'InvalidArgument';
      res.status(status).json({ code, message: status === 413 ? 'The body is too large' : 'The body must be JSON' });
      return;
    }
    logger.error('transcode failed', { requestId, error });
    res.status(500).json({ code: 'InternalError', message: 'Internal Server Error' });
  };
}
