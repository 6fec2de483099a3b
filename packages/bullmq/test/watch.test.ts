import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createFcHandler, silentLogger } from '@fc-async/core';
import { freePort } from '@fc-async/test-kit/net';
import { taskRecord as record } from '@fc-async/test-kit/task-store';
import { Redis } from 'ioredis';
import { afterEach, describe, expect, inject, it } from 'vitest';
import { bullmq } from '../src/index.js';
import { keysOf } from '../src/keys.js';
import { jobIdOf } from '../src/queue.js';
import { RedisTaskStore } from '../src/store.js';
import { openStore, uniquePrefix, until } from './helpers.js';
import { spawnRedis } from './redis-server.js';

// RedisTaskStore.watch: what the dashboard of one instance learns of the tasks other instances
// change, from BullMQ's own event stream and the stop channel, while someone watches.

const closers: (() => Promise<unknown> | unknown)[] = [];
afterEach(async () => {
  for (const close of closers.splice(0).reverse()) await close();
});

async function watching(prefix: string) {
  const { store, close } = await openStore(prefix);
  closers.push(close);
  const seen: (readonly string[])[] = [];
  const off = store.watch((ids) => seen.push(ids));
  closers.push(off);
  // The watch began (its first report, empty: read everything again).
  await until('the watch to begin', () => seen.length > 0);
  return { store, seen, off, ids: () => seen.flat() };
}

/** How many commands of `username` Redis's ACL refused (ACL LOG counts repeats in one entry). */
async function deniedReads(admin: Redis, username: string): Promise<number> {
  const entries = (await admin.call('ACL', 'LOG', '128')) as string[][];
  let count = 0;
  for (const entry of entries) {
    const field = (name: string) => entry[entry.indexOf(name) + 1];
    if (field('username') === username) count += Number(field('count'));
  }
  return count;
}

/** Writes an event to BullMQ's stream as BullMQ's scripts do, with the job of `taskId`. */
async function bullEvent(redis: Redis, prefix: string, event: string, taskId: string): Promise<void> {
  await redis.xadd(keysOf(prefix).events, '*', 'event', event, 'jobId', jobIdOf(taskId), 'prev', 'waiting');
}

describe('RedisTaskStore.watch', () => {
  it("reports a job's events, and a taken job again once its task's record shows the claim", async () => {
    const prefix = uniquePrefix();
    const other = await openStore(prefix);
    closers.push(other.close);
    const redis = new Redis(inject('redisUrl'));
    closers.push(() => redis.disconnect());
    const { seen, ids } = await watching(prefix);

    await other.store.insert(record('t_1', { status: 'Enqueued' }));
    await bullEvent(redis, prefix, 'added', 't_1');
    await until('the accept to be reported', () => ids().includes('t_1'));

    // Taken by a worker: BullMQ writes `active` before the attempt writes Running.
    const before = seen.length;
    await bullEvent(redis, prefix, 'active', 't_1');
    await until('the take to be reported', () => seen.slice(before).flat().includes('t_1'));
    const afterTake = seen.length;
    await other.store.transition('t_1', 'Running', { from: ['Enqueued'], via: 'Dequeued' });
    await until('the claim to be reported', () => seen.slice(afterTake).flat().includes('t_1'));
  });

  it('reports a stop another instance publishes, and stops following once nobody watches', async () => {
    const prefix = uniquePrefix();
    const other = await openStore(prefix);
    closers.push(other.close);
    const { ids, off } = await watching(prefix);
    await other.store.requestStop('t_2');
    await until('the stop to be reported', () => ids().includes('t_2'));

    off();
    const redis = new Redis(inject('redisUrl'));
    closers.push(() => redis.disconnect());
    // The stream's reader is gone: no client blocks on it.
    await until('the reader to close', async () => !((await redis.client('LIST')) as string).includes('cmd=xread'));
  });

  it('tells the watcher to read everything again once Redis is back after a restart that lost its data', async () => {
    // A Redis of this test alone, restarted on its port without persistence: every task it held is gone.
    const dir = mkdtempSync(join(tmpdir(), 'fc-async-watch-redis-'));
    closers.push(() => rmSync(dir, { recursive: true, force: true }));
    const port = await freePort();
    let child = await spawnRedis(port, dir, ['--appendonly', 'no']);
    closers.push(() => child.kill('SIGKILL'));
    const url = `redis://127.0.0.1:${port}`;
    const redis = new Redis(url);
    const subscriber = redis.duplicate();
    for (const connection of [redis, subscriber]) connection.on('error', () => {});
    const store = new RedisTaskStore(redis, subscriber, keysOf(uniquePrefix()));
    await store.listen();
    closers.push(() => store.close());
    const seen: (readonly string[])[] = [];
    closers.push(store.watch((ids) => seen.push(ids)));
    await until('the watch to begin', () => seen.length > 0);
    await store.insert(record('t_3', { status: 'Enqueued' }));

    const before = seen.length;
    child.kill('SIGKILL');
    await once(child, 'exit');
    child = await spawnRedis(port, dir, ['--appendonly', 'no']);
    // The list the dashboard shows (t_3) is no longer what Redis holds: it is told to read it again.
    await until('an empty report (read everything again) after the restart', () =>
      seen.slice(before).some((ids) => ids.length === 0),
    );
  });

  it('says once, through the logger, that Redis refuses the reads of its events (an ACL without XREAD)', async () => {
    // A user of this test alone, allowed everything but reading streams: the store works, the watch cannot.
    const admin = new Redis(inject('redisUrl'));
    closers.push(() => admin.disconnect());
    const username = `nostream-${randomBytes(4).toString('hex')}`;
    await admin.call('ACL', 'SETUSER', username, 'on', '>pw', '~*', '&*', '+@all', '-xread', '-xrevrange');
    closers.push(() => admin.call('ACL', 'DELUSER', username));
    const { port } = new URL(inject('redisUrl'));
    const warnings: { message: string; fields?: Record<string, unknown> }[] = [];
    const logger = {
      ...silentLogger,
      warn: (message: string, fields?: Record<string, unknown>) => void warnings.push({ message, fields }),
    };
    const handler = createFcHandler((_req, res) => res.end(), {
      logger,
      env: {},
      async: {
        mode: 'local',
        backend: bullmq({
          connection: { host: '127.0.0.1', port: Number(port), username, password: 'pw' },
          prefix: uniquePrefix(),
        }),
      },
    });
    closers.push(() => handler.close({ timeoutMs: 1000 }));
    await handler.engine?.whenReady();
    closers.push(handler.engine?.watchStore(() => {}) ?? (() => {}));

    const refusals = () => warnings.filter((e) => e.message.includes('Redis refused reading its events'));
    await until('the refusal to be told', () => refusals().length > 0);
    expect(refusals()[0]?.fields?.reason).toMatch(/^NOPERM/);
    // It keeps trying (a read a second) without telling it again.
    const first = await deniedReads(admin, username);
    await until('two more refused reads', async () => (await deniedReads(admin, username)) >= first + 2);
    expect(refusals()).toHaveLength(1);
  });
});
