import Fastify from 'fastify';
import { describe, expect, it } from 'vitest';
import { createHandler, type FcHandlerOptions, fcAsync } from '../src/index.js';

// createHandler checks its options before touching the app: a bad one fails with its name, and
// the app keeps Fastify's default error handler.
describe('createHandler options', () => {
  it.each<[unknown, string]>([
    [null, 'Expected `options` to be an object, got `null`'],
    [[], 'Expected `options` to be an object, got `array`'],
    [{ asynch: {} }, 'Unknown option `asynch`'],
  ])('refuses %j before changing the app', async (options, message) => {
    const app = Fastify();
    try {
      expect(() => createHandler(app, options as FcHandlerOptions)).toThrow(new TypeError(message));
      expect(app.errorHandler.name).toBe('defaultErrorHandler');
    } finally {
      await app.close();
    }
  });
});

// Fastify's own register options do not apply to a plugin that skips encapsulation: left out, not
// refused; a key of neither kind is refused with its name.
describe('fcAsync plugin options', () => {
  it("takes Fastify's register options (prefix, logLevel) and refuses unknown ones", async () => {
    const app = Fastify();
    try {
      await app.register(fcAsync, { env: {}, async: { mode: 'local' }, prefix: '/api', logLevel: 'warn' });
      await app.ready();
      expect(app.fcAsync?.mode).toBe('local');
    } finally {
      await app.close();
    }
    const other = Fastify();
    await expect(other.register(fcAsync, { env: {}, asynch: {} } as never).ready()).rejects.toThrow(
      'Unknown option `asynch`',
    );
    await other.close();
  });
});
