import { createDestinationHandler } from '../destination.js';

/** `dest-fail`: the onFailure destination of `transcode`. Logs and keeps each record. */
export const handler = createDestinationHandler('dest-fail');
