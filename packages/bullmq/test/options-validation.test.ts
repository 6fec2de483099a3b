import { runInNewContext } from 'node:vm';
import { Redis } from 'ioredis';
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

  it('refuses an ioredis client as the connection rather than connect to 127.0.0.1:6379 in its place', () => {
    // Its host and port are on `.options`: spread as options, they would be lost.
    const client = new Redis({ host: '10.0.0.5', port: 6380, lazyConnect: true });
    expect(() => bullmq({ connection: client as never })).toThrow(
      new TypeError(
        'Expected `connection` to be a redis:// or rediss:// URL or ioredis options, got an object made by a class (an ioredis client?): pass its URL or options, bullmq() opens its own connections',
      ),
    );
    expect(client.status).toBe('wait');
    // Options made without a prototype are options all the same.
    expect(bullmq({ connection: Object.assign(Object.create(null), { port: 1 }) }).name).toBe('bullmq');
  });

  it('takes plain ioredis options however they were made', () => {
    const made = {
      literal: { host: '10.0.0.5', port: 6380 },
      'JSON.parse': JSON.parse('{"host":"10.0.0.5","port":6380}'),
      structuredClone: structuredClone({ host: '10.0.0.5', port: 6380 }),
      frozen: Object.freeze({ host: '10.0.0.5', port: 6380 }),
      'with a getter': {
        get host() {
          return '10.0.0.5';
        },
        port: 6380,
      },
      // Another realm's Object (a config file run in a vm context): options all the same.
      'another realm': runInNewContext('({ host: "10.0.0.5", port: 6380 })'),
    };
    for (const [how, connection] of Object.entries(made)) {
      expect([how, bullmq({ connection }).name]).toEqual([how, 'bullmq']);
    }
    // An object whose options come from its prototype: a spread would lose them, as a client's.
    expect(() => bullmq({ connection: Object.create({ host: '10.0.0.5', port: 6380 }) })).toThrow(/made by a class/);
  });

  it('keeps the password of a mistyped connection URL out of its message', () => {
    expect(() => bullmq({ connection: 'http://:S3CRET-PW@127.0.0.1:6379' })).toThrow(
      new TypeError(
        'Expected `connection` to be a redis:// or rediss:// URL or ioredis options, got `http://***@127.0.0.1:6379`',
      ),
    );
  });
});

describe('bullmq() connection URLs', () => {
  // ioredis would read each otherwise than it looks: db 0 for a path that is no number, ioredis's
  // default host for none, `URI malformed` from inside ioredis for a `%` that starts no escape.
  it.each([
    [
      'redis://:S3CRET-PW@127.0.0.1:6380/tasks',
      'whose database (its path, or `?db=`) is a whole number (/0, /1, ...), got `redis://***@127.0.0.1:6380/tasks`',
    ],
    [
      'redis://h:6380?db=tasks',
      'whose database (its path, or `?db=`) is a whole number (/0, /1, ...), got `redis://h:6380?***`',
    ],
    [
      'redis://h:6380/99999999999999999999',
      'whose database (its path, or `?db=`) is a whole number (/0, /1, ...), got `redis://h:6380/99999999999999999999`',
    ],
    ['redis:///0', 'naming a host (redis://HOST:PORT/DB), got `redis***`'],
    [
      'redis://:50%off-S3CRET-PW@h:6380',
      'with its user name and password percent-encoded (a `%` written `%25`), got `redis://***@h:6380`',
    ],
    ['redis://h:0', 'with a port from 1 to 65535, got `redis://h:0`'],
    ['redis://:S3CRET-PW@h:70000', 'with a port from 1 to 65535, got `redis***`'],
    ['redis://h:6380#x', 'without a fragment (`#`), which ioredis does not read, got `redis://h:6380#***`'],
  ])('refuses the connection URL %s, masked', (url, problem) => {
    expect(() => bullmq({ connection: url })).toThrow(
      new TypeError(`Expected \`connection\` to be a redis:// or rediss:// URL ${problem}`),
    );
  });

  it('takes an IPv6 host, a user name, rediss://, a database number and ioredis query options', () => {
    for (const url of ['rediss://app:p%25w@[::1]:6380/15', 'redis://h:6380?db=3&family=6', 'redis://h/']) {
      expect(bullmq({ connection: url }).name).toBe('bullmq');
    }
  });
});
