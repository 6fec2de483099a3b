import { createFcHandler, silentLogger } from '@fc-async/core';
import { asyncEvent } from '@fc-async/test-kit/fc-server';
import { freePort } from '@fc-async/test-kit/net';
import { Redis } from 'ioredis';
import { describe, expect, inject, it } from 'vitest';
import { type BullmqBackendOptions, bullmq } from '../src/index.js';
import { resolveBullmqOptions } from '../src/options.js';
import { countingServer, uniquePrefix, until } from './helpers.js';

describe('bullmq(options)', () => {
  it('returns a persistent backend without connecting or touching the caller’s options', () => {
    const options: BullmqBackendOptions = Object.freeze({ connection: { host: '127.0.0.1', port: 1 } });
    const backend = bullmq(options);
    expect(backend).toMatchObject({ name: 'bullmq', persistent: true });
    expect(options).toEqual({ connection: { host: '127.0.0.1', port: 1 } });
  });

  it('bounds its start no sooner than its own connectTimeoutMs and a few commands allow', () => {
    // The engine's bound on create() must not cut a wait for Redis the options allow.
    const connection = { host: '127.0.0.1', port: 1 };
    expect(bullmq({ connection }).startTimeoutMs).toBe(30_000);
    const patient = bullmq({ connection, connectTimeoutMs: 60_000, commandTimeoutMs: 8000 });
    expect(patient.startTimeoutMs).toBe(60_000 + 4 * 8000);
  });

  it('takes a prefix of 64 characters, and applies the documented defaults', () => {
    expect(resolveBullmqOptions({ connection: 'redis://h', prefix: 'p'.repeat(64) }).prefix).toBe('p'.repeat(64));
    const defaults = resolveBullmqOptions({ connection: 'redis://h' });
    expect(defaults).toMatchObject({
      prefix: 'fc-async',
      worker: true,
      lockDurationMs: 30_000,
      stalledIntervalMs: 30_000,
      connectTimeoutMs: 10_000,
      commandTimeoutMs: 5000,
    });
  });

  it('takes a prefix that is or holds one hash tag, as a Redis Cluster needs', () => {
    for (const prefix of ['{transcode}', '{fc-async}:eu', 'eu:{fc-async}', `{${'p'.repeat(62)}}`]) {
      expect(resolveBullmqOptions({ connection: 'redis://h', prefix }).prefix).toBe(prefix);
    }
  });

  // Redis takes an empty tag for none, reads a key's first tag alone, and a lone brace would be
  // closed (or not) by what follows in each key: none of these keeps a prefix's keys in one slot.
  it.each(['', '{}', 'shop:{}', '{shop', 'shop}', '}shop{', '{shop}{eu}', '{{shop}}', '{sh op}'])(
    'refuses the prefix %j',
    (prefix) => {
      expect(() => bullmq({ connection: 'redis://h', prefix })).toThrow(
        new TypeError(
          `Expected \`prefix\` to be 1 to 64 letters, digits, '_', '.', ':' or '-', with at most one hash tag such as \`{fc-async}\`, got \`${prefix}\``,
        ),
      );
    },
  );

  it.each([
    [undefined, /Expected `options` to be an object with a `connection`, got `undefined`/],
    [{}, /Expected `connection` to be a redis:\/\/ or rediss:\/\/ URL or ioredis options, got `undefined`/],
    [{ connection: 'http://h:6379' }, /Expected `connection` to be a redis:\/\/ or rediss:\/\/ URL/],
    [{ connection: 'redis://h', prefix: 'a b' }, /Expected `prefix` to be 1 to 64 letters, digits/],
    [{ connection: 'redis://h', prefix: 'p'.repeat(65) }, /Expected `prefix` to be 1 to 64 letters, digits/],
    // Keys of `shop` are `shop:task:<id>` and BullMQ's `shop:tasks:*`: a task `by-time` of `shop` would
    // be the time index of `shop:task`.
    [{ connection: 'redis://h', prefix: 'shop:task' }, /not to end in a 'task' or 'tasks' segment.*`shop:task`/],
    [{ connection: 'redis://h', prefix: 'shop:tasks' }, /not to end in a 'task' or 'tasks' segment/],
    [{ connection: 'redis://h', prefix: '{shop}:tasks' }, /not to end in a 'task' or 'tasks' segment/],
    [{ connection: 'redis://h', worker: 'yes' }, /Expected `worker` to be a boolean, got `yes`/],
    [
      { connection: 'redis://h', lockDurationMs: 50 },
      /Expected `lockDurationMs` to be an integer from 100 and up, got `50`/,
    ],
    [{ connection: 'redis://h', maxTasks: -1 }, /Expected `maxTasks` to be an integer from 0 and up, got `-1`/],
    [{ connection: 'redis://h', retention: 1 }, /Unknown bullmq\(\) option `retention`/],
  ])('throws a TypeError for %j', (options, message) => {
    expect(() => bullmq(options as BullmqBackendOptions)).toThrow(TypeError);
    expect(() => bullmq(options as BullmqBackendOptions)).toThrow(message);
  });

  it('answers 503 RedisUnavailable when Redis does not answer within connectTimeoutMs', async () => {
    const handler = createFcHandler((_req, res) => res.end(), {
      logger: silentLogger,
      env: {},
      async: { mode: 'local', backend: bullmq({ connection: 'redis://127.0.0.1:1', connectTimeoutMs: 300 }) },
    });
    const result = await handler(asyncEvent('t_1'));
    expect(result.statusCode).toBe(503);
    expect(JSON.parse(result.body)).toEqual({
      code: 'RedisUnavailable',
      message: 'Redis did not answer within 300 ms',
    });
  });

  it('waits connectTimeoutMs for Redis on start, no less (not cut short by commandTimeoutMs) and not much more, and says how long it waited', async () => {
    const port = await freePort(); // nothing listens there
    const backend = bullmq({ connection: `redis://127.0.0.1:${port}`, connectTimeoutMs: 300, commandTimeoutMs: 100 });
    const order: string[] = [];
    // Due between the two bounds: a start cut at commandTimeoutMs would fail before it.
    const between = setTimeout(() => order.push('200 ms'), 200);
    // Due long after connectTimeoutMs: a start that waited past it would fail after it.
    const after = setTimeout(() => order.push('5 s'), 5000);
    const failure = await Promise.resolve(backend.create({ concurrency: 1, logger: silentLogger })).then(
      () => undefined,
      (error: unknown) => {
        order.push('start failed');
        return error;
      },
    );
    clearTimeout(between);
    clearTimeout(after);
    expect(order).toEqual(['200 ms', 'start failed']);
    expect(failure).toMatchObject({
      code: 'RedisUnavailable',
      statusCode: 503,
      message: 'Redis did not answer within 300 ms',
    });
  });

  it('a start that failed leaves no connection trying Redis again', async () => {
    const server = await countingServer(); // accepts each connection and closes it, as a Redis going away
    try {
      const backend = bullmq({ connection: { host: '127.0.0.1', port: server.port }, connectTimeoutMs: 1000 });
      await expect(Promise.resolve(backend.create({ concurrency: 1, logger: silentLogger }))).rejects.toMatchObject({
        code: 'RedisUnavailable',
      });
      // A connection the server had not yet taken when the start gave up (a loaded machine) lands
      // within milliseconds; a reconnection still scheduled would come later, within the 1.5 s below.
      await new Promise((resolve) => setTimeout(resolve, 300));
      const tried = server.count();
      expect(tried).toBeGreaterThan(2); // both connections, reconnecting
      await new Promise((resolve) => setTimeout(resolve, 1500));
      expect(server.count()).toBe(tried);
    } finally {
      await server.close();
    }
  });

  it('says a connection error once per connection while Redis stays away, not on every reconnection', async () => {
    const port = await freePort(); // nothing listens there: every reconnection is refused alike
    const warnings: string[] = [];
    const logger = { ...silentLogger, warn: (message: string) => void warnings.push(message) };
    const backend = bullmq({ connection: `redis://127.0.0.1:${port}`, connectTimeoutMs: 1000 });
    await expect(Promise.resolve(backend.create({ concurrency: 1, logger }))).rejects.toMatchObject({
      code: 'RedisUnavailable',
    });
    const said = warnings.filter((m) => m === 'redis connection error').length;
    // The store's connection and its subscriber's.
    expect(said).toBeGreaterThan(0);
    expect(said).toBeLessThanOrEqual(2);
  });

  it('fails at once when Redis refuses the credentials, rather than after connectTimeoutMs', async () => {
    const port = Number(new URL(inject('redisUrl')).port);
    const admin = new Redis({ host: '127.0.0.1', port });
    await admin.call('ACL', 'SETUSER', 'fc_async_acl_test', 'on', '>right', '~*', '&*', '+@all');
    await admin.quit();
    const backend = bullmq({
      connection: `redis://fc_async_acl_test:wrong@127.0.0.1:${port}`,
      connectTimeoutMs: 10_000,
    });
    const order: string[] = [];
    // Due well before the connect timeout: a start that waited it out would fail after it.
    const before = setTimeout(() => order.push('5 s'), 5000);
    const failure = await Promise.resolve(backend.create({ concurrency: 1, logger: silentLogger })).then(
      () => undefined,
      (error: unknown) => {
        order.push('start failed');
        return error as { cause?: Error };
      },
    );
    clearTimeout(before);
    expect(order).toEqual(['start failed']);
    expect(failure).toMatchObject({
      code: 'RedisUnavailable',
      statusCode: 503,
      message: 'Redis refused the credentials of the connection',
    });
    expect(failure?.cause?.message).toMatch(/^WRONGPASS/);
    expect(JSON.stringify(failure)).not.toContain('wrong');
  });

  it("speaks RESP2 whatever the URL's query says of `protocol` and `replyMapping`: a task is accepted, run and read back", async () => {
    // ioredis lets a URL's query win over the options passed beside it: here ioredis 6 refused the
    // query's `replyMapping: 'resp3'` beside bullmq()'s `protocol: 2`, and the start failed.
    const handler = createFcHandler((_req, res) => res.end('done'), {
      logger: silentLogger,
      env: {},
      async: {
        mode: 'local',
        backend: bullmq({
          connection: `${inject('redisUrl')}/?protocol=3&replyMapping=resp3`,
          prefix: uniquePrefix(),
        }),
      },
    });
    try {
      expect((await handler(asyncEvent('resp_1'))).statusCode).toBe(202);
      await until('the task to succeed', async () => (await handler.tasks.get('resp_1'))?.status === 'Succeeded');
      expect(await handler.tasks.list()).toMatchObject({ tasks: [{ taskId: 'resp_1', status: 'Succeeded' }] });
    } finally {
      await handler.close({ timeoutMs: 1000 });
    }
  });

  it('fails at once when Redis has no database of the number the URL names (ioredis would go on in db 0)', async () => {
    const backend = bullmq({ connection: `${inject('redisUrl')}/99`, connectTimeoutMs: 10_000 });
    const failure = await Promise.resolve(backend.create({ concurrency: 1, logger: silentLogger })).then(
      () => undefined,
      (error: unknown) => error as { cause?: Error },
    );
    expect(failure).toMatchObject({
      code: 'RedisUnavailable',
      statusCode: 503,
      message: 'Redis refused the database number of the connection',
    });
    expect(failure?.cause?.message).toMatch(/^ERR DB index is out of range/);
  });
});
