import type { IncomingMessage, ServerResponse } from 'node:http';
import { createFcHandler, getInvocation, silentLogger } from '@fc-async/core';
import { asyncEvent } from '@fc-async/test-kit/fc-server';
import { Redis } from 'ioredis';
import { afterEach, expect, inject, it } from 'vitest';
import { type BullmqBackendOptions, bullmq } from '../src/index.js';
import { uniquePrefix, until } from './helpers.js';

// A stop reaches the attempt that owns its task, on whichever instance, even when the channel that
// carries stops dropped it or the instance asked runs an outdated attempt of its own.

const closers: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const close of closers.splice(0).reverse()) await close();
});

type App = (req: IncomingMessage, res: ServerResponse) => unknown;

function instance(app: App, options: Partial<BullmqBackendOptions> & { prefix: string }) {
  const handler = createFcHandler(app, {
    logger: silentLogger,
    env: {},
    async: {
      mode: 'local',
      concurrency: 1,
      backoff: { baseMs: 10, maxMs: 10 },
      backend: bullmq({ connection: inject('redisUrl'), ...options }),
    },
  });
  closers.push(() => handler.close({ timeoutMs: 500 }));
  return handler;
}

/** An app whose attempts wait for their signal, noting `<name>:<attempt>` as they start and as they are aborted. */
function waitingApp(name: string, ran: string[], aborted: string[]): App {
  return (req, res) => {
    const invocation = getInvocation(req);
    ran.push(`${name}:${invocation?.attempt}`);
    invocation?.signal?.addEventListener('abort', () => {
      aborted.push(`${name}:${invocation.attempt}`);
      res.end();
    });
  };
}

function admin(): Redis {
  const redis = new Redis(inject('redisUrl'));
  closers.push(() => redis.quit());
  return redis;
}

it('a stop published while the running instance is cut from Redis reaches it once it is back', async () => {
  const prefix = uniquePrefix();
  const ran: string[] = [];
  const aborted: string[] = [];
  instance(waitingApp('runner', ran, aborted), { prefix });
  const api = instance((_req, res) => res.end(), { prefix, worker: false });
  expect((await api(asyncEvent('long'))).statusCode).toBe(202);
  await until('the task Running', async () => (await api.tasks.get('long'))?.status === 'Running');
  // A network blip drops every subscriber; Redis keeps nothing published meanwhile.
  await admin().call('CLIENT', 'KILL', 'TYPE', 'pubsub');
  expect((await api.tasks.stop('long')).status).toBe('Stopping');
  await until('the attempt aborted', () => aborted.length === 1, 8000);
  expect(aborted).toEqual(['runner:0']);
  await until('the task Stopped', async () => (await api.tasks.get('long'))?.status === 'Stopped');
});

it('a stop asked on an instance running an outdated attempt reaches the instance that owns the task', async () => {
  const prefix = uniquePrefix();
  const ran: string[] = [];
  const aborted: string[] = [];
  const locks = { prefix, lockDurationMs: 200, stalledIntervalMs: 200 };
  const one = instance(waitingApp('one', ran, aborted), locks);
  expect((await one(asyncEvent('shared'))).statusCode).toBe(202);
  await until('the first instance running it', () => ran.length === 1);
  // Its lock lost (as if the instance were frozen past lockDurationMs): another instance takes it.
  expect(await admin().del(`${prefix}:tasks:shared:lock`)).toBe(1);
  instance(waitingApp('two', ran, aborted), locks);
  await until('the other instance running it', () => ran.length === 2, 12_000);
  expect(ran).toEqual(['one:0', 'two:1']);
  expect((await one.tasks.stop('shared')).status).toBe('Stopping');
  await until('both attempts aborted', () => aborted.length === 2, 5000);
  expect(aborted.sort()).toEqual(['one:0', 'two:1']);
});

it('a resubscribe Redis refuses after a reconnection is no unhandled rejection, and the next one brings stops back', async () => {
  // ioredis resubscribes a subscriber by itself after a reconnection, without handling a failure
  // of that SUBSCRIBE (a connection closed again, a command timeout, an ACL): an unhandled
  // rejection, which ends a Node process by default. The store resubscribes itself, handled.
  const user = `fcsub${Math.random().toString(36).slice(2, 8)}`;
  const redis = admin();
  await redis.call('ACL', 'SETUSER', user, 'on', '>pw', '~*', '&*', '+@all');
  closers.push(() => redis.call('ACL', 'DELUSER', user));
  const url = new URL(inject('redisUrl'));
  url.username = user;
  url.password = 'pw';
  const unhandled: unknown[] = [];
  const onUnhandled = (reason: unknown) => unhandled.push(reason);
  process.on('unhandledRejection', onUnhandled);
  closers.push(async () => process.off('unhandledRejection', onUnhandled));
  const prefix = uniquePrefix();
  const ran: string[] = [];
  const aborted: string[] = [];
  instance(waitingApp('runner', ran, aborted), { prefix, connection: url.href });
  const api = instance((_req, res) => res.end(), { prefix, worker: false });
  expect((await api(asyncEvent('blip'))).statusCode).toBe(202);
  await until('the task Running', async () => (await api.tasks.get('blip'))?.status === 'Running');

  await redis.call('ACL', 'LOG', 'RESET');
  await redis.call('ACL', 'SETUSER', user, '-subscribe');
  await redis.call('CLIENT', 'KILL', 'USER', user);
  const refusedSubscribes = async () => {
    const log = (await redis.call('ACL', 'LOG')) as unknown[][];
    return log.filter((entry) => entry.includes(user) && entry.includes('subscribe')).length;
  };
  // Both resubscribes (ioredis's, if it makes one, and the store's) refused.
  await until('a resubscribe refused', async () => (await refusedSubscribes()) > 0);
  await new Promise((resolve) => setTimeout(resolve, 200));
  expect(unhandled).toEqual([]);

  await redis.call('ACL', 'SETUSER', user, '+subscribe');
  await redis.call('CLIENT', 'KILL', 'USER', user);
  expect((await api.tasks.stop('blip')).status).toBe('Stopping');
  await until('the attempt aborted', () => aborted.length === 1, 8000);
  expect(unhandled).toEqual([]);
});
