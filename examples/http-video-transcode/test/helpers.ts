import { mkdtemp, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type DestinationRecord, fcHttpEvent, type Logger } from '@fc-async/core';

/** A POST / event as FC 3.0 hands it to a built-in runtime: a Buffer holding JSON. */
export function fcEvent(body: unknown, headers: Record<string, string> = {}): Buffer {
  const event = fcHttpEvent({
    method: 'POST',
    headers: { host: 'transcode.cn-hangzhou.fcapp.run', 'content-type': 'application/json', ...headers },
    body: typeof body === 'string' ? body : JSON.stringify(body),
    sourceIp: '203.0.113.7',
    accountId: '1234567890',
  });
  return Buffer.from(JSON.stringify(event));
}

export { codecNames as codecs, probeFile as probe } from '../src/probe.js';

export interface LogEntry {
  level: string;
  message: string;
  fields: Record<string, unknown>;
}

/** A logger that keeps its entries. */
export function memoryLogger(): Logger & { entries: LogEntry[] } {
  const entries: LogEntry[] = [];
  const at =
    (level: string) =>
    (message: string, fields: Record<string, unknown> = {}) => {
      entries.push({ level, message, fields });
    };
  return { entries, debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') };
}

/** Polls `check` every 20 ms until it returns a value other than undefined/false, or fails after `timeoutMs`. */
export async function waitFor<T>(
  check: () => T | Promise<T>,
  what: string,
  timeoutMs = 20_000,
): Promise<Exclude<T, false | undefined>> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== undefined && value !== false) return value as Exclude<T, false | undefined>;
    if (Date.now() > deadline) throw new Error(`Timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/** Whether a process with this pid exists (signal 0 only checks). */
export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

export async function readRecords(file: string): Promise<DestinationRecord[]> {
  const text = await readFile(file, 'utf8').catch(() => '');
  return text
    .split('\n')
    .filter(Boolean)
    .map((line) => JSON.parse(line) as DestinationRecord);
}

export function tempDir(prefix: string): Promise<string> {
  return mkdtemp(join(tmpdir(), `hvt-${prefix}-`));
}
