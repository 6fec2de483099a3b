import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { TERMINAL_STATUSES } from '@fc-async/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Emulator } from '../src/index.js';
import { type Answer, exchange, fuzzSeed, Gen, inBatches, jsonOf, LEAK, show, startEchoLogged } from './fuzz-gen.js';
import { waitFor } from './helpers.js';

/**
 * The bad-input rule, fuzzed on the emulator's HTTP trigger over raw sockets: odd request lines,
 * methods and targets, absurd and repeated headers, bad async headers, broken framing. Every
 * request gets a well-formed HTTP answer below 500: the function's, or a 4xx `{ code, message }`
 * without a stack; nothing is logged as an internal error, the trigger keeps answering, and every
 * task it accepted (202) reaches a terminal status. A failure names its seed and case: replay it
 * with `FUZZ_SEED=<seed> npx vitest run test/fuzz-trigger.test.ts`.
 */

const CASES = 600;

const METHODS = ['GET', 'POST', 'PUT', 'DELETE', 'PATCH', 'HEAD', 'OPTIONS', 'get', 'post', 'M-SEARCH', 'PROPFIND'];
const ODD_METHODS = ['FOO', 'TRACE', 'CONNECT', 'G@T', '', 'GET GET', 'Ä', 'P\u0000ST', 'x'.repeat(100)];
const TARGETS = [
  '/',
  '/jobs',
  '/jobs?x=1&x=2',
  '/?q=%ZZ&&=&a=%E0%A4%A&b=%F0%9F%98%80',
  '/%zz/%',
  '/a%00b',
  '/caf\u00e9',
  '/\u0001',
  '/a b',
  '*',
  'http://localhost/abs?x=1',
  'https://evil.example/x',
  '//double//slash',
  'no-slash',
  '/../../etc/passwd',
  `/${'p'.repeat(4100)}`,
  `/?${'a=1&'.repeat(1200)}`,
  '/#frag',
];
const VERSIONS = ['HTTP/1.1', 'HTTP/1.1', 'HTTP/1.1', 'HTTP/1.0', 'HTTP/2.0', 'HTTP/1.1x', 'HTTP/9.9', 'http/1.1', ''];
const ASYNC_HEADERS = [
  'X-Fc-Invocation-Type',
  'X-Fc-Async-Task-Id',
  'X-Fc-Stateful-Async-Invocation-Id',
  'X-Fc-Async-Delay',
  'X-Fc-Retry-Count',
  'X-Fc-Request-Id',
  'X-Fc-Log-Type',
  'x-fc-access-key-secret',
];

/** One fuzz request: its bytes, and whether it is HEAD (an answer without a body). */
interface Case {
  bytes: Buffer;
  head: boolean;
}

/** A header line; `raw` values go out byte for byte (latin1), others as UTF-8. */
function line(name: string, value: string, raw = false): Buffer {
  return Buffer.concat([Buffer.from(`${name}: `, 'latin1'), Buffer.from(value, raw ? 'latin1' : 'utf8'), CRLF]);
}
const CRLF = Buffer.from('\r\n');

/** An async header value: a valid one often enough that tasks are accepted, else an odd one. */
function asyncValue(g: Gen, name: string, taskSerial: () => number): string {
  if (g.chance(0.5)) return g.oddValue();
  if (/invocation-type/i.test(name)) return g.pick(['Async', 'async', ' ASYNC ', 'Sync']);
  if (/task-id|invocation-id/i.test(name)) return `t${g.seed}_${taskSerial()}`;
  // No valid delay above 1 s: every accepted task has to finish within the test.
  if (/delay/i.test(name)) return '1';
  return g.oddValue();
}

