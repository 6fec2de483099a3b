import type { EventEmitter } from 'node:events';

/** Per client, the error messages told since it was last `ready`: shared by every listener of it. */
const told = new WeakMap<EventEmitter, Set<string>>();

/**
 * A listener for `error` events that passes each kind of error (by message) to `log` once, until
 * `client` is `ready` again: ioredis and BullMQ repeat the same errors on every reconnect attempt
 * while Redis is down, about one a second, alternating between kinds (`ECONNREFUSED`, `Command
 * timed out`), and the connection, the queue and the worker each report them. Every listener of
 * one client shares what was told, so an error is logged once whoever reports it.
 */
export function oncePerOutage(client: EventEmitter, log: (error: Error) => void): (error: Error) => void {
  let seen = told.get(client);
  if (!seen) {
    const messages = new Set<string>();
    seen = messages;
    told.set(client, messages);
    client.on('ready', () => messages.clear());
  }
  const messages = seen;
  return (error) => {
    if (messages.has(error.message)) return;
    messages.add(error.message);
    log(error);
  };
}
