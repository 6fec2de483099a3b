import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { type AsyncTask, createFcHandler, type DestinationRecord, silentLogger } from '@fc-async/core';
import { Redis } from 'ioredis';
import { afterEach, describe, expect, inject, it, vi } from 'vitest';
import { bullmq } from '../src/index.js';
import { uniquePrefix } from './helpers.js';

/**
 * fixtures/keys-36842d6.json holds every key that @fc-async/bullmq at commit 36842d6 (2026-11-30,
 * BullMQ 5.81.5) left under its prefix, served by that commit's `fc-async dev` (concurrency 1,
 * maxAsyncRetryAttempts 1, jsonl destinations): ok-1 Succeeded, fail-1 Failed after its retry,
 * stop-1 stopped while running, stopq-1 stopped while queued (all four delivered), run-1 running (an
 * app holding it), q-1, q-2 and qf-1 waiting behind it, d-1 and d-2 accepted with X-Fc-Async-Delay 8
 * and 40; then the process was killed (SIGKILL) and the keys read once run-1's lock had expired
 * (as [name after the prefix, type, value]; BullMQ's events stream left out).
 * fixtures/tasks-36842d6.json is what that version's GetAsyncTask answered for each task before the kill.
 */
const fixture = (name: string) => JSON.parse(readFileSync(join(import.meta.dirname, 'fixtures', name), 'utf8'));
const KEYS = fixture('keys-36842d6.json') as [string, string, unknown][];
const OLD_ANSWERS = fixture('tasks-36842d6.json') as Record<string, AsyncTask>;
/** The last time the old process wrote (the stop of stopq-1), a little before the kill. */
const KILLED_AT = Math.max(...Object.values(OLD_ANSWERS).flatMap((t) => t.events.map((e) => e.timestamp)));

/** Writes the fixture's keys under `prefix`, as the old version left them. */
async function restore(redis: Redis, prefix: string): Promise<void> {
  for (const [name, type, value] of KEYS) {
    const key = `${prefix}:${name}`;
    if (type === 'string') await redis.set(key, value as string);
    else if (type === 'hash') await redis.hset(key, value as Record<string, string>);
    else if (type === 'list') await redis.rpush(key, ...(value as string[]));
    else if (type === 'set') await redis.sadd(key, ...(value as string[]));
    else if (type === 'zset') {
      const pairs = value as string[];
      for (let i = 0; i < pairs.length; i += 2) await redis.zadd(key, pairs[i + 1]!, pairs[i]!);
    } else throw new Error(`${key}: ${type}`);
  }
}

const closers: (() => unknown)[] = [];
afterEach(async () => {
  for (const close of closers.splice(0)) await close();
  vi.useRealTimers();
});

describe('bullmq(): keys an earlier version left in Redis', () => {
  it('keeps every task left at 36842d6 (BullMQ 5): finished ones as they were, queued and delayed ones run, the interrupted one retried', async () => {
    // The new instance a minute after the kill: every delay has passed, no event is near the age limit.
    vi.useFakeTimers({ toFake: ['Date'], now: KILLED_AT + 60_000, shouldAdvanceTime: true });
    const prefix = uniquePrefix();
    const redis = new Redis(inject('redisUrl'));
    closers.push(() => redis.quit());
    await restore(redis, prefix);
    const bodies = new Map<string, string>();
    const successes: DestinationRecord[] = [];
    const failures: DestinationRecord[] = [];
    const handler = createFcHandler(
      (req, res) => {
        const chunks: Buffer[] = [];
        req.on('data', (c: Buffer) => chunks.push(c));
        req.on('end', () => {
          bodies.set(String(req.headers['x-fc-async-task-id']), Buffer.concat(chunks).toString());
          res.statusCode = req.url === '/fail' ? 500 : 200;
          res.end(`answered ${req.url}`);
        });
      },
      {
        logger: silentLogger,
        env: {},
        async: {
          mode: 'local',
          concurrency: 4,
          maxAsyncRetryAttempts: 1,
          backoff: { baseMs: 10, maxMs: 10 },
          backend: bullmq({ connection: inject('redisUrl'), prefix, lockDurationMs: 200, stalledIntervalMs: 200 }),
        },
        destinations: { onSuccess: (r) => void successes.push(r), onFailure: (r) => void failures.push(r) },
      },
    );
    closers.unshift(() => handler.close({ timeoutMs: 100 }));
    await handler.engine?.whenReady();
    const task = async (id: string) => (await handler.tasks.get(id)) as AsyncTask;

    // Finished tasks read back as the old version answered them.
    for (const id of ['ok-1', 'fail-1', 'stop-1', 'stopq-1']) expect(await task(id)).toEqual(OLD_ANSWERS[id]);

    // The waiting and delayed jobs run once, with the request the old version accepted; the
    // job left active by the kill is found stalled, its attempt counted, then retried.
    const open = ['q-1', 'q-2', 'qf-1', 'd-1', 'd-2', 'run-1'];
    await vi.waitFor(
      async () => {
        for (const id of open) expect(['Succeeded', 'Failed']).toContain((await task(id)).status);
      },
      { timeout: 30_000, interval: 50 },
    );
    for (const [id, body] of [
      ['q-1', '{"n":2}'],
      ['q-2', '{"n":3}'],
      ['d-1', '{"n":4}'],
      ['d-2', '{"n":5}'],
    ] as const) {
      const t = await task(id);
      expect(t).toMatchObject({ status: 'Succeeded', alreadyRetriedTimes: 0, returnPayload: 'answered /ok' });
      const old = OLD_ANSWERS[id]!;
      expect(t).toMatchObject({ requestId: old.requestId, startedTime: old.startedTime, taskPayload: old.taskPayload });
      expect(bodies.get(id)).toBe(body);
    }
    expect(await task('qf-1')).toMatchObject({ status: 'Failed', alreadyRetriedTimes: 1 });
    const run = await task('run-1');
    expect(run).toMatchObject({ status: 'Succeeded', alreadyRetriedTimes: 1, returnPayload: 'answered /slow' });
    expect(run.events.slice(0, 3)).toEqual(OLD_ANSWERS['run-1']!.events);
    expect(run.events.map((e) => e.status).slice(3)).toEqual(['Retrying', 'Dequeued', 'Running', 'Succeeded']);

    // Destinations: the tasks that ended now, none of those the old version had delivered.
    await vi.waitFor(() => expect(successes.length + failures.length).toBe(6), { timeout: 10_000, interval: 50 });
    const ids = (records: DestinationRecord[]) =>
      records
        .map((r) => Object.values(OLD_ANSWERS).find((t) => t.requestId === r.requestContext.requestId)?.taskId)
        .sort();
    expect(ids(successes)).toEqual(['d-1', 'd-2', 'q-1', 'q-2', 'run-1']);
    expect(ids(failures)).toEqual(['qf-1']);
    expect((await handler.tasks.list({ limit: 100 })).tasks).toHaveLength(10);
  });
});