function anyCase(g: Gen, taskSerial: () => number): Case {
  // One case in three is well formed but for its values, so that the paths that accept (200, 202)
  // are fuzzed as well as those that refuse.
  const tame = g.chance(0.35);
  const method = tame || g.chance(0.9) ? g.pick(METHODS) : g.pick(ODD_METHODS);
  const target = tame ? g.pick(TARGETS.slice(0, 4)) : g.chance(0.8) ? g.pick(TARGETS.slice(0, 8)) : g.pick(TARGETS);
  const version = tame || g.chance(0.85) ? 'HTTP/1.1' : g.pick(VERSIONS);
  const parts: Buffer[] = [Buffer.from(`${method} ${target} ${version}`.trimEnd(), 'latin1'), CRLF];
  if (tame || g.chance(0.95))
    parts.push(line('Host', tame || g.chance(0.9) ? 'localhost' : g.pick(['', 'a b', 'x'.repeat(300)])));
  if (tame) {
    if (g.chance(0.6)) parts.push(line('X-Fc-Invocation-Type', g.pick(['Async', 'async', ' ASYNC '])));
    if (g.chance(0.4)) parts.push(line('X-Fc-Async-Task-Id', `t${g.seed}_${taskSerial()}`));
    if (g.chance(0.1)) parts.push(line('X-Fc-Async-Delay', '1'));
    if (g.chance(0.3)) parts.push(line(g.pick(['Cookie', 'Content-Type', 'X-Odd']), g.oddValue()));
  } else {
    if (g.chance(0.6)) parts.push(line('X-Fc-Invocation-Type', 'Async'));
    for (let n = g.int(5); n > 0; n--) {
      const name = g.pick(ASYNC_HEADERS);
      parts.push(line(name, asyncValue(g, name, taskSerial), g.chance(0.2)));
    }
    for (let n = g.int(4); n > 0; n--) parts.push(oddHeader(g));
  }
  const body = method === 'GET' || method === 'HEAD' || g.chance(0.2) ? '' : JSON.stringify(g.json(2));
  parts.push(...framing(g, body, tame));
  return { bytes: Buffer.concat(parts), head: method === 'HEAD' };
}

/** A header that tests the parser or the trigger's limits. */
function oddHeader(g: Gen): Buffer {
  switch (g.int(12)) {
    case 0:
      return line('Host', 'localhost');
    case 1:
      return line('X-Big', 'a'.repeat(g.pick([5000, 9000, 17_000])));
    case 2:
      return Buffer.concat(Array.from({ length: g.pick([50, 150, 400]) }, (_, i) => line(`X-H${i}`, 'v')));
    case 3:
      return line('Bad Name', 'x');
    case 4:
      return line('X-Fold', 'a\r\n b');
    case 5:
      return line('X-Raw', '\u00e9\u00ff\u0080', true);
    case 6:
      return line('X-Ctl', g.pick(['a\u0000b', 'a\u007fb', 'a\u0001b']), true);
    case 7:
      return line('Expect', g.pick(['100-continue', 'something-else']));
    case 8:
      return line('Content-Type', g.pick(['application/json', 'text/plain; charset=bogus', 'image/png', '', '\u00e9']));
    case 9:
      return line(g.pick(['Cookie', 'Authorization', 'Proxy-Authorization']), g.oddValue());
    case 10:
      return line('Connection', g.pick(['keep-alive', 'upgrade', 'close, close']));
    default:
      return line(`X-${g.oddValue().replace(/[^A-Za-z0-9-]/g, '') || 'E'}`, g.oddValue());
  }
}

/** The end of the head and the body: a matching Content-Length, chunked, or (unless `tame`) broken framing. */
function framing(g: Gen, body: string, tame: boolean): Buffer[] {
  const bytes = Buffer.from(body, 'utf8');
  const close = line('Connection', 'close');
  switch (tame ? g.pick([2, 9]) : g.int(10)) {
    case 0:
      return [line('Content-Length', g.pick(['abc', '-1', '1.5', '1 1', '99999999999999999999'])), close, CRLF, bytes];
    case 1:
      return [line('Content-Length', String(bytes.length)), line('Content-Length', '3'), close, CRLF, bytes];
    case 2: {
      const chunk = `${bytes.length.toString(16)}\r\n${body}\r\n0\r\n\r\n`;
      return [line('Transfer-Encoding', 'chunked'), close, CRLF, Buffer.from(chunk, 'utf8')];
    }
    case 3:
      return [line('Transfer-Encoding', g.pick(['gzip', 'chunked, chunked', 'identity'])), close, CRLF, bytes];
    case 4:
      return [line('Transfer-Encoding', 'chunked'), close, CRLF, Buffer.from('ZZ\r\nab\r\n0\r\n\r\n')];
    case 5:
      return [
        line('Transfer-Encoding', 'chunked'),
        line('Content-Length', String(bytes.length)),
        close,
        CRLF,
        Buffer.from('0\r\n\r\n'),
      ];
    default:
      return [line('Content-Length', String(bytes.length)), close, CRLF, bytes];
  }
}

