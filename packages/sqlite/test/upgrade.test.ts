import { copyFileSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { type AsyncTask, createFcHandler, type DestinationRecord, silentLogger } from '@fc-async/core';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { sqlite } from '../src/index.js';
import { tempDir } from './helpers.js';

/**
 * fixtures/tasks-36842d6.db was written by @fc-async/sqlite at commit 36842d6 (2026-11-30), served
 * by that commit's `fc-async dev` (concurrency 1, maxAsyncRetryAttempts 1, jsonl destinations):
 * ok-1 Succeeded, fail-1 Failed after its retry, stop-1 stopped while running, stopq-1 stopped while
 * queued (all four delivered), run-1 running (an app holding it), q-1, q-2 and qf-1 queued behind
 * it, d-1 and d-2 accepted with X-Fc-Async-Delay 8 and 40; then the process was killed (SIGKILL)
 * and its -wal checkpointed into the file by a plain SQLite open. fixtures/tasks-36842d6.json is
 * what that version's GetAsyncTask answered for each task just before the kill.
 */
const FIXTURE = join(import.meta.dirname, 'fixtures', 'tasks-36842d6.db');
const OLD_ANSWERS = JSON.parse(
  readFileSync(join(import.meta.dirname, 'fixtures', 'tasks-36842d6.json'), 'utf8'),
) as Record<string, AsyncTask>;
/** The last time the old process wrote (the stop of stopq-1), a little before the kill. */
const KILLED_AT = Math.max(...Object.values(OLD_ANSWERS).flatMap((t) => t.events.map((e) => e.timestamp)));

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0)) await c();
  vi.useRealTimers();
});

describe('sqlite(): a task file of an earlier version', () => {
  it('keeps every task of a file written at 36842d6: finished ones as they were, queued and delayed ones run, the interrupted one retried', async () => {
    // The restart a minute after the kill: every delay has passed, no event is near the age limit.
    vi.useFakeTimers({ toFake: ['Date'], now: KILLED_AT + 60_000, shouldAdvanceTime: true });
    const { dir, cleanup } = tempDir();
    cleanups.push(cleanup);
    const path = join(dir, 'tasks.db');
    copyFileSync(FIXTURE, path);
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
        async: { mode: 'local', maxAsyncRetryAttempts: 1, backoff: { baseMs: 1, maxMs: 2 }, backend: sqlite(path) },
        destinations: { onSuccess: (r) => void successes.push(r), onFailure: (r) => void failures.push(r) },
      },
    );
    cleanups.unshift(() => handler.close({ timeoutMs: 100 }));
    await handler.engine?.whenReady();
    await handler.drain();
    const task = async (id: string) => (await handler.tasks.get(id)) as AsyncTask;

    // Finished tasks read back as the old version answered them (a destination it recorded included).
    for (const id of ['ok-1', 'fail-1', 'stop-1', 'stopq-1']) expect(await task(id)).toMatchObject(OLD_ANSWERS[id]!);

    // Queued and delayed tasks ran once, with the request the old version accepted.
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
    // The queued failing one: its retry, as configured, then onFailure.
    expect(await task('qf-1')).toMatchObject({ status: 'Failed', alreadyRetriedTimes: 1 });

    // The attempt the kill cut short is counted, then retried (docs/async.md, Recovery on start).
    const run = await task('run-1');
    expect(run).toMatchObject({ status: 'Succeeded', alreadyRetriedTimes: 1, returnPayload: 'answered /slow' });
    expect(run.events.map((e) => e.status)).toEqual([
      'Enqueued',
      'Dequeued',
      'Running',
      'Retrying',
      'Dequeued',
      'Running',
      'Succeeded',
    ]);
    expect(run.events.slice(0, 3)).toEqual(OLD_ANSWERS['run-1']!.events);

    // Destinations: the tasks that ended now, none of those the old version had delivered.
    const ids = (records: DestinationRecord[]) =>
      records
        .map((r) => Object.values(OLD_ANSWERS).find((t) => t.requestId === r.requestContext.requestId)?.taskId)
        .sort();
    expect(ids(successes)).toEqual(['d-1', 'd-2', 'q-1', 'q-2', 'run-1']);
    expect(ids(failures)).toEqual(['qf-1']);
    expect((await handler.tasks.list({ limit: 100 })).tasks).toHaveLength(10);
  });
});
