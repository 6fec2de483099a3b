import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { startEmulator } from '../src/index.js';
import { waitFor } from './helpers.js';

// FC gives a sync call and an async attempt the same context. Under `fc-async dev` an attempt of an
// app (or of an exported createHandler(app)) ran with an invocation rebuilt from the task's ARN:
// the default account id 0 (and a region named `local`) read as "none", and no memoryMB or versionId.

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

const url = (pkg: string) => JSON.stringify(import.meta.resolve(pkg));

/** The invocation fields a sync call and an attempt share: all but the call's own ids and kind. */
const ROUTE = (log: string) => `(req, res) => {
  const { functionName, region, accountId, qualifier, versionId, memoryMB, timeoutSeconds, instanceId, type } = getInvocation(req);
  appendFileSync(${JSON.stringify(log)}, JSON.stringify({ type, invocation: { functionName, region, accountId, qualifier, versionId: versionId ?? null, memoryMB: memoryMB ?? null, timeoutSeconds: timeoutSeconds ?? null, instanceId: instanceId ?? null } }) + '\\n');
  res.json({ ok: true });
}`;

const ENTRIES = {
  'an Express app': (log: string) => `import express from ${url('express')};
import { getInvocation } from ${url('@fc-async/express')};
import { appendFileSync } from 'node:fs';
const app = express();
app.post('/job', ${ROUTE(log)});
export default app;
`,
  'createHandler(app)': (log: string) => `import express from ${url('express')};
import { createHandler, getInvocation } from ${url('@fc-async/express')};
import { appendFileSync } from 'node:fs';
const app = express();
app.post('/job', ${ROUTE(log)});
export const handler = createHandler(app);
`,
};

describe('fc-async dev: an async attempt has the invocation a sync call has', () => {
  for (const [name, source] of Object.entries(ENTRIES)) {
    for (const region of [undefined, 'local']) {
      it(`${name}, region ${region ?? 'by default'}, account id 0: the same accountId, region, memoryMB, versionId`, async () => {
        const dir = mkdtempSync(join(tmpdir(), 'fc-async-local-attempt-invocation-'));
        cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
        const log = join(dir, 'seen.jsonl');
        const file = join(dir, 'app.mjs');
        writeFileSync(file, source(log));
        const emulator = await startEmulator({
          entry: file,
          name: 'orders',
          port: 0,
          controlPort: 0,
          ...(region ? { region } : {}),
          output: () => {},
        });
        cleanups.push(() => emulator.close({ timeoutMs: 2000 }));
        const sync = await fetch(`${emulator.triggerUrl}/job`, { method: 'POST', body: '{}' });
        expect(sync.status).toBe(200);
        const accepted = await fetch(`${emulator.triggerUrl}/job`, {
          method: 'POST',
          headers: { 'x-fc-invocation-type': 'Async' },
          body: '{}',
        });
        expect(accepted.status).toBe(202);
        const seen = await waitFor(() => {
          const lines = readFileSync(log, 'utf8').trim().split('\n');
          return lines.length === 2 ? lines.map((line) => JSON.parse(line)) : undefined;
        });
        expect(seen.map((s) => s.type)).toEqual(['Sync', 'Async']);
        expect(seen[0].invocation.accountId).toBe('0');
        expect(seen[0].invocation.memoryMB).toBe(128);
        expect(seen[1].invocation).toEqual(seen[0].invocation);
      });
    }
  }
});
