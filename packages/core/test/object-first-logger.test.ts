import { describe, expect, it } from 'vitest';
import { createFcHandler, fcHttpEvent, objectFirstLogger } from '../src/index.js';

type Call = { level: string; args: unknown[] };

/**
 * A logger shaped like pino's: fields first, the message second, and what follows the message
 * taken as format arguments (never as fields); its methods read their state from `this`.
 */
function fakePino() {
  const calls: Call[] = [];
  const method = (level: string) =>
    function (this: { calls: Call[] }, ...args: unknown[]) {
      this.calls.push({ level, args });
    };
  return { calls, debug: method('debug'), info: method('info'), warn: method('warn'), error: method('error') };
}

describe('objectFirstLogger', () => {
  it('hands an object-first logger the fields first: the requestId and the error with its stack arrive', async () => {
    const log = fakePino();
    const handler = createFcHandler(
      () => {
        throw new Error('database down: orders table locked');
      },
      { logger: objectFirstLogger(log) },
    );
    const result = await handler(fcHttpEvent({ method: 'GET', url: '/orders' }), { requestId: 'req-pino-1' });
    await handler.close();

    expect(result.statusCode).toBe(500);
    const failure = log.calls.find((call) => call.level === 'error');
    expect(failure?.args).toHaveLength(2);
    const [fields, message] = failure?.args ?? [];
    expect(typeof message).toBe('string');
    expect(fields).toMatchObject({
      requestId: 'req-pino-1',
      error: { name: 'Error', message: 'database down: orders table locked' },
    });
    // An Error under `error` is no `err`: pino would write `{}` for it, so the adapter writes its fields.
    const error = (fields as { error: { stack: unknown } }).error;
    expect(error).not.toBeInstanceOf(Error);
    expect(String(error.stack)).toMatch(/^Error: database down: orders table locked\n\s+at /);
  });

  it('passes an empty object when an entry has no fields, and the message second', () => {
    const log = fakePino();
    objectFirstLogger(log).info('ready');
    expect(log.calls).toEqual([{ level: 'info', args: [{}, 'ready'] }]);
  });

  it('refuses what is no logger with a clear TypeError', () => {
    expect(() => objectFirstLogger(undefined as never)).toThrow(/Expected `log` to be a logger object/);
    expect(() => objectFirstLogger({ info() {} } as never)).toThrow(/Expected `log` to have a `debug` method/);
  });
});
