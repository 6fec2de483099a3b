import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DEFAULT_REDACTED_HEADERS } from '@fc-async/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Emulator, loadServerlessConfig, startEmulator } from '../src/index.js';
import { PKG, runCli, waitFor } from './helpers.js';

// Claims of docs/local-dev.md that a user relies on and that no other suite pins.

const doc = readFileSync(join(PKG, '../../docs/local-dev.md'), 'utf8');

/** `--flag` → its default as the docs' flag table shows it (backticks and quotes removed), '' for none. */
function documentedFlags(): Map<string, string> {
  const table = doc.slice(doc.indexOf('| flag | default | meaning |'), doc.indexOf('Environment: '));
  const flags = new Map<string, string>();
  for (const m of table.matchAll(/^\| `(--[a-z-]+)[^`]*` \|([^|]*)\|/gm)) {
    flags.set(m[1] as string, (m[2] as string).trim().replace(/`/g, ''));
  }
  return flags;
}

/**
 * `--flag` → the default commander applies, as `fc-async dev --help` prints it (a number or a
 * quoted string), '' for none. Defaults told in words (`--name`: the entry file name) are not values.
 */
function helpFlags(help: string): Map<string, string> {
  const flags = new Map<string, string>();
  const options = help.slice(help.indexOf('Options:'));
  // One entry per option: its first line starts with `  --`; wrapped lines are indented further.
  for (const entry of options.split(/\n(?= {2}-)/).slice(1)) {
    const text = entry.replace(/\s+/g, ' ');
    const name = /--[a-z-]+/.exec(text)?.[0] as string;
    const fallback = /default: (\d+|"[^"]*")\)/.exec(text)?.[1] ?? '';
    flags.set(name, fallback.replace(/"/g, ''));
  }
  flags.delete('--help');
  return flags;
}

/** The text of one option's entry in `--help` (its lines joined), '' if it is not listed. */
function helpEntry(help: string, flag: string): string {
  const options = help.slice(help.indexOf('Options:'));
  const entry = options.split(/\n(?= {2}-)/).find((e) => e.replace(/\s+/g, ' ').includes(` ${flag} `));
  return (entry ?? '').replace(/\s+/g, ' ');
}

/** Expects `text` to name every header always redacted (cookies and FC's credentials as groups). */
function namesEveryDefaultRedactedHeader(text: string): void {
  for (const name of DEFAULT_REDACTED_HEADERS) {
    const said = name.endsWith('cookie') ? /\bcookies\b/ : name.startsWith('x-fc-') ? /FC['’]s credential/ : name;
    expect({
      name,
      named: typeof said === 'string' ? new RegExp(`(^|[^-\\w])${said}\\b`).test(text) : said.test(text),
    }).toEqual({
      name,
      named: true,
    });
  }
}

describe('docs/local-dev.md: the flag table is `fc-async dev --help`', () => {
  let help: Map<string, string>;
  let helpText: string;
  beforeAll(async () => {
    const run = await runCli(['dev', '--help'], { env: { COLUMNS: '100' } });
    expect(run.code).toBe(0);
    helpText = run.stdout;
    help = helpFlags(run.stdout);
  });

  it('names, for --redact-header, every header kept out of task records anyway (help and docs)', () => {
    const row = /^\| `--redact-header[^\n]*/m.exec(doc)?.[0] ?? '';
    namesEveryDefaultRedactedHeader(helpEntry(helpText, '--redact-header'));
    namesEveryDefaultRedactedHeader(row.replace(/`/g, ''));
  });

  it('lists exactly the flags the command takes', () => {
    expect([...documentedFlags().keys()].sort()).toEqual([...help.keys()].sort());
  });

  it('gives each flag the default the command applies', () => {
    const documented = documentedFlags();
    const withDefault = [...help].filter(([, fallback]) => fallback !== '');
    expect(withDefault.length).toBeGreaterThanOrEqual(12);
    for (const [flag, fallback] of withDefault) {
      expect({ flag, default: documented.get(flag) }).toEqual({ flag, default: fallback });
    }
  });
});

describe('docs/local-dev.md: s.yaml variables', () => {
  it('resolves every variable form the page lists', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'fc-async-docs-vars-'));
    writeFileSync(join(dir, 'index.mjs'), 'export const handler = () => 1;\n');
    const file = join(dir, 's.yaml');
    writeFileSync(
      file,
      `edition: 3.0.0
vars:
  stage: beta
resources:
  api:
    component: fc3
    props:
      functionName: api
      code: ./
      handler: index.handler
      memorySize: 256
      environmentVariables:
        VARS: \${vars.stage}
        ENV_CALL: \${env(DOCS_A)}
        ENV_DEFAULT: \${env('DOCS_MISSING', 'fallback')}
        ENV_DOT: \${env.DOCS_A}
        ACCOUNT: \${config('AccountID')}
        REGION: \${config('Region')}
        SELF: \${this.props.functionName}
        OTHER: \${worker.props.functionName}
  worker:
    component: fc3
    props:
      functionName: worker
      code: ./
      handler: index.handler
      environmentVariables:
        KEPT: \${vpc.outputs.id}
`,
    );
    const config = await loadServerlessConfig(file, {
      env: { DOCS_A: 'from-env' },
      accountId: '1234',
      region: 'cn-shanghai',
    });
    expect(config.functions[0]?.environmentVariables).toEqual({
      VARS: 'beta',
      ENV_CALL: 'from-env',
      ENV_DEFAULT: 'fallback',
      ENV_DOT: 'from-env',
      ACCOUNT: '1234',
      REGION: 'cn-shanghai',
      SELF: 'api',
      OTHER: 'worker',
    });
    // Others are kept as written, with a notice.
    expect(config.functions[1]?.environmentVariables).toEqual({ KEPT: `\${vpc.outputs.id}` });
    expect(config.warnings).toEqual([`\${vpc.outputs.id} is not resolved locally and kept as written`]);
  });
});

