import { join } from 'node:path';
import { createFcHandler, type Logger, silentLogger } from '@fc-async/core';
import { taskRecord as record } from '@fc-async/test-kit/task-store';
import Database from 'better-sqlite3';
import { afterEach, describe, expect, it } from 'vitest';
import { openDatabase } from '../src/database.js';
import { sqlite } from '../src/index.js';
import { resolveSqliteOptions } from '../src/options.js';
import { SqliteTaskStore } from '../src/store.js';
import { tempDir } from './helpers.js';

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0)) await c();
});

/**
 * A file holding three queued tasks and one finished, where the record (or the request, `payload`)
 * of `queued_1` and of `done` are damaged as a few bytes changed on disk leave them: SQLite reads
 * the rows (it keeps no checksum of a page's contents), their JSON no longer parses.
 */
async function damagedFile(column: 'record' | 'payload' = 'record'): Promise<string> {
  const { dir, cleanup } = tempDir();
  cleanups.push(cleanup);
  const path = join(dir, 'tasks.db');
  const options = resolveSqliteOptions(path, {});
  const store = new SqliteTaskStore(openDatabase(path, options), options, silentLogger);
  const now = Date.now();
  for (const [i, id] of ['queued_0', 'queued_1', 'queued_2'].entries()) {
    await store.insert(record(id, { startedTime: now + i, acceptedAt: now }));
  }
  await store.insert(
    record('done', { status: 'Succeeded', startedTime: now + 3, endTime: now + 4, acceptedAt: now, attempts: 1 }),
  );
  store.close();
  const db = new Database(path);
  db.prepare(
    `UPDATE fc_async_tasks SET ${column} = char(255, 254) || substr(${column}, 3) WHERE task_id IN (?, ?)`,
  ).run('queued_1', 'done');
  db.close();
  return path;
}

function capturingLogger(): { logger: Logger; errors: { message: string; fields?: Record<string, unknown> }[] } {
  const errors: { message: string; fields?: Record<string, unknown> }[] = [];
  const logger: Logger = { ...silentLogger, error: (message, fields) => void errors.push({ message, fields }) };
  return { logger, errors };
}

/** A handler on the file, started (recovery done), that notes the task ids it runs. */
async function started(path: string) {
  const ran: string[] = [];
  const { logger, errors } = capturingLogger();
  const handler = createFcHandler(
    (req, res) => {
      ran.push(String(req.headers['x-fc-async-task-id']));
      res.end('ok');
    },
    { logger, env: {}, async: { mode: 'local', backend: sqlite(path) } },
  );
  cleanups.unshift(() => handler.close({ timeoutMs: 100 }));
  await handler.engine?.whenReady();
  return { handler, ran, errors };
}

describe('sqlite(): a task whose record on disk is damaged', () => {
  it('does not keep the start from recovering the other tasks: they run, and the damaged one is logged by id', async () => {
    const path = await damagedFile();
    const { handler, ran, errors } = await started(path);
    await handler.drain();
    expect(ran.sort()).toEqual(['queued_0', 'queued_2']);
    expect((await handler.tasks.get('queued_0'))?.status).toBe('Succeeded');
    expect(errors.filter((e) => e.fields?.taskId === 'queued_1').map((e) => e.message)).toEqual([
      'the record of an unfinished task cannot be read (damaged): it is not recovered',
    ]);
  });

  it('whose request alone is damaged is not run, logged once: drain() ends and the others run', async () => {
    const path = await damagedFile('payload');
    const { handler, ran, errors } = await started(path);
    // Before the fix, its run threw on every try, retried each second without end.
    let timer: NodeJS.Timeout | undefined;
    const stuck = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error('drain() did not end within 5 s')), 5000);
    });
    await Promise.race([handler.drain(), stuck]).finally(() => clearTimeout(timer));
    expect(ran.sort()).toEqual(['queued_0', 'queued_2']);
    expect((await handler.tasks.get('queued_2'))?.status).toBe('Succeeded');
    expect(errors.filter((e) => e.fields?.taskId === 'queued_1').map((e) => e.message)).toEqual([
      'async task cannot be read from its store: it is not run',
    ]);
  });

  it('GetAsyncTask and ListAsyncTasks answer 500 SqliteTaskUnreadable naming the task, not a JSON parse error', async () => {
    const path = await damagedFile();
    const options = resolveSqliteOptions(path, {});
    const store = new SqliteTaskStore(openDatabase(path, options), options, silentLogger);
    cleanups.unshift(() => store.close());
    const unreadable = (taskId: string) => ({
      code: 'SqliteTaskUnreadable',
      statusCode: 500,
      message: `The record of task ${taskId} in ${path} cannot be read: it is damaged`,
    });
    expect(() => store.get('done')).toThrow(expect.objectContaining(unreadable('done')));
    expect(() => store.list({ sortOrderByTime: 'asc' })).toThrow(expect.objectContaining(unreadable('queued_1')));
    expect(store.get('queued_2')?.taskId).toBe('queued_2');
  });
});
