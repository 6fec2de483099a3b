import { Redis } from 'ioredis';
import { afterEach, describe, expect, inject, it } from 'vitest';
import { corkEachTurn } from '../src/cork.js';
import { uniquePrefix } from './helpers.js';

const clients: Redis[] = [];
afterEach(async () => {
  await Promise.all(clients.splice(0).map((c) => c.quit()));
});

async function corked(): Promise<Redis> {
  const redis = new Redis(inject('redisUrl'));
  clients.push(redis);
  await redis.ping();
  corkEachTurn(redis);
  return redis;
}

describe('corkEachTurn', () => {
  it('sends the commands of one turn in order, each with its own reply, and those of later turns too', async () => {
    const redis = await corked();
    const key = `${uniquePrefix()}:n`;
    const sameTurn = [redis.set(key, '1'), redis.incr(key), redis.get(key), redis.del(key)];
    expect(await Promise.all(sameTurn)).toEqual(['OK', 2, '2', 1]);
    // Later turns, each after the previous reply: nothing is left held.
    for (let i = 0; i < 3; i++) expect(await redis.incr(key)).toBe(i + 1);
    await new Promise((resolve) => setImmediate(resolve));
    expect(await redis.get(key)).toBe('3');
  });

  it('leaves commands sent while the connection is not ready yet to ioredis’s offline queue', async () => {
    const redis = new Redis(inject('redisUrl'), { lazyConnect: true });
    clients.push(redis);
    corkEachTurn(redis);
    const key = `${uniquePrefix()}:k`;
    // The first command starts connecting: these wait in the offline queue until it is ready.
    expect(redis.status).toBe('wait');
    const replies = Promise.all([redis.set(key, 'v'), redis.get(key), redis.del(key)]);
    expect(await replies).toEqual(['OK', 'v', 1]);
  });
});
