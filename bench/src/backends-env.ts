import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import type { FcHttpEvent } from '@fc-async/core';
import Database from 'better-sqlite3';
import { freePort } from './http-load.js';

/** A temporary folder and a throwaway redis-server on a free loopback port, no persistence. */
export interface BenchEnv {
  dir: string;
  redisUrl: string;
  redisPort: number;
  stop(): void;
}

/** Starts redis-server (10 s at most) in a fresh temporary folder. */
export async function startEnv(): Promise<BenchEnv> {
  const dir = mkdtempSync(join(tmpdir(), 'fc-async-bench-'));
  const port = await freePort();
  const args = ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir];
  const child: ChildProcess = spawn('redis-server', args, { stdio: ['ignore', 'pipe', 'inherit'] });
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('redis-server did not start within 10 s')), 10_000);
    createInterface({ input: child.stdout as NodeJS.ReadableStream }).on('line', (line) => {
      if (!line.includes('Ready to accept connections')) return;
      clearTimeout(timer);
      resolve();
    });
    child.once('error', (error) => {
      clearTimeout(timer);
      reject(new Error(`redis-server could not start (install the Debian package redis-server): ${error.message}`));
    });
  });
  child.stdout?.resume();
  return {
    dir,
    redisUrl: `redis://127.0.0.1:${port}`,
    redisPort: port,
    stop() {
      child.kill('SIGKILL');
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** The request every row stores: a transcode job, about 1 KB with its headers. */
export const JOB_BODY = JSON.stringify({
  bucket: 'media-bucket',
  object: 'uploads/2024/06/holiday-video-final-cut.mov',
  output_dir: 'transcoded/2024/06/',
  dst_format: 'm3u8',
  notes: 'x'.repeat(600),
});

/** The FC 3.0 event of an async call with its own task id (a delay keeps it from running). */
export function jobEvent(taskId: string, delaySeconds?: number): FcHttpEvent {
  const headers: Record<string, string> = {
    'Content-Type': 'application/json',
    'User-Agent': 'curl/8.5.0',
    'X-Fc-Invocation-Type': 'Async',
    'X-Fc-Async-Task-Id': taskId,
  };
  if (delaySeconds) headers['X-Fc-Async-Delay'] = String(delaySeconds);
  return {
    version: 'v1',
    rawPath: '/transcode',
    body: JOB_BODY,
    isBase64Encoded: false,
    headers,
    queryParameters: {},
    requestContext: {
      accountId: '123',
      http: { method: 'POST', path: '/transcode', sourceIp: '127.0.0.1' },
      timeEpoch: String(Date.now()),
    },
  };
}

/**
 * Plain better-sqlite3 with @fc-async/sqlite's settings and table (schema 2): WAL, exclusive
 * locking, one row per task (a record JSON with the request's method, URL and headers; the body
 * as a BLOB), each statement its own commit; the INSERT at the given `synchronous` level, the
 * UPDATEs of a run at NORMAL (as @fc-async/sqlite commits progress).
 */
export interface RawSqlite {
  db: Database.Database;
  insert(id: string): void;
  /** Inserts these ids in one transaction. */
  insertAll(ids: readonly string[]): void;
  /** Claim, then finish: what running a task writes. */
  run(id: string): void;
}

export function rawSqlite(file: string, synchronous: 'FULL' | 'NORMAL'): RawSqlite {
  const db = new Database(file);
  db.pragma('locking_mode = EXCLUSIVE');
  db.pragma('journal_mode = WAL');
  let current = '';
  const level = (next: 'FULL' | 'NORMAL') => {
    if (current === next) return;
    db.pragma(`synchronous = ${next}`);
    current = next;
  };
  db.exec(`
    CREATE TABLE tasks (task_id TEXT PRIMARY KEY NOT NULL, status TEXT NOT NULL, started_time INTEGER NOT NULL,
      end_time INTEGER, open INTEGER NOT NULL, record TEXT NOT NULL, body BLOB NOT NULL, payload TEXT);
    CREATE INDEX tasks_by_time ON tasks (started_time, task_id);
    CREATE INDEX tasks_open ON tasks (open) WHERE open = 1;
    CREATE INDEX tasks_ended ON tasks (end_time) WHERE open = 0;`);
  const insert = db.prepare('INSERT INTO tasks VALUES (?, ?, ?, NULL, 1, ?, ?, NULL)');
  const update = db.prepare('UPDATE tasks SET status = ?, open = ?, end_time = ?, record = ? WHERE task_id = ?');
  const body = Buffer.from(JOB_BODY);
  const record = (id: string, status: string) =>
    JSON.stringify({
      taskId: id,
      status,
      requestId: id,
      startedTime: Date.now(),
      method: 'POST',
      url: '/transcode',
      headers: jobEvent(id).headers,
    });
  const insertOne = (id: string) => insert.run(id, 'Enqueued', Date.now(), record(id, 'Enqueued'), body);
  const insertAll = db.transaction((ids: readonly string[]) => {
    for (const id of ids) insertOne(id);
  });
  return {
    db,
    insert: (id: string) => {
      level(synchronous);
      insertOne(id);
    },
    insertAll: (ids: readonly string[]) => {
      level(synchronous);
      insertAll(ids);
    },
    run: (id: string) => {
      level('NORMAL');
      update.run('Running', 1, null, record(id, 'Running'), id);
      update.run('Succeeded', 0, Date.now(), record(id, 'Succeeded'), id);
    },
  };
}
