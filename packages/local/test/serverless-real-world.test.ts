// biome-ignore-all lint/suspicious/noTemplateCurlyInString: the s.yaml texts here are written in Serverless Devs variable syntax

import { once } from 'node:events';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { type Emulator, type FunctionSpec, loadServerlessConfig, startEmulator } from '../src/index.js';
import { freePort } from '../src/ports.js';
import { fixture, runCli } from './helpers.js';

// s.yaml files shaped after public Serverless Devs projects (each fixture names its sources).
const real = (path: string) => fixture(`real-world/${path}`);
const tmp = mkdtempSync(join(tmpdir(), 'fc-async-real-world-'));
const quiet = { output: () => {}, port: 0, controlPort: 0 };

/** The `InvalidConfig` problem loading `file` gives, without the file name the message starts with. */
async function refusal(file: string, env: Record<string, string> = {}): Promise<string> {
  const error = await loadServerlessConfig(file, { env }).then(
    () => undefined,
    (e: unknown) => e as { code?: string; message: string },
  );
  expect(error?.code).toBe('InvalidConfig');
  expect(error?.message.startsWith(`${file}: `)).toBe(true);
  return (error as { message: string }).message.slice(file.length + 2);
}

const byName = (functions: FunctionSpec[]) => Object.fromEntries(functions.map((f) => [f.name, f]));

/** Records the destination functions of the fixtures keep in `globalThis.fcAsyncRealWorldRecords`. */
type Kept = { to: string; record: { requestContext: { functionArn: string; condition: string } } };
const kept = () => ((globalThis as { fcAsyncRealWorldRecords?: Kept[] }).fcAsyncRealWorldRecords ??= []);

