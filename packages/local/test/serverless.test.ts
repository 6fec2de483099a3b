import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadServerlessConfig } from '../src/index.js';
import { example, fixture } from './helpers.js';

const dir = mkdtempSync(join(tmpdir(), 'fc-async-yaml-'));
writeFileSync(join(dir, 'index.js'), 'exports.handler = () => 1;\n');
let n = 0;
function yaml(text: string): string {
  const file = join(dir, `s${++n}.yaml`);
  writeFileSync(file, text);
  return file;
}

const fc3 = (props: string) =>
  `edition: 3.0.0\nresources:\n  f:\n    component: fc3\n    props:\n      functionName: f\n      code: ./\n      handler: index.handler\n${props}`;

describe('loadServerlessConfig: FC 3.0 (fc3)', () => {
  it('reads functions, their HTTP trigger, async config and resolves variables', async () => {
    const config = await loadServerlessConfig(example('jobs/s.yaml'), {
      accountId: '42',
      env: { DEST_LOG: '/tmp/d.jsonl' },
    });
    expect(config.warnings).toEqual([]);
    expect(config.functions.map((f) => f.name)).toEqual(['jobs', 'dest-succ', 'dest-fail']);
    const [jobs, succ] = config.functions;
    expect(jobs).toMatchObject({
      file: example('jobs/app.ts'),
      exportName: 'handler',
      handler: 'app.handler',
      http: { methods: ['GET', 'POST'] },
      style: 'fc3',
      region: 'cn-hangzhou',
      memorySize: 512,
      timeout: 60,
      asyncConfig: {
        maxAsyncEventAgeInSeconds: 18000,
        maxAsyncRetryAttempts: 2,
        asyncTask: true,
        destinationConfig: {
          onSuccess: { destination: 'acs:fc:cn-hangzhou:42:functions/dest-succ' },
          onFailure: { destination: 'acs:fc:cn-hangzhou:42:functions/dest-fail' },
        },
      },
    });
    expect(succ).toMatchObject({
      file: example('jobs/dest.mjs'),
      exportName: 'succ',
      http: undefined,
      environmentVariables: { DEST_LOG: '/tmp/d.jsonl' },
    });
  });

  it('keeps variables it cannot resolve, with a warning, and skips other components', async () => {
    // biome-ignore lint/suspicious/noTemplateCurlyInString: Serverless Devs variable syntax
    const file = yaml(`${fc3('      description: ${vpc.outputs.id}\n')}  bucket:\n    component: oss\n    props: {}\n`);
    const config = await loadServerlessConfig(file);
    expect(config.functions.map((f) => f.name)).toEqual(['f']);
    // biome-ignore lint/suspicious/noTemplateCurlyInString: Serverless Devs variable syntax
    expect(config.warnings).toEqual(['${vpc.outputs.id} is not resolved locally and kept as written']);
  });

  it('accepts statefulInvocation as asyncTask and function props nested under `function`', async () => {
    const file = yaml(
      'resources:\n  f:\n    component: devsapp/fc3\n    props:\n      function:\n        functionName: g\n        code: ./\n        handler: index.handler\n      asyncInvokeConfig:\n        statefulInvocation: true\n',
    );
    const [fn] = (await loadServerlessConfig(file)).functions;
    expect(fn).toMatchObject({ name: 'g', asyncConfig: { asyncTask: true } });
  });
});

describe('loadServerlessConfig: FC 2.0 (fc)', () => {
  it('reads services, asyncConfiguration and its destination ARNs, and skips other runtimes', async () => {
    const config = await loadServerlessConfig(fixture('fc2/s.yaml'));
    expect(config.functions.map((f) => [f.name, f.style, Boolean(f.http)])).toEqual([
      ['web', 'fc2', true],
      ['worker', 'fc2', false],
    ]);
    expect(config.functions[0]?.asyncConfig).toEqual({
      maxAsyncRetryAttempts: 1,
      maxAsyncEventAgeInSeconds: 600,
      asyncTask: true,
      destinationConfig: { onFailure: { destination: 'acs:fc:cn-shanghai:123:services/svc/functions/worker' } },
    });
    expect(config.functions[0]?.region).toBe('cn-shanghai');
    expect(config.warnings).toEqual(['python: skipped: runtime python3.10 is not a Node.js runtime']);
  });
});

