import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { once } from 'node:events';
import { join, resolve } from 'node:path';
import { createInterface, type Interface } from 'node:readline';
import {
  checkDestinationSignature,
  type Destination,
  type DestinationRecord,
  httpDestination,
  signDestinationPayload,
} from '@fc-async/core';
import { afterEach, describe, expect, it } from 'vitest';

// docs/destinations.md quotes src/verify_webhook.py as the receiver of a team that writes Python:
// it must verify what httpDestination signs exactly as verifyDestinationSignature does, and answer
// what the docs say makes fc-async stop or retry. CI installs python3 (.ci/apt-packages).

const dir = resolve(import.meta.dirname, '../src');
const script = join(dir, 'verify_webhook.py');

type Case = { body: Buffer; header: string | undefined; secrets: string[]; now: number };

/** Python's `check_signature` for each case, in one python3 run: the reason, or null when it passes. */
function pythonReasons(cases: Case[]): (string | null)[] {
  const input = JSON.stringify(
    cases.map((c) => ({ body: c.body.toString('base64'), header: c.header ?? null, secrets: c.secrets, now: c.now })),
  );
  const program = [
    'import base64, json, sys',
    `sys.path.insert(0, ${JSON.stringify(dir)})`,
    'from verify_webhook import check_signature',
    'cases = json.load(sys.stdin)',
    'print(json.dumps([check_signature(base64.b64decode(c["body"]), c["header"], c["secrets"], now=c["now"] / 1000) for c in cases]))',
  ].join('\n');
  return JSON.parse(execFileSync('python3', ['-B', '-c', program], { input, encoding: 'utf8' })) as (string | null)[];
}

const record = (requestId: string): DestinationRecord => ({
  timestamp: 1764350400123,
  requestContext: {
    requestId,
    functionArn: 'acs:fc:cn-hangzhou:1234567890:functions/render',
    condition: '',
    approximateInvokeCount: 1,
  },
  requestPayload: JSON.stringify({ method: 'POST', url: '/render', headers: {}, body: '杭州', isBase64Encoded: false }),
  responseContext: { statusCode: 200, functionError: '' },
  responsePayload: '{"city":"杭州 ✓"}',
});

describe('src/verify_webhook.py checks signatures as verifyDestinationSignature does', () => {
  it('gives the same verdict and reason for each kind of header', () => {
    const t = 1764350400;
    const now = t * 1000 + 1500;
    const body = Buffer.from(JSON.stringify(record('1-6929f3a1-0c5e8e2b7d4a1f3e9b6c2d8a')));
    const rotated = signDestinationPayload(body, ['new-secret', 'old-secret'], { timestamp: t });
    const v1 = rotated.split(',')[1] as string;
    const cases: Case[] = [
      { body, header: signDestinationPayload(body, 'new-secret', { timestamp: t }), secrets: ['new-secret'], now },
      // Rotation: the sender signs with both, a receiver still on the old one alone accepts.
      { body, header: rotated, secrets: ['old-secret'], now },
      {
        body,
        header: signDestinationPayload(body, 'old-secret', { timestamp: t }),
        secrets: ['new-secret', 'old-secret'],
        now,
      },
      { body, header: rotated, secrets: ['other'], now },
      { body: Buffer.concat([body, Buffer.from(' ')]), header: rotated, secrets: ['new-secret'], now },
      { body, header: rotated, secrets: ['new-secret'], now: (t + 301) * 1000 },
      { body, header: rotated, secrets: ['new-secret'], now: (t - 301) * 1000 },
      { body, header: undefined, secrets: ['new-secret'], now },
      { body, header: '  ', secrets: ['new-secret'], now },
      { body, header: `t=${t}`, secrets: ['new-secret'], now },
      { body, header: `t=${t},v0=abc`, secrets: ['new-secret'], now },
      { body, header: `t=${t}, ${v1} ,scheme2=xyz`, secrets: ['new-secret'], now },
      { body, header: `t=x,${v1}`, secrets: ['new-secret'], now },
      { body, header: `t=${t},t=${t},${v1}`, secrets: ['new-secret'], now },
      { body, header: `${v1},=1,t=${t}`, secrets: ['new-secret'], now },
      { body, header: v1, secrets: ['new-secret'], now },
      { body, header: `t=${t},${v1.toUpperCase().replace('V1', 'v1')}`, secrets: ['new-secret'], now },
      // Bytes that are not UTF-8 are signed and checked as bytes.
      {
        body: Buffer.from([0xff, 0xfe, 0x00, 0x80]),
        header: signDestinationPayload(Buffer.from([0xff, 0xfe, 0x00, 0x80]), 'k', { timestamp: t }),
        secrets: ['k'],
        now,
      },
    ];
    const node = cases.map((c) => {
      const check = checkDestinationSignature(c.body, c.header, c.secrets, { now: c.now });
      return check.ok ? null : check.reason;
    });
    expect(node).toEqual([
      null,
      null,
      null,
      'signature_mismatch',
      'signature_mismatch',
      'timestamp_out_of_tolerance',
      'timestamp_out_of_tolerance',
      'missing_header',
      'missing_header',
      'no_signature',
      'no_signature',
      null,
      'malformed_header',
      'malformed_header',
      'malformed_header',
      'malformed_header',
      null,
      null,
    ]);
    expect(pythonReasons(cases)).toEqual(node);
  });
});

