import express from 'express';
import { describe, expect, it } from 'vitest';
import { createHandler, type FcHandlerOptions } from '../src/index.js';

// createHandler checks its options before touching the app: a bad one fails with its name, and
// the app is left as it was (no `req.fc` defined on it by a call that threw).
describe('createHandler options', () => {
  it.each<[unknown, string]>([
    [null, 'Expected `options` to be an object, got `null`'],
    [[], 'Expected `options` to be an object, got `array`'],
    [{ asynch: {} }, 'Unknown option `asynch`'],
  ])('refuses %j before changing the app', (options, message) => {
    const app = express();
    expect(() => createHandler(app, options as FcHandlerOptions)).toThrow(new TypeError(message));
    expect(Object.hasOwn(app.request, 'fc')).toBe(false);
  });
});