describe('loadServerlessConfig: malformed files', () => {
  it.each([
    ['invalid YAML', 'resources: [a\n', /invalid YAML/],
    ['a list at the top', '- a\n', /expected a mapping at the top level/],
    ['no resources', 'edition: 3.0.0\n', /has no `resources` mapping/],
    ['a resource that is not a mapping', 'resources:\n  f: 3\n', /resources\.f must be a mapping/],
    [
      'props that are not a mapping',
      'resources:\n  f:\n    component: fc3\n    props: x\n',
      /resources\.f\.props must be a mapping/,
    ],
    [
      'a bad function name',
      fc3('').replace('functionName: f', 'functionName: 9f'),
      /functionName must be an FC function name/,
    ],
    ['a handler without an export', fc3('').replace('index.handler', 'index'), /handler must look like file\.export/],
    [
      'a handler file that is missing',
      fc3('').replace('index.handler', 'main.handler'),
      /none of main\.js, .*main\.cts exists/,
    ],
    [
      "FC 2.0's codeUri in an fc3 resource: the key fc3 names it is said",
      fc3('').replace('code: ./', 'codeUri: ./'),
      /code is missing: the fc3 component names the code folder `code` \(`codeUri` is FC 2\.0's `fc` component\)$/,
    ],
    [
      "FC 3.0's code in an fc function: the key the fc component names it is said, not OSS code",
      'edition: 1.0.0\nservices:\n  f:\n    component: fc\n    props:\n      service:\n        name: s\n      function:\n        name: f\n        runtime: nodejs18\n        code: ./\n        handler: index.handler\n',
      /services\.f\.props\.function\.codeUri is missing: the fc component names the code folder `codeUri` \(`code` is FC 3\.0's `fc3` component\)$/,
    ],
    [
      'OSS code',
      fc3('').replace('code: ./', 'code:\n        ossBucketName: b'),
      /code must be the path of the code folder/,
    ],
    [
      'retries out of range',
      fc3('      asyncInvokeConfig:\n        maxAsyncRetryAttempts: -1\n'),
      /asyncInvokeConfig\.maxAsyncRetryAttempts must be an integer from 0 to 8, got -1/,
    ],
    [
      'an event age out of range',
      fc3('      asyncInvokeConfig:\n        maxAsyncEventAgeInSeconds: 0\n'),
      /maxAsyncEventAgeInSeconds must be an integer from 1 to 604800/,
    ],
    [
      'a non-boolean asyncTask',
      fc3('      asyncInvokeConfig:\n        asyncTask: yes please\n'),
      /asyncTask must be true or false/,
    ],
    [
      'a destination without an ARN',
      fc3('      asyncInvokeConfig:\n        destinationConfig:\n          onSuccess: {}\n'),
      /onSuccess must be a mapping with a destination ARN/,
    ],
    [
      'an unknown destination side',
      fc3('      asyncInvokeConfig:\n        destinationConfig:\n          onDone: {destination: x}\n'),
      /has an unknown key onDone/,
    ],
    ['triggers that are not a list', fc3('      triggers: http\n'), /triggers must be a list/],
    [
      'a duplicate function name',
      `${fc3('')}  g:\n    component: fc3\n    props:\n      functionName: f\n      code: ./\n      handler: index.handler\n`,
      /the function name f is used twice/,
    ],
    [
      'no Node.js function',
      'resources:\n  p:\n    component: fc3\n    props:\n      functionName: p\n      runtime: python3.10\n      code: ./\n      handler: index.handler\n',
      /defines no Node\.js function/,
    ],
    ['a duplicate key', 'resources:\n  f: {}\n  f: {}\n', /invalid YAML/],
  ])('names the file and the problem for %s', async (_label, text, message) => {
    const file = yaml(text);
    const error = await loadServerlessConfig(file).catch((e: unknown) => e as Error & { code: string });
    expect(error).toBeInstanceOf(Error);
    expect((error as { code: string }).code).toBe('InvalidConfig');
    expect((error as Error).message.startsWith(`${file}: `)).toBe(true);
    expect((error as Error).message).toMatch(message);
  });
});
