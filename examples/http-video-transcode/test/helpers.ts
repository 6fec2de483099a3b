import { mkdtemp, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { DestinationRecord, Logger } from '@fc-async/core';

/** A POST / event as FC 3.0 hands it to a built-in runtime: a Buffer holding JSON. */
export function fcEvent(body: unknown, headers: Record<string, string> = {}): Buffer {
  const now = Date.now();
  return Buffer.from(
    JSON.stringify({
      version: 'v1',
      rawPath: '/',
      body: typeof body === 'string' ? body : JSON.stringify(body),
      isBase64Encoded: false,
      headers: { 'Content-Type': 'application/json', ...headers },
      queryParameters: {},
      requestContext: {
        accountId: '1234567890',
        domainName: 'transcode.cn-hangzhou.fcapp.run',
        domainPrefix: 'transcode',
        http: { method: 'POST', path: '/', protocol: 'HTTP/1.1', sourceIp: '203.0.113.7', userAgent: 'test' },
        requestId: `1-${Math.floor(now / 1000).toString(16)}-${Math.random().toString(16).slice(2, 14).padEnd(24, '0')}`,
        time: new Date(now).toISOString(),
        timeEpoch: String(now),
      },
    }),
  );
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
