import { createConsoleLogger, getInvocation, isFcAsyncError, isInvocationAbort, type Logger } from '@fc-async/core';
import express, { type ErrorRequestHandler, type Express, type Response } from 'express';
import { ffmpegPath } from './binaries.js';
import { credentialsFromHeaders } from './credentials.js';
import type { TranscodeErrorCode } from './errors.js';
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
 * errors answer `{ code, message, errorType, errorMessage }` (400 `InvalidArgument`, 413
 * `EntityTooLarge`, 404 `ObjectNotFound`, 503 `TranscodeStopped`, 500 `TranscodeFailed`), the
 * last two being what a destination record quotes. `GET /` describes the API. A stopped or timed-out
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

  // JSON, also sent as application/octet-stream: the official SDK's InvokeFunction sends its body so.
  app.post('/', express.json({ limit: '16kb', type: JSON_TYPES }), async (req, res) => {
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

/** The content types read as JSON: JSON's, and the SDK's default `application/octet-stream`. */
const JSON_TYPES = ['application/json', 'application/*+json', 'application/octet-stream'];

/**
 * Every error answers `{ code, message, errorType, errorMessage }`: the last two are what FC's
 * runtimes answer for an error, which a destination record quotes (docs/destinations.md). A
 * stop or timeout (the invocation's signal's reason) is logged at info without stacks; other
 * server errors at error, with their cause.
 */
function errors(logger: Logger): ErrorRequestHandler {
  return function transcodeErrors(error, req, res, _next) {
    const invocation = getInvocation(req);
    const requestId = invocation?.requestId;
    if (isFcAsyncError<TranscodeErrorCode>(error)) {
      if (isInvocationAbort(error, invocation)) {
        const reason = invocation?.signal.reason as { code?: unknown } | undefined;
        logger.info('transcode stopped', { requestId, code: error.code, reason: reason?.code });
      } else if (error.statusCode >= 500) {
        logger.error('transcode failed', { requestId, error, cause: error.cause });
      }
      answer(res, error.statusCode, error.code, error.message);
      return;
    }
    const status = Number((error as { status?: unknown })?.status);
    if (status >= 400 && status < 500) {
      if (status === 413) answer(res, 413, 'EntityTooLarge', 'The body is larger than 16 KB');
      else answer(res, status, 'InvalidArgument', 'The body must be JSON');
      return;
    }
    logger.error('transcode failed', { requestId, error });
    answer(res, 500, 'InternalError', 'Internal Server Error');
  };
}

function answer(res: Response, status: number, code: string, message: string): void {
  res.status(status).json({ code, message, errorType: code, errorMessage: message });
}
