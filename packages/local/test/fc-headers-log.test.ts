import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseFcEvent } from '@fc-async/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildContext, buildFcEvent, type FunctionIdentity, type IncomingCall, requestFromCall } from '../src/event.js';
import { type Emulator, loadServerlessConfig, startEmulator } from '../src/index.js';

// FC's common headers about the function's log: `x-fc-service-logproject` and
// `x-fc-service-logstore` carry the s.yaml's `logConfig` (FC 2.0: its service's), and
// `context.service` has them too. A name the emulator does not know (no logConfig, `auto`) is not
// made up: the headers are left out and the context has them empty. `x-fc-version-id` is not sent:
// the one local version is LATEST, which has no version id.

const base: FunctionIdentity = {
  name: 'jobs',
  handler: 'index.handler',
  region: 'cn-hangzhou',
  accountId: '1234',
  qualifier: 'LATEST',
  memorySize: 512,
  timeout: 60,
};
const logged: FunctionIdentity = { ...base, logProject: 'my-project', logStore: 'my-logstore' };
const requestId = '1-64f6d6e7-e01edb1cce58240ed59b59d9';
const now = 1_700_000_000_123;
const call: IncomingCall = {
  method: 'POST',
  url: '/jobs?x=1',
  headers: {
    host: '127.0.0.1:9000',
    'content-type': 'application/json',
    'x-fc-service-logproject': 'forged',
    'x-fc-service-logstore': 'forged',
    'x-fc-version-id': '7',
  },
  body: Buffer.from('{"a":1}'),
};

describe('the log headers of a call', () => {
  it('carries the function’s log project and logstore, after the qualifier, and nothing a client sent', () => {
    const request = requestFromCall(call, logged, requestId, { now });
    const names = Object.keys(request?.headers ?? {});
    expect(names.slice(names.indexOf('x-fc-qualifier'), names.indexOf('x-fc-control-path') + 1)).toEqual([
      'x-fc-qualifier',
      'x-fc-service-logproject',
      'x-fc-service-logstore',
      'x-fc-control-path',
    ]);
    expect(request?.headers['x-fc-service-logproject']).toBe('my-project');
    expect(request?.headers['x-fc-service-logstore']).toBe('my-logstore');
    expect(request?.headers['x-fc-version-id']).toBeUndefined();
  });

  it('leaves them out for a function without a log config, a client’s own included', () => {
    const request = requestFromCall(call, base, requestId, { now });
    expect(request?.headers).not.toHaveProperty('x-fc-service-logproject');
    expect(request?.headers).not.toHaveProperty('x-fc-service-logstore');
    expect(request?.headers).not.toHaveProperty('x-fc-version-id');
  });

  it.each([
    ['with a log config', logged],
    ['without', base],
  ])('builds the same request with and without the event, %s', (_name, fn) => {
    for (const trusted of [false, true]) {
      const direct = requestFromCall(call, fn, requestId, { trusted, now });
      const parsed = parseFcEvent(buildFcEvent(call, fn, requestId, trusted, now));
      expect(direct).toStrictEqual(parsed);
      expect(Object.keys(direct?.headers ?? {})).toEqual(Object.keys(parsed.headers));
    }
  });

  it('puts them in context.service, empty without a log config', () => {
    expect(buildContext(logged, requestId).service).toEqual({
      logProject: 'my-project',
      logStore: 'my-logstore',
      qualifier: 'LATEST',
      versionId: '',
    });
    expect(buildContext(base, requestId).service).toEqual({
      logProject: '',
      logStore: '',
      qualifier: 'LATEST',
      versionId: '',
    });
  });
});

const FC3_HANDLER = `exports.handler = async (event, context) => {
  const e = JSON.parse(event.toString('utf8'));
  const headers = Object.fromEntries(Object.entries(e.headers).map(([k, v]) => [k.toLowerCase(), v]));
  return { statusCode: 200, headers: { 'content-type': 'application/json' }, body: JSON.stringify({ headers, service: context.service }) };
};
`;
const FC2_HANDLER = `exports.http = (req, resp, context) => {
  resp.setHeader('content-type', 'application/json');
  resp.send(JSON.stringify({ headers: req.headers, service: context.service, tracing: context.tracing }));
};
`;

const fc3Function = (name: string, logConfig: string) => `
  ${name}:
    component: fc3
    props:
      functionName: ${name}
      runtime: nodejs18
      code: ./
      handler: fc3.handler
${logConfig}
      triggers:
        - triggerName: http
          triggerType: http
          triggerConfig: { methods: [GET] }`;

