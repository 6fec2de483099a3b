import { createDestinationHandler } from '../destination.js';

/** `dest-succ`: the onSuccess destination of `transcode`. Logs and keeps each record. */
export const handler = createDestinationHandler('dest-succ');
