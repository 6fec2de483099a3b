import { mkdtempSync, rmSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { createEmulatorLog } from '../src/log.js';
import { startEcho } from './helpers.js';

// A client of the control plane chooses the path of an InvokeFunction HTTP event and the ARN of a
// destination: with raw CR, LF or ESC in them, a text log line could be forged or the terminal driven.
const FORGED = '/x\r\n12:00:00.000 echo           Sync  200       GET /admin\u001b[2J\u009b31m';

/** C0 and C1 control characters and DEL, tab and line feed aside. */
// biome-ignore lint/suspicious/noControlCharactersInRegex: finding control characters is the point.
const CONTROL = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f]/;

/** The text written, split into lines (the last, empty after the final newline, dropped). */
const linesOf = (chunks: string[]) => chunks.join('').split('\n').slice(0, -1);

describe('text log lines escape control characters', () => {
  it('keeps an invocation, a notice and a logged field on one line each, without escape codes', () => {
    const chunks: string[] = [];
    const log = createEmulatorLog({ write: (text) => chunks.push(text) });
    log.invocation({
      function: 'echo',
      requestId: '1-x',
      type: 'Sync',
      status: 200,
      method: 'INVOKE',
      path: FORGED,
      durationMs: 1,
      via: 'api',
    });
    log.notice(`echo onSuccess → acs:mns:x:1:/queues/q${FORGED}`);
    log.logger.warn('request rejected', { message: `bad ${FORGED}` });
    log.flush();
    const lines = linesOf(chunks);
    expect(lines).toHaveLength(3);
    for (const line of lines) {
      expect(line).toMatch(/^\d{2}:\d{2}:\d{2}\.\d{3} /);
      expect(line).not.toMatch(CONTROL);
    }
    expect(lines[0]).toContain('INVOKE /x\\r\\n12:00:00.000 echo');
    expect(lines[0]).toContain('\\u001b[2J\\u009b31m');
  });

  it('leaves the JSON format to JSON escaping (the value is kept exactly)', () => {
    const chunks: string[] = [];
    const log = createEmulatorLog({ format: 'json', write: (text) => chunks.push(text) });
    log.notice(`arn ${FORGED}`);
    log.flush();
    const lines = linesOf(chunks);
    expect(lines).toHaveLength(1);
    expect(JSON.parse(lines[0] as string).message).toBe(`arn ${FORGED}`);
  });
});

describe('the emulator log under a hostile control-plane client', () => {
  const outDir = mkdtempSync(join(tmpdir(), 'fc-async-security-log-'));
  afterAll(() => rmSync(outDir, { recursive: true, force: true }));

  it('prints an InvokeFunction event path and a destination ARN without forged lines', async () => {
    const chunks: string[] = [];
    const emulator = await startEcho({ outDir, output: (text) => chunks.push(text) });
    try {
      const api = `${emulator.controlUrl}/2023-03-30/functions/echo`;
      const event = {
        version: 'v1',
        rawPath: FORGED,
        body: '',
        isBase64Encoded: false,
        headers: {},
        queryParameters: {},
        requestContext: {
          http: { method: 'GET', path: '/x', protocol: 'HTTP/1.1', sourceIp: '127.0.0.1', userAgent: '' },
        },
      };
      const invoked = await fetch(`${api}/invocations`, { method: 'POST', body: JSON.stringify(event) });
      expect(invoked.status).toBe(200);
      await invoked.arrayBuffer();
      const put = await fetch(`${api}/async-invoke-config`, {
        method: 'PUT',
        body: JSON.stringify({
          destinationConfig: { onFailure: { destination: `acs:mns:cn-hangzhou:1:/queues/q${FORGED}` } },
        }),
      });
      expect(put.status).toBe(200);
      await put.arrayBuffer();
    } finally {
      await emulator.close({ timeoutMs: 1000 });
    }
    const text = chunks.join('');
    expect(text).toContain('INVOKE /x\\r\\n12:00:00.000');
    expect(text).toContain('/queues/q/x\\r\\n12:00:00.000');
    expect(text).not.toMatch(CONTROL);
    // Every line is the banner's or starts with a time: none starts with the forged text.
    expect(linesOf(chunks).filter((line) => line.startsWith('12:00:00.000'))).toEqual([]);
  });

  it('prints a trigger header value with a C1 control (CSI, byte 0x9b) escaped', async () => {
    const chunks: string[] = [];
    const emulator = await startEcho({ outDir, output: (text) => chunks.push(text) });
    try {
      const { hostname, port } = new URL(emulator.triggerUrl);
      const request = Buffer.concat([
        Buffer.from('GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\nX-Fc-Invocation-Type: A'),
        Buffer.from([0x9b, 0x32, 0x4a]),
        Buffer.from('\r\n\r\n'),
      ]);
      const answer = await new Promise<string>((resolve, reject) => {
        const socket = connect(Number(port), hostname, () => socket.end(request));
        let text = '';
        socket.on('data', (data) => {
          text += data;
        });
        socket.on('close', () => resolve(text));
        socket.on('error', reject);
      });
      expect(answer).toMatch(/^HTTP\/1\.1 400 /);
    } finally {
      await emulator.close({ timeoutMs: 1000 });
    }
    const text = chunks.join('');
    expect(text).toContain('\\u009b2J');
    expect(text).not.toMatch(CONTROL);
  });
});
