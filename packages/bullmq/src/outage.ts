import type { EventEmitter } from 'node:events';

/**
 * A listener for `error` events that passes each kind of error (by message) to `log` once, until
 * `client` is `ready` again: ioredis and BullMQ repeat the same error on every reconnect attempt
 * while Redis is down, about one a second.
 */
export function oncePerOutage(client: EventEmitter, log: (error: Error) => void): (error: Error) => void {
  let last: string | undefined;
  client.on('ready', () => {
    last = undefined;
  });
  return (error) => {
    if (error.message === last) return;
    last = error.message;
    log(error);
  };
}