async function until<T>(find: () => T | undefined, what: string): Promise<T> {
  for (let i = 0; i < 500; i++) {
    const found = find();
    if (found !== undefined) return found;
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error(`timed out waiting for ${what}`);
}

describe('FC 3.0 (fc3) files', () => {
  it('devsapp/fc3 e2e nodejs: the component and names from env() defaults, and nested calls in them', async () => {
    const file = real('fc3-nodejs-async/s.yaml');
    const config = await loadServerlessConfig(file, { env: { FC_COMPONENT: 'fc3' } });
    expect(config.functions).toHaveLength(1);
    expect(config.functions[0]).toMatchObject({
      name: 'fc3-event-nodejs18',
      runtime: 'nodejs18',
      region: 'cn-hongkong',
      file: real('fc3-nodejs-async/code/event.mjs'),
      exportName: 'handler',
      http: { methods: ['GET', 'POST'] },
      asyncConfig: {
        maxAsyncRetryAttempts: 1,
        maxAsyncEventAgeInSeconds: 360,
        asyncTask: true,
        destinationConfig: {
          onSuccess: { destination: 'acs:fc:cn-hongkong::functions/node-async-succ' },
          onFailure: { destination: 'acs:mns:cn-hongkong::/topics/node-async-ci/messages' },
        },
      },
    });
    // The initializer is run (its module's export, its timeout), so it gets no notice.
    expect(config.functions[0]?.lifecycle).toEqual({
      initializer: {
        handler: 'event.initializer',
        file: real('fc3-nodejs-async/code/event.mjs'),
        exportName: 'initializer',
        timeout: 10,
      },
      preStop: undefined,
    });
    expect(config.warnings).toEqual([]);
    const renamed = await loadServerlessConfig(file, {
      env: { FC_COMPONENT: 'fc3', REGION: 'cn-shanghai', FUNCTION_SUFFIX: 'nodejs20', FC_RUNTIME: 'nodejs20' },
    });
    expect(renamed.functions[0]).toMatchObject({
      name: 'fc3-event-nodejs20',
      runtime: 'nodejs20',
      region: 'cn-shanghai',
    });
  });

  it('a component that resolves to a local path (the default there) is skipped, and the refusal says why', async () => {
    const problem = await refusal(real('fc3-nodejs-async/s.yaml'));
    expect(problem).toBe(
      `defines no Node.js function of the fc3 or fc component (fcDemo: skipped: component ${real('fc3-nodejs-async')} is not fc3 or fc)`,
    );
  });

  it('devsapp/fc3 e2e triggers: the first HTTP trigger gives the methods; timer and OSS triggers make an event function', async () => {
    const config = await loadServerlessConfig(real('fc3-triggers/s.yaml'), { env: {}, accountId: '42' });
    const { web, jobs } = byName(config.functions);
    expect(web?.http).toEqual({ methods: ['GET', 'POST'] });
    expect(web?.asyncConfig?.destinationConfig).toEqual({
      onSuccess: { destination: 'acs:fc:cn-huhehaote::functions/jobs' },
      onFailure: { destination: 'acs:mns:cn-huhehaote::/topics/trigger-app-failures/messages' },
    });
    expect(jobs?.http).toBeUndefined();
    expect(config.warnings).toEqual([]);
  });

  it('devsapp/fc3 e2e http.yaml: function fields nested under `function`, triggers beside it', async () => {
    const [fn] = (await loadServerlessConfig(real('fc3-nested-function/s.yaml'), { env: {} })).functions;
    expect(fn).toMatchObject({
      name: 'fc3-http-nodejs-14',
      file: real('fc3-nested-function/code/event.cjs'),
      http: { methods: ['GET'] },
      memorySize: 512,
      timeout: 30,
    });
  });

  it('a function a custom domain routes to (an fc3-domain route, its own customDomain) is an HTTP function', async () => {
    const config = await loadServerlessConfig(real('fc3-custom-domain/s.yaml'), { env: {} });
    const { web, site, api, worker } = byName(config.functions);
    expect(web?.http).toEqual({ methods: ['GET', 'POST'] });
    expect(site?.http).toEqual({});
    // An HTTP trigger keeps its own methods; a route to a function not in the file is not followed.
    expect(api?.http).toEqual({ methods: ['GET'] });
    expect(worker?.http).toBeUndefined();
    expect(config.warnings).toEqual([]);
  });

  it('custom containers are skipped with a notice that shows what they start', async () => {
    const config = await loadServerlessConfig(real('fc3-containers/s.yaml'), { env: {} });
    expect(config.functions.map((f) => f.name)).toEqual(['api']);
    expect(config.warnings).toEqual([
      'express: skipped: runtime custom-container (an image fc-async dev does not run) starts its own server (node /home/code/server.js); serve its code as runtime custom.debian12 with customRuntimeConfig.command, or run `fc-async dev <file exporting the app>`',
      'model: skipped: runtime custom-container is an image fc-async dev does not run',
    ]);
  });

  it.each([
    [
      'start-web-framework express (custom.debian10)',
      'fc3-express-custom-runtime',
      ['express-app', 'fc3-express-custom-runtime/code', 'node ./index.js'],
    ],
    [
      'fe-journey-faas (a bundled node, Python timers)',
      'fc3-web-and-timers',
      ['journey-main', 'fc3-web-and-timers', 'noderuntime/bin/node server.js'],
    ],
  ])('%s: the custom runtime is served, its command run in its code folder', async (_l, dir, [name, code, command]) => {
    const config = await loadServerlessConfig(real(`${dir}/s.yaml`), { env: {} });
    expect(config.functions.map((f) => [f.name, f.runtime, f.file, f.customRuntime?.command.join(' ')])).toEqual([
      [name, 'custom.debian10', real(code as string), command],
    ]);
  });

  it('dev3.0-env-demo: ${this.props.region} resolves; env.yaml and layers get a notice, not silence', async () => {
    const config = await loadServerlessConfig(real('fc3-env-yaml/s.yaml'), { env: {} });
    expect(config.functions.map((f) => [f.name, f.region, f.customRuntime?.command])).toEqual([
      ['flask-api-1', 'cn-beijing', ['python3', 'index.py']],
      ['node-api-2', 'cn-beijing', undefined],
    ]);
    expect(config.warnings).toEqual([
      'not run or applied locally: env env.yaml (the values of this file are used); layers of api1, api2',
    ]);
  });
});

describe('FC 2.0 (fc) files', () => {
  it('start-fc http nodejs14 and an FC 2.0 nodejs18 API: both HTTP functions, FC 2.0 style', async () => {
    const config = await loadServerlessConfig(real('fc2-http-nodejs/s.yaml'), { env: {} });
    const functions = byName(config.functions);
    expect(functions['http-trigger-nodejs14']).toMatchObject({ style: 'fc2', http: { methods: ['GET'] }, timeout: 60 });
    expect(functions.main).toMatchObject({
      style: 'fc2',
      file: real('fc2-http-nodejs/code/api.js'),
      http: { methods: ['GET', 'POST', 'PUT', 'DELETE', 'OPTIONS'] },
      environmentVariables: { ENVIRONMENT: 'production', NODE_ENV: 'production' },
    });
    expect(config.warnings).toEqual([]);
  });

  it('start-fc async-task: asyncConfiguration ARNs with no region or account, a `.LATEST` service, MNS queues', async () => {
    const config = await loadServerlessConfig(real('fc2-async-task/s.yaml'), { env: {} });
    const functions = byName(config.functions);
    expect(Object.keys(functions)).toEqual(['async-task-func', 'dest-succ', 'dest-fail', 'fc-job-function']);
    expect(functions['async-task-func']?.asyncConfig).toEqual({
      maxAsyncRetryAttempts: 0,
      maxAsyncEventAgeInSeconds: 7200,
      asyncTask: true,
      destinationConfig: {
        onSuccess: { destination: 'acs:fc:::services/async-task-service/functions/dest-succ' },
        onFailure: { destination: 'acs:fc:::services/async-task-service.LATEST/functions/dest-fail' },
      },
    });
    expect(functions['fc-job-function']?.asyncConfig?.destinationConfig?.onFailure).toEqual({
      destination: 'acs:mns:::/queues/job-results/messages',
    });
  });

  it('custom runtimes of start-web-framework egg/nest and start-nest: command and caPort of each', async () => {
    const config = await loadServerlessConfig(real('fc2-custom-runtime/s.yaml'), { env: {} });
    expect(config.functions.map((f) => [f.name, f.style, f.customRuntime?.command, f.customRuntime?.port])).toEqual([
      ['egg', 'fc2', ['npx', '--no-install', 'egg-scripts', 'start', '--workers=1'], 9000],
      ['nest', 'fc2', ['node', 'dist/main'], 3000],
      ['start-nest', 'fc2', ['./bootstrap'], 9000],
    ]);
    expect(config.warnings).toEqual(['not run or applied locally: actions of egg (pre-deploy)']);
  });
});

describe('what Serverless Devs does to a file before its component sees it', () => {
  it('`extend: s.yaml` (docs/zh/extend.md): the base file with this one merged over it, lists replaced', async () => {
    const base = await loadServerlessConfig(real('extend/s.yaml'), { env: {} });
    expect(base.functions[0]).toMatchObject({
      name: 'hello-function',
      http: { methods: ['GET', 'POST'] },
      timeout: 60,
      environmentVariables: { STAGE: 'default', REGION: 'cn-hangzhou' },
    });
    const pre = await loadServerlessConfig(real('extend/s.pre.yaml'), { env: {} });
    expect(pre.functions).toHaveLength(1);
    expect(pre.functions[0]).toMatchObject({
      name: 'hello-function',
      handler: 'index.handler',
      file: real('extend/code/index.js'),
      style: 'fc2',
      region: 'cn-shanghai',
      http: { methods: ['GET'] },
      timeout: 10,
      environmentVariables: { STAGE: 'pre', REGION: 'cn-shanghai' },
    });
  });

  it('resource templates: `extend.name` merges the template, `extend.ignore` drops its keys, ${this.name}', async () => {
    const config = await loadServerlessConfig(real('templates/s.yaml'), { env: {} });
    const { api, admin, worker } = byName(config.functions);
    expect(api).toMatchObject({ handler: 'index.handler', http: { methods: ['GET', 'POST'] }, timeout: 30 });
    expect(api).toMatchObject({ memorySize: 256, runtime: 'nodejs20', region: 'cn-hangzhou' });
    expect(admin).toMatchObject({ handler: 'admin.handler', file: real('templates/code/admin.mjs') });
    expect(admin?.http).toEqual({ methods: ['GET'] });
    expect(worker).toMatchObject({ handler: 'worker.handler', timeout: 600, memorySize: 256 });
    expect(worker?.http).toBeUndefined();
    expect(config.warnings).toEqual([
      'not run or applied locally: actions (pre-deploy); flow (every function is served at once)',
    ]);
  });

  it('YAML anchors and `<<` merge keys', async () => {
    const config = await loadServerlessConfig(real('anchors/s.yaml'), { env: {} });
    const { hello, report } = byName(config.functions);
    expect(hello).toMatchObject({
      handler: 'index.handler',
      runtime: 'nodejs20',
      timeout: 60,
      http: { methods: ['GET'] },
    });
    expect(report).toMatchObject({ handler: 'index.handler', timeout: 300 });
    expect(report?.http).toBeUndefined();
  });

  describe('variables (docs/zh/variables.md, fc3 tips on .env)', () => {
    const dir = join(tmp, 'variables');
    beforeAll(() => {
      cpSync(real('variables'), dir, { recursive: true });
      writeFileSync(join(dir, '.env'), '# secrets stay out of s.yaml\nAccessKeyID=from-dotenv\nexport FEATURE="on"\n');
    });

    it('file(), json(file()), path(), this.name, this.access, <resource>.props, env.NAME from .env', async () => {
      const config = await loadServerlessConfig(join(dir, 's.yaml'), { env: {} });
      const functions = byName(config.functions);
      expect(functions['framework-fn']?.environmentVariables).toEqual({
        NEXT_FUNCTION: 'next-function-example',
        NEXT_URL: '${resources.next_function.output.url}',
        CODE_DIR: join(dir, 'code'),
        ACCESS: 'default-access',
        AccessKeyID: 'from-dotenv',
        FEATURE: 'on',
      });
      expect(functions['framework-fn']?.asyncConfig).toEqual({
        maxAsyncRetryAttempts: 1,
        destinationConfig: { onSuccess: { destination: 'acs:fc:cn-hangzhou::functions/next-function-example' } },
      });
      expect(functions['next-function-example']?.environmentVariables).toEqual({ LOG_LEVEL: 'debug', RETRIES: '3' });
      expect(config.warnings).toEqual([
        '${resources.next_function.output.url} is not resolved locally and kept as written',
      ]);
    });

    it('bare arguments of older files: ${env(NAME)}, ${path(../..)} (devsapp/fc3 local/example/start-express)', async () => {
      const file = join(dir, 's.bare.yaml');
      writeFileSync(
        file,
        'edition: 1.0.0\nservices:\n  framework:\n    component: ${path(../..)}\n    props:\n      function:\n        name: express\n' +
          '  api:\n    component: fc\n    props:\n      function:\n        name: api\n        runtime: nodejs18\n' +
          '        codeUri: ./code\n        handler: index.handler\n        environmentVariables:\n          SECRET: ${env(SecretId)}\n',
      );
      const config = await loadServerlessConfig(file, { env: { SecretId: 's3' } });
      expect(config.functions.map((f) => [f.name, f.environmentVariables])).toEqual([['api', { SECRET: 's3' }]]);
      expect(config.warnings).toEqual([`framework: skipped: component ${join(dir, '../..')} is not fc3 or fc`]);
    });

    it('the environment takes precedence over .env', async () => {
      const config = await loadServerlessConfig(join(dir, 's.yaml'), { env: { AccessKeyID: 'from-env' } });
      expect(config.functions[0]?.environmentVariables?.AccessKeyID).toBe('from-env');
    });
  });
});

describe('real-world mistakes are refused with the file and the problem', () => {
  const fn = (props: string, head = 'edition: 3.0.0\n') =>
    `${head}resources:\n  f:\n    component: fc3\n    props:\n      functionName: f\n      runtime: nodejs20\n      code: ./code\n      handler: index.handler\n${props}`;

  it.each([
    [
      'a start-fc template copied before `s init` (name: "{{ functionName }}")',
      'edition: 1.0.0\nservices:\n  helloworld:\n    component: fc\n    props:\n      service:\n        name: svc\n      function:\n        name: "{{ functionName }}"\n        runtime: nodejs20\n        codeUri: ./code\n        handler: index.handler\n',
      /^services\.helloworld\.props\.function\.name must be an FC function name .*got "\{\{ functionName \}\}" \(a variable not resolved locally\)$/,
    ],
    [
      'FC 2.0 codeUri as a zip archive: the key named as the file has it',
      'edition: 1.0.0\nservices:\n  echo:\n    component: fc\n    props:\n      service:\n        name: svc\n      function:\n        name: echo\n        runtime: nodejs20\n        codeUri: ./code.zip\n        handler: index.handler\n',
      /^services\.echo\.props\.function\.codeUri \.\/code\.zip is an archive: fc-async dev runs code from a folder \(point codeUri at the unpacked folder\)$/,
    ],
    [
      'code as a zip archive (AstraSchedule/sys-backend)',
      fn('').replace('code: ./code', 'code: ./code.zip'),
      /^resources\.f\.props\.code \.\/code\.zip is an archive: fc-async dev runs code from a folder/,
    ],
    [
      'an artifact instead of code (devsapp/fc3 examples/s.yaml)',
      fn('').replace('code: ./code', 'artifact: acs:devs:cn-hangzhou::artifacts/a1'),
      /^resources\.f\.props\.code must be the path of the code folder/,
    ],
    [
      'only a Python timer function (fc-auto-cert)',
      fn('').replace('nodejs20', 'python3.10'),
      /^defines no Node\.js function of the fc3 or fc component \(f: skipped: runtime python3\.10 is not a Node\.js runtime\)$/,
    ],
    [
      'an `extend` whose file is missing',
      fn('', 'extend: s.base.yaml\n'),
      /^extend s\.base\.yaml: .*s\.base\.yaml: no such file$/,
    ],
    ['an `extend` that is not a path', fn('', 'extend: [s.yaml]\n'), /^extend must be the path of the s\.yaml/],
    [
      'a template name that is not in `template`',
      fn('').replace('    props:', '    extend:\n      name: web\n    props:'),
      /^resources\.f\.extend\.name: no template web in the top-level `template` mapping$/,
    ],
    [
      'a resource `extend` that is a bare name',
      fn('', 'template:\n  web: {}\n').replace('    props:', '    extend: web\n    props:'),
      /^resources\.f\.extend must be a mapping with the `name` of a template/,
    ],
    [
      'a file() that does not exist',
      fn("      environmentVariables: ${file('./missing.json')}\n"),
      /^resources\.f\.props: file\('\.\/missing\.json'\) cannot be read \(ENOENT\)$/,
    ],
    [
      'a mapping where FC takes text (an environment variable)',
      fn("      environmentVariables:\n        SETTINGS: ${json('[1, 2]')}\n"),
      /^resources\.f\.props\.environmentVariables\.SETTINGS must be text, a number or a boolean, got a list$/,
    ],
    [
      'json() of text that is not JSON',
      fn("      description: ${json('not json')}\n"),
      /json\(\) got text that is not JSON/,
    ],
  ])('%s', async (_label, text, message) => {
    const dir = mkdtempSync(join(tmp, 'refused-'));
    cpSync(real('anchors/code'), join(dir, 'code'), { recursive: true });
    writeFileSync(join(dir, 's.yaml'), text);
    expect(await refusal(join(dir, 's.yaml'))).toMatch(message);
  });

  it('an `extend` loop is refused, not followed for ever', async () => {
    const dir = mkdtempSync(join(tmp, 'loop-'));
    writeFileSync(join(dir, 'a.yaml'), 'extend: b.yaml\n');
    writeFileSync(join(dir, 'b.yaml'), 'extend: a.yaml\n');
    expect(await refusal(join(dir, 'a.yaml'))).toMatch(
      /extend b\.yaml: .*b\.yaml: extend a\.yaml leads back to a\.yaml/,
    );
  });

  it.each([['a missing extended file', real('extend/s.yaml').replace('s.yaml', 'missing.yaml'), /no such file/]])(
    'fc-async dev --config with %s: one line, exit code 1',
    async (_label, config, message) => {
      const { code, stderr } = await runCli(['dev', '--config', config, '--port', '0', '--control-port', '0']);
      expect(code).toBe(1);
      const lines = stderr.trimEnd().split('\n');
      expect(lines).toHaveLength(1);
      expect(lines[0]).toMatch(/^fc-async: /);
      expect(lines[0]).toMatch(message);
    },
  );
});

describe('serving real-world files', () => {
  let emulator: Emulator | undefined;
  afterEach(async () => {
    await emulator?.close({ timeoutMs: 0 });
    emulator = undefined;
  });

  it('start-web-framework express on custom.debian10 (an fc3-domain route, no HTTP trigger): served over HTTP', async () => {
    emulator = await startEmulator({ ...quiet, config: real('fc3-express-custom-runtime/s.yaml') });
    const page = await fetch(`${emulator.triggerUrl}/users?page=2`);
    expect([page.status, await page.text()]).toEqual([200, 'express']);
    const queued = await fetch(`${emulator.triggerUrl}/jobs`, {
      method: 'POST',
      headers: { 'x-fc-invocation-type': 'Async' },
      body: '{}',
    });
    expect(queued.status).toBe(202);
    const res = await fetch(`${emulator.controlUrl}/2023-03-30/functions/express-app/invocations`, {
      method: 'POST',
      body: '{}',
    });
    expect([res.status, await res.text()]).toEqual([200, 'express']);
  });

  it('FC 3.0 functions a custom domain routes to: under /<name>/ with the methods of their routes', async () => {
    emulator = await startEmulator({ ...quiet, config: real('fc3-custom-domain/s.yaml') });
    expect(await (await fetch(`${emulator.triggerUrl}/web/a`, { method: 'POST' })).text()).toBe('web POST /a');
    expect((await fetch(`${emulator.triggerUrl}/web/a`, { method: 'PUT' })).status).toBe(405);
    expect(await (await fetch(`${emulator.triggerUrl}/site/x`, { method: 'DELETE' })).text()).toBe('site DELETE /x');
    expect((await fetch(`${emulator.triggerUrl}/worker/x`)).status).toBe(404);
  });

  describe('a custom runtime whose app listens on its s.yaml port, not FC_SERVER_PORT (express: app.listen(9000))', () => {
    /** A project whose server listens on `port` whatever its environment says, as that template's does. */
    const fixedPortProject = (port: number, runtimeConfig = '') => {
      const dir = mkdtempSync(join(tmp, 'fixed-port-'));
      cpSync(real('fc3-express-custom-runtime/s.yaml'), join(dir, 's.yaml'));
      const yaml = readFileSync(join(dir, 's.yaml'), 'utf8');
      writeFileSync(join(dir, 's.yaml'), yaml.replace('port: 9000', `port: ${port}${runtimeConfig}`));
      cpSync(real('fc3-express-custom-runtime/code'), join(dir, 'code'), { recursive: true });
      writeFileSync(
        join(dir, 'code/index.js'),
        `import { createServer } from 'node:http';\ncreateServer((req, res) => res.end('fixed ' + req.url)).listen(${port}, '127.0.0.1');\n`,
      );
      return join(dir, 's.yaml');
    };

    it('is served on that port, sync and async, with a notice that says so', async () => {
      const port = await freePort();
      const lines: string[] = [];
      emulator = await startEmulator({ ...quiet, config: fixedPortProject(port), output: (t) => lines.push(t) });
      expect(await (await fetch(`${emulator.triggerUrl}/users`)).text()).toBe('fixed /users');
      const queued = await fetch(`${emulator.triggerUrl}/jobs`, { headers: { 'x-fc-invocation-type': 'Async' } });
      expect(queued.status).toBe(202);
      expect(lines.join('')).toContain(
        `express-app: the custom runtime listens on its s.yaml port ${port}, not on FC_SERVER_PORT`,
      );
    });

    it('is followed there with a health check too, whose probes then go to that port', async () => {
      const port = await freePort();
      const check =
        '\n        healthCheckConfig:\n          httpGetUrl: /ready\n          periodSeconds: 1\n          failureThreshold: 3';
      const lines: string[] = [];
      emulator = await startEmulator({ ...quiet, config: fixedPortProject(port, check), output: (t) => lines.push(t) });
      expect(await (await fetch(`${emulator.triggerUrl}/users`)).text()).toBe('fixed /users');
      expect(lines.join('')).toContain(
        `express-app: the custom runtime listens on its s.yaml port ${port}, not on FC_SERVER_PORT`,
      );
    });

    it.each([
      ['without a health check', '', 'listened'],
      ['with a health check', ', healthCheckConfig: { initialDelaySeconds: 0, periodSeconds: 1 }', 'was ready'],
    ])(
      'of two functions wanting the same port: the second fails to start, saying its port was taken (%s)',
      async (_, check, before) => {
        const port = await freePort();
        const dir = mkdtempSync(join(tmp, 'same-port-'));
        mkdirSync(join(dir, 'code'));
        writeFileSync(
          join(dir, 'code/index.js'),
          `require('node:http').createServer((req, res) => res.end('fixed')).listen(${port}, '127.0.0.1');\n`,
        );
        const fn = (name: string) =>
          `  ${name}:\n    component: fc3\n    props:\n      functionName: ${name}\n      runtime: custom.debian10\n      code: ./code\n      customRuntimeConfig: { command: [node, index.js], port: ${port}${check} }\n`;
        writeFileSync(join(dir, 's.yaml'), `edition: 3.0.0\nresources:\n${fn('first')}${fn('second')}`);
        const error = await startEmulator({ ...quiet, config: join(dir, 's.yaml') }).then(
          () => undefined,
          (e: unknown) => e as { code?: string; message: string },
        );
        expect(error?.code).toBe('CustomRuntimeStartFailed');
        expect(error?.message).toMatch(
          new RegExp(
            `^second: .* exited with code 1 before it ${before} on port \\d+ \\(FC_SERVER_PORT\\); its s\\.yaml port ${port} was taken when it started \\(another function's custom runtime or another program listens there\\): make the app listen on process\\.env\\.FC_SERVER_PORT`,
          ),
        );
      },
    );

    it('does not blame its s.yaml port, taken, for an app that exited for another reason', async () => {
      // Its s.yaml port taken (FC's 9000 while fc-async dev serves on it, when a crashed app is started
      // again): an app that listens on FC_SERVER_PORT and exits for its own reason is told only that.
      const taken = createServer().listen(0, '127.0.0.1');
      await once(taken, 'listening');
      try {
        const port = (taken.address() as AddressInfo).port;
        const dir = mkdtempSync(join(tmp, 'taken-port-'));
        mkdirSync(join(dir, 'code'));
        writeFileSync(
          join(dir, 'code/index.js'),
          "console.error('Error: DATABASE_URL is not set');\nprocess.exit(1);\n",
        );
        writeFileSync(
          join(dir, 's.yaml'),
          `edition: 3.0.0\nresources:\n  web:\n    component: fc3\n    props:\n      functionName: web\n      runtime: custom.debian10\n      code: ./code\n      customRuntimeConfig: { command: [node, index.js], port: ${port} }\n`,
        );
        const error = await startEmulator({ ...quiet, config: join(dir, 's.yaml') }).then(
          () => undefined,
          (e: unknown) => e as { code?: string; message: string },
        );
        expect(error?.code).toBe('CustomRuntimeStartFailed');
        expect(error?.message).toMatch(
          /^web: .* exited with code 1 before it listened on port \d+; its last stderr lines: Error: DATABASE_URL is not set$/,
        );
      } finally {
        taken.close();
      }
    });

    it("is refused at once, naming the flag, when that port is the emulator's own --port", async () => {
      const port = await freePort();
      const started = Date.now();
      const error = await startEmulator({ ...quiet, port, config: fixedPortProject(port) }).then(
        () => undefined,
        (e: unknown) => e as { code?: string; message: string },
      );
      expect(error?.code).toBe('CustomRuntimeStartFailed');
      expect(error?.message).toContain(
        `listens on its s.yaml port ${port}, not on FC_SERVER_PORT, and ${port} is fc-async dev's --port: give fc-async dev another --port`,
      );
      expect(Date.now() - started).toBeLessThan(10_000);
    });
  });

  it('templates: each HTTP function under /<name>/ with its own handler and methods; the worker is not routed', async () => {
    emulator = await startEmulator({ ...quiet, config: real('templates/s.yaml') });
    expect(emulator.functions).toEqual(['api', 'admin', 'worker']);
    expect(await (await fetch(`${emulator.triggerUrl}/api/orders?x=1`)).text()).toBe('api /orders');
    expect(await (await fetch(`${emulator.triggerUrl}/admin/users`)).text()).toBe('admin /users');
    expect((await fetch(`${emulator.triggerUrl}/admin/users`, { method: 'POST' })).status).toBe(405);
    expect((await fetch(`${emulator.triggerUrl}/worker/x`)).status).toBe(404);
  });

  it('FC 2.0 HTTP functions get (req, resp, context) and their environment variables', async () => {
    emulator = await startEmulator({ ...quiet, config: real('fc2-http-nodejs/s.yaml') });
    const hello = await fetch(`${emulator.triggerUrl}/http-trigger-nodejs14/p`);
    expect(await hello.text()).toBe('hello GET /p from http-trigger-nodejs14');
    const api = await fetch(`${emulator.triggerUrl}/main/q`, { method: 'POST', body: '{}' });
    expect(await api.text()).toBe('api POST /q production');
  });

  it('FC 2.0 destinations with empty region/account ARNs invoke the functions of the file; MNS goes to JSONL', async () => {
    const lines: string[] = [];
    const outDir = mkdtempSync(join(tmp, 'out-'));
    emulator = await startEmulator({
      ...quiet,
      config: real('fc2-async-task/s.yaml'),
      outDir,
      retryBaseMs: 10,
      output: (text) => lines.push(text),
    });
    expect(lines.join('')).toContain('fc-job-function onSuccess → acs:mns:::/queues/job-results/messages');
    const invoke = (payload: unknown) =>
      fetch(`${emulator?.controlUrl.replace(/\/$/, '')}/2023-03-30/functions/async-task-func/invocations`, {
        method: 'POST',
        headers: { 'x-fc-invocation-type': 'Async' },
        body: JSON.stringify(payload),
      });
    expect((await invoke({ id: 1 })).status).toBe(202);
    expect((await invoke({ fail: true })).status).toBe(202);
    const succ = await until(() => kept().find((k) => k.to === 'dest-succ'), 'the dest-succ record');
    expect(succ.record.requestContext.functionArn).toMatch(/functions\/async-task-func$/);
    const fail = await until(() => kept().find((k) => k.to === 'dest-fail'), 'the dest-fail record');
    expect(fail.record.requestContext.condition).not.toBe('');
  });

  it('FC 3.0: a success record to a function of the file, a failure record to the MNS JSONL file', async () => {
    const outDir = mkdtempSync(join(tmp, 'out-'));
    emulator = await startEmulator({ ...quiet, config: real('fc3-triggers/s.yaml'), outDir, retryBaseMs: 10 });
    const async = { 'x-fc-invocation-type': 'Async' };
    expect((await fetch(`${emulator.triggerUrl}/ok`, { headers: async })).status).toBe(202);
    expect((await fetch(`${emulator.triggerUrl}/fail`, { headers: async })).status).toBe(202);
    const jobs = await until(() => kept().find((k) => k.to === 'jobs'), 'the jobs record');
    expect(jobs.record.requestContext.functionArn).toMatch(/functions\/web$/);
    const jsonl = join(outDir, 'web.onFailure.jsonl');
    const failure = await until(
      () => (existsSync(jsonl) ? readFileSync(jsonl, 'utf8').trim() : undefined) || undefined,
      'the MNS record',
    );
    const record = JSON.parse(failure.split('\n')[0] as string);
    expect(record.requestContext.functionArn).toMatch(/functions\/web$/);
    expect(record.responseContext.functionError).not.toBe('');
  });
});

afterAll(() => {
  delete (globalThis as { fcAsyncRealWorldRecords?: unknown }).fcAsyncRealWorldRecords;
});

describe('values from the environment and from files are data, not s.yaml text', () => {
  it('neither expands nor reports a ${ inside an environment variable or a file that the s.yaml reads', async () => {
    const dir = mkdtempSync(join(tmp, 'data-'));
    writeFileSync(join(dir, 'index.js'), 'export const handler = async () => "ok";\n');
    writeFileSync(join(dir, 'note.txt'), "hello ${file('/etc/hostname')}");
    const file = join(dir, 's.yaml');
    writeFileSync(
      file,
      [
        'vars:',
        "  greeting: ${env('GREETING')}",
        'resources:',
        '  f:',
        '    component: fc3',
        '    props:',
        '      functionName: f',
        '      runtime: nodejs18',
        '      code: ./',
        '      handler: index.handler',
        '      environmentVariables:',
        "        DB_PASSWORD: ${env('DB_PASSWORD')}",
        "        NOTE: ${file('./note.txt')}",
        '        GREETING: ${vars.greeting}',
        '',
      ].join('\n'),
    );
    const config = await loadServerlessConfig(file, { env: { DB_PASSWORD: 'p${ss', GREETING: 'hi ${vars.x}' } });
    expect(config.functions[0]?.environmentVariables).toEqual({
      DB_PASSWORD: 'p${ss',
      NOTE: "hello ${file('/etc/hostname')}",
      GREETING: 'hi ${vars.x}',
    });
    expect(config.warnings.join('\n')).not.toContain('p${ss');
    expect(config.warnings).toEqual([]);
  });
});

describe('files an s.yaml makes fc-async dev read', () => {
  const FUNCTION =
    'resources:\n  f:\n    component: fc3\n    props: { functionName: f, runtime: nodejs18, code: ./, handler: index.handler }\n';

  it('refuses an s.yaml, a .env or a file() that is not a regular file or is too large, without reading it', async () => {
    const dir = mkdtempSync(join(tmp, 'device-'));
    expect(await refusal('/dev/zero')).toBe('is not a regular file');
    const big = join(dir, 'big.yaml');
    writeFileSync(big, `# ${'x'.repeat(4 * 1024 * 1024)}\n`);
    expect(await refusal(big)).toMatch(/^is \d+ bytes, more than a configuration file's 4194304$/);
    const vars = join(dir, 's.yaml');
    writeFileSync(vars, FUNCTION.replace('functionName: f', `functionName: "\${file('/dev/zero')}"`));
    expect(await refusal(vars)).toContain("file('/dev/zero') is not a regular file");
    const envDir = mkdtempSync(join(tmp, 'dotenv-'));
    const withEnv = join(envDir, 's.yaml');
    writeFileSync(withEnv, FUNCTION);
    writeFileSync(join(envDir, '.env'), `A=${'x'.repeat(4 * 1024 * 1024)}\n`);
    const error = await loadServerlessConfig(withEnv, { env: {} }).then(
      () => undefined,
      (e: unknown) => e as { code?: string; message: string },
    );
    expect(error).toMatchObject({ code: 'InvalidConfig' });
    expect(error?.message).toMatch(/\.env: is \d+ bytes, more than/);
  });
});
