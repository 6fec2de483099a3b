import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Emulator, startEmulator } from '../src/index.js';
import { waitFor } from './helpers.js';

// An FC 2.0 function (the `fc` component) under fc-async dev gets what FC 2.0 gives it: the body's
// bytes as sent, whatever its charset, and every Set-Cookie it sets under a case-variant name.

const root = mkdtempSync(join(tmpdir(), 'fc-async-fc2-bytes-'));
let emulator: Emulator;

beforeAll(async () => {
  writeFileSync(
    join(root, 'fc2.cjs'),
    `exports.echo = (req, resp) => {
  resp.setHeader('content-type', 'application/json');
  resp.setHeader('set-cookie', 'theme=one; Path=/');
  resp.setHeader('Set-cookie', 'lang=zh; Path=/');
  resp.setHeader('sEt-cookie', 'gone=1');
  resp.deleteHeader('sEt-cookie');
  resp.send(JSON.stringify({ body: req.body.toString('hex') }));
};
`,
  );
  writeFileSync(
    join(root, 's.yaml'),
    `resources:
  two:
    component: fc
    props:
      service: { name: svc }
      function: { name: two, codeUri: ./, handler: fc2.echo, runtime: nodejs20 }
      triggers: [{ name: http, type: http, config: { methods: [POST] } }]
`,
  );
  emulator = await startEmulator({ output: () => {}, port: 0, controlPort: 0, config: join(root, 's.yaml') });
});

afterAll(async () => {
  await emulator?.close();
  rmSync(root, { recursive: true, force: true });
});

describe('an FC 2.0 function under fc-async dev', () => {
  it('gets a text body in another charset byte for byte (it was turned into U+FFFD)', async () => {
    const gbk = Buffer.from('c4e3bac3', 'hex'); // 你好 in GBK
    const res = await fetch(emulator.triggerUrl, {
      method: 'POST',
      headers: { 'content-type': 'text/plain; charset=gbk' },
      body: gbk,
    });
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ body: 'c4e3bac3' });
  });

  it('sends each Set-Cookie it sets under a case-variant name, and none it deleted', async () => {
    const res = await fetch(emulator.triggerUrl, { method: 'POST', body: '' });
    expect(res.headers.getSetCookie().sort()).toEqual(['lang=zh; Path=/', 'theme=one; Path=/']);
  });
});

describe("an FC 2.0 destination ARN's service", () => {
  const dir = mkdtempSync(join(tmpdir(), 'fc-async-fc2-arn-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('is matched too: a function of the same name in another service is not the destination', async () => {
    writeFileSync(
      join(dir, 'fns.cjs'),
      "exports.ok = (req, resp) => resp.send('done');\nexports.sink = (event, context, cb) => cb(null, 'ok');\n",
    );
    const fn = (name: string, handler: string, extra = '') => `  ${name}:
    component: fc
    props:
      service: { name: video }
      function: { name: ${name}, codeUri: ./, handler: fns.${handler}, runtime: nodejs20${extra} }
`;
    writeFileSync(
      join(dir, 's.yaml'),
      `resources:
${fn('web', 'ok', ", asyncConfiguration: { destination: { onSuccess: 'acs:fc:cn-hangzhou:123:services/vidoe/functions/sink' } }")}      triggers: [{ name: http, type: http, config: { methods: [POST] } }]
${fn('sink', 'sink')}`,
    );
    const lines: string[] = [];
    const emulator = await startEmulator({
      output: (text) => lines.push(text),
      port: 0,
      controlPort: 0,
      config: join(dir, 's.yaml'),
      outDir: join(dir, 'out'),
    });
    try {
      expect(lines.join('')).toMatch(/service vidoe is not in the file \(its sink is in service video\)/);
      const res = await fetch(emulator.triggerUrl, { method: 'POST', headers: { 'x-fc-invocation-type': 'Async' } });
      expect(res.status).toBe(202);
      const file = join(dir, 'out', 'web.onSuccess.jsonl');
      await waitFor(
        () =>
          (existsSync(file) && readFileSync(file, 'utf8').includes(res.headers.get('x-fc-request-id') as string)) ||
          undefined,
      );
    } finally {
      await emulator.close();
    }
  });
});