/** What breaks the rule in the trigger's answer (to a HEAD request when `head`), or `undefined`. */
function problemOf(answer: Answer | string, head: boolean): string | undefined {
  if (typeof answer === 'string') return answer;
  if (answer.status >= 500) return `status ${answer.status}: ${answer.body.toString('utf8').slice(0, 300)}`;
  if (answer.status < 400) return undefined;
  if (!String(answer.headers['content-type']).startsWith('application/json'))
    return `a ${answer.status} not typed as JSON`;
  // An answer to HEAD has no body (RFC 9110 section 9.3.2): its type is all there is to check.
  if (head) return undefined;
  const text = answer.body.toString('utf8');
  if (LEAK.test(text)) return `a stack or path in the body: ${text.slice(0, 300)}`;
  const body = jsonOf(answer);
  if (!body) return `a ${answer.status} without a JSON body: ${JSON.stringify(text.slice(0, 200))}`;
  const { code, message, ...rest } = body;
  if (typeof code !== 'string' || !/^[A-Z][A-Za-z]+$/.test(code)) return `code ${String(code)}`;
  if (typeof message !== 'string' || !/\S/.test(message)) return `message ${String(message)}`;
  if (Object.keys(rest).length > 0) return `more than { code, message }: ${text.slice(0, 200)}`;
  return undefined;
}

describe('fuzzing the HTTP trigger over raw sockets', () => {
  let emulator: Emulator;
  const lines: Record<string, unknown>[] = [];
  const outDir = mkdtempSync(join(tmpdir(), 'fc-async-fuzz-trigger-'));
  beforeAll(async () => {
    emulator = await startEchoLogged(lines, outDir);
  });
  afterAll(async () => {
    await emulator.close();
    rmSync(outDir, { recursive: true, force: true });
  });

  it(`answers ${CASES} malformed requests with the function's answer or a 4xx { code, message }, and loses no task`, async () => {
    const seed = fuzzSeed(20_260_303);
    const g = new Gen(seed);
    let serial = 0;
    const cases = Array.from({ length: CASES }, () => anyCase(g, () => ++serial));
    const accepted = new Map<string, number>();
    const statuses = new Set<number>();
    const failures: string[] = [];
    await inBatches(CASES, 4, async (i) => {
      const c = cases[i] as Case;
      const answer = await exchange(emulator.triggerUrl, c.bytes, c.head);
      const problem = problemOf(answer, c.head);
      if (problem) failures.push(`seed ${seed}, case ${i}: ${problem}\n  request: ${show(c.bytes)}`);
      if (typeof answer === 'string') return;
      statuses.add(answer.status);
      const taskId = answer.headers['x-fc-async-task-id'];
      if (answer.status === 202 && taskId) accepted.set(taskId, i);
    });
    expect(failures.slice(0, 12)).toEqual([]);
    expect([...statuses]).toEqual(expect.arrayContaining([200, 202, 400]));
    expect(lines.filter((l) => l.level === 'error')).toEqual([]);

    // Still answering, and every accepted task finished.
    expect((await fetch(`${emulator.triggerUrl}/after`)).status).toBe(200);
    for (const [taskId, i] of accepted) {
      const status = await waitFor(async () => {
        const res = await fetch(`${emulator.controlUrl}/2023-03-30/functions/echo/async-tasks/${taskId}`);
        const task = (await res.json()) as { status?: string };
        return task.status && TERMINAL_STATUSES.has(task.status as never) ? task.status : undefined;
      }).catch(() => `not terminal (seed ${seed}, case ${i})`);
      expect(status, `task ${taskId}`).toBe('Succeeded');
    }
  });
});