describe('logConfig from s.yaml', () => {
  let root: string;
  let emulator: Emulator;
  beforeAll(async () => {
    root = mkdtempSync(join(tmpdir(), 'fc-async-log-headers-'));
    writeFileSync(join(root, 'fc3.cjs'), FC3_HANDLER);
    writeFileSync(join(root, 'fc2.cjs'), FC2_HANDLER);
    const named =
      '      logConfig:\n        project: proj-a\n        logstore: store-a\n        enableRequestMetrics: true';
    // biome-ignore lint/suspicious/noTemplateCurlyInString: Serverless Devs variable syntax
    const unresolved = '      logConfig:\n        project: ${vars.project}\n        logstore: store-b';
    const functions = [
      fc3Function('named', named),
      fc3Function('auto', '      logConfig: auto'),
      fc3Function('none', ''),
      fc3Function('unresolved', unresolved),
    ];
    writeFileSync(join(root, 's.yaml'), `edition: 3.0.0\nname: logs\nresources:${functions.join('')}\n`);
    emulator = await startEmulator({ config: join(root, 's.yaml'), port: 0, controlPort: 0, output: () => {} });
  });
  afterAll(async () => {
    await emulator?.close({ timeoutMs: 1000 });
    rmSync(root, { recursive: true, force: true });
  });

  const seen = async (fn: string) =>
    (await (await fetch(`${emulator.triggerUrl}/${fn}/`)).json()) as {
      headers: Record<string, string>;
      service: Record<string, string>;
    };

  it('sends an fc3 function’s logConfig project and logstore, in the headers and the context', async () => {
    const { headers, service } = await seen('named');
    expect(headers['x-fc-service-logproject']).toBe('proj-a');
    expect(headers['x-fc-service-logstore']).toBe('store-a');
    expect(headers).not.toHaveProperty('x-fc-version-id');
    expect(service).toEqual({ logProject: 'proj-a', logStore: 'store-a', qualifier: 'LATEST', versionId: '' });
  });

  it.each(['auto', 'none', 'unresolved'])('makes up no names for logConfig %s', async (fn) => {
    const { headers, service } = await seen(fn);
    expect(headers).not.toHaveProperty('x-fc-service-logproject');
    expect(headers).not.toHaveProperty('x-fc-service-logstore');
    expect(service).toMatchObject({ logProject: '', logStore: '' });
  });

  it('reads an FC 2.0 service’s logConfig', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'fc-async-log-headers-fc2-'));
    try {
      writeFileSync(join(dir, 'fc2.cjs'), FC2_HANDLER);
      writeFileSync(
        join(dir, 's.yaml'),
        `edition: 1.0.0
services:
  web:
    component: fc
    props:
      service:
        name: svc
        logConfig: { project: proj-2, logstore: store-2 }
      function: { name: web, codeUri: ./, handler: fc2.http, runtime: nodejs18 }
      triggers: [{ name: http, type: http }]
`,
      );
      const config = await loadServerlessConfig(join(dir, 's.yaml'));
      expect(config.functions[0]?.logConfig).toEqual({ project: 'proj-2', logstore: 'store-2' });
      const fc2 = await startEmulator({ config: join(dir, 's.yaml'), port: 0, controlPort: 0, output: () => {} });
      try {
        const { headers, service, tracing } = (await (await fetch(`${fc2.triggerUrl}/`)).json()) as {
          headers: Record<string, string>;
          service: Record<string, string>;
          tracing: unknown;
        };
        expect(headers['x-fc-service-logproject']).toBe('proj-2');
        expect(headers['x-fc-service-logstore']).toBe('store-2');
        // FC 2.0's context adds the service's name and `tracing` (empty: no tracing service locally).
        expect(service).toEqual({
          name: 'svc',
          logProject: 'proj-2',
          logStore: 'store-2',
          qualifier: 'LATEST',
          versionId: '',
        });
        expect(tracing).toEqual({ openTracingSpanContext: '', openTracingSpanBaggages: {}, jaegerEndpoint: '' });
      } finally {
        await fc2.close({ timeoutMs: 1000 });
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('refuses a logConfig that is neither auto nor a mapping, naming it', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'fc-async-log-headers-bad-'));
    try {
      writeFileSync(join(dir, 'fc3.cjs'), FC3_HANDLER);
      writeFileSync(
        join(dir, 's.yaml'),
        `edition: 3.0.0\nresources:${fc3Function('bad', '      logConfig: [proj, store]')}\n`,
      );
      await expect(loadServerlessConfig(join(dir, 's.yaml'))).rejects.toMatchObject({
        code: 'InvalidConfig',
        message: expect.stringContaining('resources.bad.props.logConfig must be auto or a mapping'),
      });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
