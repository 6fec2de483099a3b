import { describe, expect, it } from 'vitest';
import { type BullmqBackendOptions, bullmq } from '../src/index.js';

const connection = 'redis://127.0.0.1:1';

// Each of these delays is a Node timer (BullMQ renews a lock every lockDurationMs / 2, checks
// stalled jobs every stalledIntervalMs; the connect wait and the prune are timers too): past
// 2^31 - 1 ms a timer fires at once, so a lock would be renewed every millisecond, or the start
// fail at once with `RedisUnavailable`.
describe('bullmq() options past a timer', () => {
  it.each(['lockDurationMs', 'stalledIntervalMs', 'connectTimeoutMs', 'pruneIntervalMs'] as const)(
    'refuses a %s no timer can keep',
    (name) => {
      const min = name === 'lockDurationMs' || name === 'stalledIntervalMs' ? 100 : 1;
      expect(() => bullmq({ connection, [name]: 2 ** 31 })).toThrow(
        new TypeError(`Expected \`${name}\` to be an integer from ${min} to 2147483647, got \`2147483648\``),
      );
      expect(bullmq({ connection, [name]: 2 ** 31 - 1 }).name).toBe('bullmq');
    },
  );

  it('names an array given as the options or the connection', () => {
    expect(() => bullmq([] as unknown as BullmqBackendOptions)).toThrow(
      new TypeError('Expected `options` to be an object with a `connection`, got `array`'),
    );
    expect(() => bullmq({ connection: [] as never })).toThrow(
      new TypeError('Expected `connection` to be a redis:// or rediss:// URL or ioredis options, got `array`'),
    );
  });

  it('keeps the password of a mistyped connection URL out of its message', () => {
    expect(() => bullmq({ connection: 'http://:S3CRET-PW@127.0.0.1:6379' })).toThrow(
      new TypeError(
        'Expected `connection` to be a redis:// or rediss:// URL or ioredis options, got `http://***@127.0.0.1:6379`',
      ),
    );
  });
});
