import { describe, expect, it } from 'vitest';
import { createFcHandler, createFcRuntime, type FcHandlerOptions, memory } from '../src/index.js';
import { asyncEvent, context, memoryLogger, ok, setup } from './helpers.js';

// Options are checked when the handler is made, so that a typo fails at start-up with its name
// instead of being ignored (or failing at the first request, or at the first delivery).
const make = (options: unknown) => () => createFcHandler(ok, options as FcHandlerOptions);
const makeRuntime = (options: unknown) => () => createFcRuntime(options as FcHandlerOptions);

describe('createFcHandler options', () => {
  it.each([
    [{ asynch: { mode: 'local' } }, 'Unknown option `asynch`'],
    [{ logger: 5 }, 'Expected `logger` to be an object with debug, info, warn and error methods, got `number`'],
    [{ logger: { info() {} } }, 'got `object` without debug, warn, error'],
    [{ env: 'x' }, 'Expected `env` to be an object of environment variables, got `string`'],
    [{ detect: 1 }, 'Expected `detect` to be a function, got `number`'],
    [{ destinations: [] }, 'Expected `destinations` to be an object with onSuccess and onFailure, got `array`'],
    [{ destinations: { onSucces: () => undefined } }, 'Unknown option `destinations.onSucces`'],
    [{ destinations: { onSuccess: 5 } }, 'Expected `destinations.onSuccess` to be a destination'],
    [{ destinations: { onFailure: [() => undefined, 'https://x'] } }, 'Expected `destinations.onFailure[1]`'],
    [null, 'Expected `options` to be an object, got `null`'],
  ])('refuses %j when the handler is made', (options, message) => {
    expect(make(options)).toThrow(TypeError);
    expect(make(options)).toThrow(message);
  });

  it('takes every documented option', () => {
    const options: Required<FcHandlerOptions> = {
      logger: memoryLogger(),
      textContentTypes: ['text/*'],
      detect: () => ({ type: 'Sync', requestId: 'r' }) as never,
      env: {},
      async: { mode: 'local' },
      destinations: { onSuccess: () => undefined, onFailure: [() => undefined] },
      redactHeaders: ['x-api-key'],
      tracing: {},
    };
    expect(make(options)).not.toThrow();
    expect(make({ destinations: { onSuccess: undefined } })).not.toThrow();
  });

  it('the custom-runtime middleware checks its options the same way, without textContentTypes', () => {
    expect(makeRuntime({ logger: 5 })).toThrow('Expected `logger`');
    expect(makeRuntime({ textContentTypes: ['text/*'] })).toThrow(
      'Unknown option `textContentTypes`: the custom-runtime middleware answers over HTTP',
    );
    expect(makeRuntime({ env: {}, async: { mode: 'local' } })).not.toThrow();
  });
});

describe('refusals in the log', () => {
  it('an async call after close() is a 503 logged as the first of a burst of refusals, without a stack', async () => {
    const { handler, logger } = setup(ok);
    await handler.close();
    const result = await handler(asyncEvent({ method: 'POST' }), context);
    expect(result.statusCode).toBe(503);
    expect(JSON.parse(result.body)).toMatchObject({ code: 'ServiceUnavailable' });
    expect(logger.entries.filter((e) => e.level === 'error')).toEqual([]);
    expect(logger.entries).toContainEqual(
      expect.objectContaining({
        level: 'warn',
        message: 'requests refused with 503: the function is shutting down',
        fields: expect.objectContaining({ code: 'ServiceUnavailable' }),
      }),
    );
  });
});

describe('close()', () => {
  it('refuses options that are not an object, and unknown keys (a misspelt timeoutMs)', async () => {
    const { handler } = setup(ok);
    await expect(handler.close({ timeout: 5 } as never)).rejects.toThrow('Unknown close() option `timeout`');
    await expect(handler.close(null as never)).rejects.toThrow('Expected `options` to be an object, got `null`');
    await expect(handler.close([] as never)).rejects.toThrow('got `array`');
    await handler.close({ timeoutMs: 0 });
  });

  it('refuses a timeoutMs of null, as any value other than a number from 0', async () => {
    const { handler } = setup(ok);
    await expect(handler.close({ timeoutMs: null as unknown as number })).rejects.toThrow(
      'Expected `timeoutMs` to be a number from 0 and up, got `null`',
    );
    await handler.close({ timeoutMs: 0 });
  });
});

describe('memory()', () => {
  it('refuses options that are not an object, and unknown keys', () => {
    expect(() => memory({ pruneIntervalMs: 1000 } as never)).toThrow('Unknown memory() option `pruneIntervalMs`');
    expect(() => memory(null as never)).toThrow('Expected `options` to be an object, got `null`');
    expect(() => memory([] as never)).toThrow('got `array`');
    expect(() => memory({ maxTasks: 10, retentionMs: 1000 })).not.toThrow();
  });
});