describe('docs/local-dev.md: what FC sets before the module is imported', () => {
  const names = [
    'FC_FUNCTION_NAME',
    'FC_FUNCTION_HANDLER',
    'FC_FUNCTION_MEMORY_SIZE',
    'FC_ACCOUNT_ID',
    'FC_QUALIFIER',
    'FC_INSTANCE_ID',
    'FC_REGION',
    'DOCS_OWN',
  ];
  const saved = Object.fromEntries(names.map((n) => [n, process.env[n]]));
  let emulator: Emulator;
  let dir: string;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'fc-async-docs-env-'));
    // The module reads the variables when it is imported, as an SDK client set up at load would.
    writeFileSync(
      join(dir, 'index.mjs'),
      `const seen = Object.fromEntries(${JSON.stringify(names)}.map((n) => [n, process.env[n] ?? null]));
export const handler = async () => ({ statusCode: 200, headers: { 'content-type': 'application/json' }, body: JSON.stringify(seen) });
`,
    );
    writeFileSync(
      join(dir, 's.yml'),
      `edition: 3.0.0
resources:
  envfn:
    component: fc3
    props:
      functionName: envfn
      code: ./
      handler: index.handler
      memorySize: 256
      environmentVariables:
        DOCS_OWN: mine
      triggers:
        - triggerName: http
          triggerType: http
          triggerConfig: { methods: [GET] }
`,
    );
    delete process.env.FC_REGION;
    // No entry: the s.yml of the working folder is served.
    emulator = await startEmulator({ cwd: dir, port: 0, controlPort: 0, accountId: '4321', output: () => {} });
  });
  afterAll(async () => {
    await emulator?.close();
    for (const [name, value] of Object.entries(saved)) {
      if (value === undefined) delete process.env[name];
      else process.env[name] = value;
    }
  });

  it('sets FC’s variables and the function’s own, and leaves FC_REGION unset', async () => {
    const res = await fetch(`${emulator.triggerUrl}/`);
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({
      FC_FUNCTION_NAME: 'envfn',
      FC_FUNCTION_HANDLER: 'index.handler',
      FC_FUNCTION_MEMORY_SIZE: '256',
      FC_ACCOUNT_ID: '4321',
      FC_QUALIFIER: 'LATEST',
      FC_INSTANCE_ID: expect.stringMatching(/\S/),
      FC_REGION: null,
      DOCS_OWN: 'mine',
    });
  });

  it('accepts x-fc-log-type: Tail on InvokeFunction and ignores it', async () => {
    const res = await fetch(`${emulator.controlUrl}/2023-03-30/functions/envfn/invocations`, {
      method: 'POST',
      headers: { 'x-fc-invocation-type': 'Sync', 'x-fc-log-type': 'Tail' },
      body: JSON.stringify({ rawPath: '/', requestContext: { http: { method: 'GET' } } }),
    });
    expect(res.status).toBe(200);
    expect(res.headers.get('x-fc-log-result')).toBeNull();
    expect(await res.json()).toMatchObject({ FC_FUNCTION_NAME: 'envfn' });
  });
});

describe('an entry that is an fc-async handler', () => {
  it('is served with its own async options (retries, destinations), as docs/local-dev.md says', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'fc-async-own-'));
    const records = join(dir, 'records.jsonl');
    writeFileSync(
      join(dir, 'own.mjs'),
      // The core by URL: a module in the temp folder would not find the workspace's packages.
      `import { createFcHandler, jsonlDestination } from ${JSON.stringify(import.meta.resolve('@fc-async/core'))};
export const handler = createFcHandler((req, res) => { res.statusCode = 500; res.end(); }, {
  async: { maxAsyncRetryAttempts: 0 },
  destinations: { onFailure: jsonlDestination(${JSON.stringify(records)}) },
});
`,
    );
    const emulator = await startEmulator({ entry: join(dir, 'own.mjs'), port: 0, controlPort: 0, output: () => {} });
    try {
      const res = await fetch(`${emulator.triggerUrl}/`, {
        method: 'POST',
        headers: { 'x-fc-invocation-type': 'Async', 'x-fc-async-task-id': 'own_1' },
      });
      expect(res.status).toBe(202);
      const task = await waitFor(async () => {
        const url = `${emulator.controlUrl}/2023-03-30/functions/own/async-tasks/own_1`;
        const t = (await (await fetch(url)).json()) as { destinationStatus?: string };
        return t.destinationStatus ? t : undefined;
      });
      expect(task).toMatchObject({ status: 'Failed', alreadyRetriedTimes: 0, destinationStatus: 'Succeeded' });
      expect(readFileSync(records, 'utf8')).toContain('"requestId"');
    } finally {
      await emulator.close();
    }
  });
});
