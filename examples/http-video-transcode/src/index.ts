import { createHandler } from '@fc-async/express';
import { createApp } from './app.js';
import { storageFromEnv, TRANSCODE_ASYNC } from './config.js';

/**
 * The `transcode` function for FC 3.0's built-in Node.js runtime (`index.handler`; the event
 * arrives as a Buffer). On FC, FC queues async calls, retries them and calls `dest-succ` /
 * `dest-fail` itself (s.yaml's `asyncInvokeConfig`), so no in-process destination is set here.
 * Off FC, fc-async queues them with the same settings.
 */
export const handler = createHandler(createApp({ storage: storageFromEnv() }), { async: TRANSCODE_ASYNC });