describe('src/verify_webhook.py answers httpDestination as docs/destinations.md says', () => {
  let receiver: ChildProcess | undefined;
  afterEach(async () => {
    if (receiver && receiver.exitCode === null) {
      receiver.kill();
      await once(receiver, 'exit');
    }
    receiver = undefined;
  });

  /** The error a delivery fails with, or undefined when it was taken. */
  async function refusal(destination: Destination, input: DestinationRecord): Promise<unknown> {
    try {
      await destination(input);
      return undefined;
    } catch (error) {
      return error;
    }
  }

  async function start(secrets: string): Promise<{ url: string; handled: string[]; lines: Interface }> {
    const child = spawn('python3', [script], {
      env: { ...process.env, WEBHOOK_SECRETS: secrets, PORT: '0' },
      stdio: ['ignore', 'pipe', 'ignore'],
    });
    receiver = child;
    const lines = createInterface({ input: child.stdout as NodeJS.ReadableStream });
    const handled: string[] = [];
    const port = await new Promise<string>((resolvePort, reject) => {
      child.once('exit', (code) => reject(new Error(`verify_webhook.py exited with ${code}`)));
      lines.on('line', (line) => {
        if (line.startsWith('listening ')) resolvePort(line.slice('listening '.length));
        else handled.push(line);
      });
    });
    return { url: `http://127.0.0.1:${port}/fc-async`, handled, lines };
  }

  it('takes a signed record once, takes its copy without handling it again, and refuses a wrong secret for good', async () => {
    const { url, handled, lines } = await start('new-secret,old-secret');
    const id = '1-6929f3a1-0c5e8e2b7d4a1f3e9b6c2d8a';
    // The sender still on the old secret, and one already on both: each is taken (a 2xx).
    await httpDestination(url, { secret: 'old-secret' })(record(id));
    await httpDestination(url, { secret: ['new-secret', 'old-secret'] })(record(id));
    const wrong = await refusal(
      httpDestination(url, { secret: 'wrong-secret' }),
      record('1-6929f3a1-000000000000000000000002'),
    );
    expect(wrong).toMatchObject({ code: 'DestinationHttpError', status: 401, retryable: false });
    const unsigned = await refusal(httpDestination(url), record('1-6929f3a1-000000000000000000000003'));
    expect(unsigned).toMatchObject({ status: 401, retryable: false });
    // Handled once: the copy was taken as a duplicate, the refused ones never reached handle().
    // Every line it printed is read once its output closes.
    receiver?.kill();
    await once(lines, 'close');
    expect(handled).toEqual([`succeeded ${id}`]);
  });
});
