import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { customRuntimeEnv } from '../src/custom-runtime.js';
import type { FunctionIdentity } from '../src/event.js';
import { type Emulator, startEmulator } from '../src/index.js';

// FC 2.0 sets FC_SERVICE_NAME for a function of a named service (docs/migrating.md sends code that
// read `context.service.name` to it); FC 3.0 has no services and no such variable.

const root = mkdtempSync(join(tmpdir(), 'fc-async-fc2-env-'));
let emulator: Emulator;
const saved = process.env.FC_SERVICE_NAME;

beforeAll(async () => {
  delete process.env.FC_SERVICE_NAME;
  // Read when the module loads, as code that sets up a client at load does.
  writeFileSync(
    join(root, 'two.cjs'),
    `const atLoad = process.env.FC_SERVICE_NAME ?? null;
exports.handler = (req, resp, context) => {
  resp.setHeader('content-type', 'application/json');
  resp.send(JSON.stringify({ atLoad, contextService: context.service.name }));
};
`,
  );
  writeFileSync(
    join(root, 's.yaml'),
    `services:
  two:
    component: fc
    props:
      service: { name: video }
      function: { name: two, codeUri: ./, handler: two.handler, runtime: nodejs20 }
      triggers: [{ name: http, type: http }]
`,
  );
  emulator = await startEmulator({ output: () => {}, port: 0, controlPort: 0, config: join(root, 's.yaml') });
});

afterAll(async () => {
  await emulator?.close();
  rmSync(root, { recursive: true, force: true });
  if (saved === undefined) delete process.env.FC_SERVICE_NAME;
  else process.env.FC_SERVICE_NAME = saved;
});

describe('FC_SERVICE_NAME under fc-async dev', () => {
  it("is the service's name for an FC 2.0 function, as its context's service.name", async () => {
    const res = await fetch(`${emulator.triggerUrl}/`);
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ atLoad: 'video', contextService: 'video' });
  });

  it("is in an FC 2.0 custom runtime's environment, and not in an FC 3.0 one's", () => {
    const fn: FunctionIdentity = {
      name: 'web',
      handler: 'index.handler',
      region: 'cn-hangzhou',
      accountId: '0',
      qualifier: 'LATEST',
      memorySize: 128,
      timeout: 60,
      style: 'fc2',
      serviceName: 'video',
    };
    expect(customRuntimeEnv(fn, 'c-1', 9000).FC_SERVICE_NAME).toBe('video');
    expect(customRuntimeEnv({ ...fn, style: 'fc3' }, 'c-1', 9000).FC_SERVICE_NAME).toBeUndefined();
  });
});
