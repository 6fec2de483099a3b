// biome-ignore-all lint/suspicious/noTemplateCurlyInString: the s.yaml texts here are written in Serverless Devs variable syntax
// Behaviour of the s.yaml loader, the options and the CLI flags that no test held (session 20 mutation audit).
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { type EmulatorOptions, loadServerlessConfig, startEmulator } from '../src/index.js';
import { runCli, startCli, waitFor } from './helpers.js';

const dir = mkdtempSync(join(tmpdir(), 'fc-async-mut20-'));
writeFileSync(join(dir, 'index.js'), 'exports.handler = () => 1;\n');
let n = 0;
function yaml(text: string): string {
  const file = join(dir, `s${++n}.yaml`);
  writeFileSync(file, text);
  return file;
}

const fc3 = (props: string, component = 'fc3') =>
  `edition: 3.0.0\nresources:\n  f:\n    component: ${component}\n    props:\n      functionName: f\n      code: ./\n      handler: index.handler\n${props}`;

/** The `InvalidConfig` problem loading `file` gives, without the file name the message starts with. */
async function refusal(file: string): Promise<string> {
  const error = await loadServerlessConfig(file, { env: {} }).then(
    () => undefined,
    (e: unknown) => e as { code?: string; message: string },
  );
  expect(error?.code).toBe('InvalidConfig');
  expect(error?.message.startsWith(`${file}: `)).toBe(true);
  return (error as { message: string }).message.slice(file.length + 2);
}

const asyncConfigOf = async (props: string) =>
  (await loadServerlessConfig(yaml(fc3(props)), { env: {} })).functions[0]?.asyncConfig;

describe('asyncInvokeConfig: the bounds FC sets, at both ends', () => {
  it('takes 8 retries and 604800 s, the most FC takes', async () => {
    expect(
      await asyncConfigOf(
        '      asyncInvokeConfig:\n        maxAsyncRetryAttempts: 8\n        maxAsyncEventAgeInSeconds: 604800\n',
      ),
    ).toEqual({ maxAsyncRetryAttempts: 8, maxAsyncEventAgeInSeconds: 604800 });
  });

  it('refuses 9 retries and 604801 s, naming the field and the range', async () => {
    expect(await refusal(yaml(fc3('      asyncInvokeConfig:\n        maxAsyncRetryAttempts: 9\n')))).toBe(
      'resources.f.props.asyncInvokeConfig.maxAsyncRetryAttempts must be an integer from 0 to 8, got 9',
    );
    expect(await refusal(yaml(fc3('      asyncInvokeConfig:\n        maxAsyncEventAgeInSeconds: 604801\n')))).toBe(
      'resources.f.props.asyncInvokeConfig.maxAsyncEventAgeInSeconds must be an integer from 1 to 604800, got 604801',
    );
  });

  it('takes asyncTask over statefulInvocation when a file sets both', async () => {
    expect(
      await asyncConfigOf('      asyncInvokeConfig:\n        asyncTask: false\n        statefulInvocation: true\n'),
    ).toEqual({
      asyncTask: false,
    });
  });

  it('checks onFailure after an onSuccess left empty', async () => {
    const file = yaml(
      fc3(
        '      asyncInvokeConfig:\n        destinationConfig:\n          onSuccess: ~\n          onFailure:\n            destination: not-an-arn\n',
      ),
    );
    expect(await refusal(file)).toMatch(
      /^resources\.f\.props\.asyncInvokeConfig\.destinationConfig onFailure\.destination is not an FC, MNS, EventBridge or RocketMQ ARN/,
    );
  });
});

describe('destination ARNs an s.yaml may name', () => {
  it.each([
    'acs:mq:cn-hangzhou:123:/instances/MQ_INST_1/topic/results',
    'acs:ons:cn-hangzhou:123:/instances/MQ_INST_1/topic/results',
    'acs:rocketmq:cn-hangzhou:123:/instances/rmq-1/topic/results',
  ])('takes the RocketMQ ARN %s', async (arn) => {
    expect(
      await asyncConfigOf(
        `      asyncInvokeConfig:\n        destinationConfig:\n          onFailure:\n            destination: ${arn}\n`,
      ),
    ).toEqual({
      destinationConfig: { onFailure: { destination: arn } },
    });
  });
});

describe('the component of a resource', () => {
  it.each(['fc3@0.1.0', 'devsapp/fc3@dev', ' fc3 '])('reads %j as fc3', async (component) => {
    const config = await loadServerlessConfig(yaml(fc3('', JSON.stringify(component))), { env: {} });
    expect(config.functions.map((f) => [f.name, f.style])).toEqual([['f', 'fc3']]);
  });
});

describe('fc3 props', () => {
  it('takes a nested `function` mapping over the props beside it', async () => {
    const file = yaml(
      'resources:\n  f:\n    component: fc3\n    props:\n      functionName: f\n      code: ./\n      handler: index.handler\n      timeout: 10\n      function:\n        timeout: 20\n',
    );
    const [fn] = (await loadServerlessConfig(file, { env: {} })).functions;
    expect(fn?.timeout).toBe(20);
  });
});

describe('extend chains', () => {
  /** `count` files, each extending the next; the last defines the function. */
  function chain(count: number): string {
    const folder = mkdtempSync(join(dir, 'chain-'));
    writeFileSync(join(folder, 'index.js'), 'exports.handler = () => 1;\n');
    writeFileSync(
      join(folder, `e${count - 1}.yaml`),
      'resources:\n  f:\n    component: fc3\n    props:\n      functionName: f\n      code: ./\n      handler: index.handler\n',
    );
    for (let i = count - 2; i >= 0; i--) writeFileSync(join(folder, `e${i}.yaml`), `extend: e${i + 1}.yaml\n`);
    return join(folder, 'e0.yaml');
  }

  it('reads eight files extending one another, and refuses a ninth, saying why', async () => {
    expect((await loadServerlessConfig(chain(8), { env: {} })).functions.map((f) => f.name)).toEqual(['f']);
    expect(await refusal(chain(9))).toMatch(/extend e8\.yaml: more than 8 files extend one another$/);
  });
});

describe('what fc-async dev does not run gets one notice', () => {
  const custom = (extra: string) =>
    yaml(
      `resources:\n  c:\n    component: fc3\n    props:\n      functionName: c\n      runtime: custom.debian10\n      code: ./\n      customRuntimeConfig:\n        command: [node, server.js]\n${extra}`,
    );

  it("runs a custom runtime's lifecycle hooks, so they get no notice; its layers do", async () => {
    const hooks =
      '      instanceLifecycleConfig:\n        initializer:\n          handler: init\n        preStop:\n          handler: stop\n';
    expect((await loadServerlessConfig(custom(hooks), { env: {} })).warnings).toEqual([]);
    const layers = `${hooks}      layers: ['acs:fc:cn-hangzhou:123:layers/x/versions/1']\n`;
    expect((await loadServerlessConfig(custom(layers), { env: {} })).warnings).toEqual([
      'not run or applied locally: layers of c',
    ]);
  });
});

describe('custom runtimes', () => {
  const folder = mkdtempSync(join(dir, 'custom-'));
  writeFileSync(join(folder, 'bootstrap'), '#!/bin/sh\nexec node server.js\n');
  const custom = (props: string) =>
    yaml(
      `resources:\n  c:\n    component: fc3\n    props:\n      functionName: c\n      runtime: custom.debian10\n      code: ${folder}\n${props}`,
    );
  const runtimeOf = async (props: string) =>
    (await loadServerlessConfig(custom(props), { env: {} })).functions[0]?.customRuntime;

  it("starts the code folder's bootstrap with the args when there is no command, a hook with FC's 3 s, and its own port over caPort", async () => {
    const runtime = await runtimeOf(
      '      caPort: 8080\n      customRuntimeConfig:\n        args: [--verbose]\n        port: 9100\n      instanceLifecycleConfig:\n        initializer:\n          handler: init\n',
    );
    expect(runtime).toMatchObject({ command: ['./bootstrap', '--verbose'], port: 9100, initializer: { timeout: 3 } });
  });

  it('refuses a health check timeout past 3 s and a probe URL that is not a path, as FC does', async () => {
    const check = (field: string) =>
      refusal(
        custom(
          `      customRuntimeConfig:\n        command: [node, server.js]\n        healthCheckConfig:\n          ${field}\n`,
        ),
      );
    expect(await check('timeoutSeconds: 4')).toBe(
      'resources.c.props.customRuntimeConfig.healthCheckConfig.timeoutSeconds must be a whole number from 1 to 3, got 4',
    );
    expect(await check('httpGetUrl: ready')).toBe(
      'resources.c.props.customRuntimeConfig.healthCheckConfig.httpGetUrl must be a path starting with / (at most 2048 characters), got "ready"',
    );
  });
});

describe('function fields FC would refuse', () => {
  it('refuses a memorySize of 0, naming the field', async () => {
    expect(await refusal(yaml(fc3('      memorySize: 0\n')))).toBe(
      'resources.f.props.memorySize must be a positive number, got 0',
    );
  });

  it('refuses code that is an archive whatever the case of its extension, pointing at the unpacked folder', async () => {
    expect(await refusal(yaml(fc3('').replace('code: ./', 'code: ./dist/app.ZIP')))).toBe(
      'resources.f.props.code ./dist/app.ZIP is an archive: fc-async dev runs code from a folder (point code at the unpacked folder)',
    );
  });

  it('gives an environment variable written with no value the empty string, and numbers and booleans as text', async () => {
    const file = yaml(fc3('      environmentVariables:\n        EMPTY:\n        N: 1\n        B: true\n'));
    const [fn] = (await loadServerlessConfig(file, { env: {} })).functions;
    expect(fn?.environmentVariables).toEqual({ EMPTY: '', N: '1', B: 'true' });
  });
});

describe('HTTP triggers', () => {
  it('reads methods written in lower case as the methods FC takes', async () => {
    const file = yaml(
      fc3(
        '      triggers:\n        - triggerName: web\n          triggerType: http\n          triggerConfig:\n            methods: [get, Post]\n',
      ),
    );
    const [fn] = (await loadServerlessConfig(file, { env: {} })).functions;
    expect(fn?.http).toEqual({ methods: ['GET', 'POST'] });
  });
});

describe('notices about keys', () => {
  it('guesses no far-fetched key for a short unknown one (code is not role)', async () => {
    const file = yaml(
      'services:\n  f:\n    component: fc\n    props:\n      service:\n        name: s\n      function:\n        name: f\n        runtime: nodejs18\n        codeUri: ./\n        handler: index.handler\n      triggers:\n        - name: web\n          type: http\n          code: 1\n',
    );
    expect((await loadServerlessConfig(file, { env: {} })).warnings).toEqual([
      'services.f.props.triggers[0]: unknown key code (ignored)',
    ]);
  });

  it('notes a near miss of a key the function lacks, not of one it sets', async () => {
    const lacking = yaml(fc3('      regions: [cn-hangzhou]\n'));
    expect((await loadServerlessConfig(lacking, { env: {} })).warnings).toEqual([
      'resources.f.props: unknown key regions (ignored); did you mean region?',
    ]);
    const setting = yaml(fc3('      region: cn-hangzhou\n      regions: [cn-hangzhou]\n'));
    expect((await loadServerlessConfig(setting, { env: {} })).warnings).toEqual([]);
  });
});

describe('variables spliced into text', () => {
  it('keeps a mapping spliced into text as written, with a notice, never "[object Object]"', async () => {
    const file = yaml(
      `vars:\n  obj:\n    a: 1\n${fc3('      description: prefix-${vars.obj}\n      environmentVariables:\n        D: x-${vars.obj}\n')}`,
    );
    const config = await loadServerlessConfig(file, { env: {} });
    expect(config.functions[0]?.environmentVariables).toEqual({ D: 'x-${vars.obj}' });
    expect(config.warnings).toEqual(['${vars.obj} is not resolved locally and kept as written']);
  });
});

describe('env() and placeholders', () => {
  it("takes env()'s default for a variable set empty, and the empty value when there is no default", async () => {
    const file = yaml(
      fc3("      environmentVariables:\n        WITH: ${env('EMPTY', 'fallback')}\n        WITHOUT: ${env('EMPTY')}\n"),
    );
    const [fn] = (await loadServerlessConfig(file, { env: { EMPTY: '' } })).functions;
    expect(fn?.environmentVariables).toEqual({ WITH: 'fallback', WITHOUT: '' });
  });

  it('says an `s init` placeholder left in the file is not resolved', async () => {
    const file = yaml(fc3('      description: "{{ projectDescription }}"\n'));
    expect((await loadServerlessConfig(file, { env: {} })).warnings).toEqual([
      '{{ projectDescription }} is not resolved locally and kept as written',
    ]);
  });
});

describe('expressions', () => {
  it('takes ${env.NAME} as data: a value holding ${...} is neither expanded nor reported', async () => {
    const file = yaml(`vars:\n  secret: leaked\n${fc3('      environmentVariables:\n        TOKEN: ${env.TOKEN}\n')}`);
    const config = await loadServerlessConfig(file, { env: { TOKEN: 'p${vars.secret}w' } });
    expect(config.functions[0]?.environmentVariables).toEqual({ TOKEN: 'p${vars.secret}w' });
    expect(config.warnings).toEqual([]);
  });

  it('keeps an expression with text after its reference as written, with a notice', async () => {
    const file = yaml(`vars:\n  name: x\n${fc3('      environmentVariables:\n        A: ${vars.name extra}\n')}`);
    const config = await loadServerlessConfig(file, { env: {} });
    expect(config.functions[0]?.environmentVariables).toEqual({ A: '${vars.name extra}' });
    expect(config.warnings).toEqual(['${vars.name extra} is not resolved locally and kept as written']);
  });

  it('reads a file() ending in .yml as YAML', async () => {
    writeFileSync(join(dir, 'cfg.yml'), 'greeting: hello\n');
    const file = yaml(
      `vars:\n  cfg: \${file('./cfg.yml')}\n${fc3('      environmentVariables:\n        G: ${vars.cfg.greeting}\n')}`,
    );
    expect((await loadServerlessConfig(file, { env: {} })).functions[0]?.environmentVariables).toEqual({ G: 'hello' });
  });
});

const entry = fileURLToPath(new URL('./fixtures/echo-handler.mjs', import.meta.url));
const quiet = { entry, port: 0, controlPort: 0, output: () => {} };

/** The error `startEmulator` rejects with; an emulator it started anyway is closed first. */
async function startRefusal(options: EmulatorOptions): Promise<{ code?: string; message: string } | undefined> {
  try {
    const emulator = await startEmulator(options);
    await emulator.close({ timeoutMs: 100 });
    return undefined;
  } catch (error) {
    return error as { code?: string; message: string };
  }
}

describe('startEmulator options: ranges and who counts as loopback', () => {
  it('refuses port 65536 and control port 65536, naming the option and the range', async () => {
    expect((await startRefusal({ ...quiet, port: 65_536 }))?.message).toBe(
      'Expected `port` to be an integer from 0 to 65535, got `65536`',
    );
    expect((await startRefusal({ ...quiet, controlPort: 65_536 }))?.message).toBe(
      'Expected `controlPort` to be an integer from 0 to 65535, got `65536`',
    );
  });

  it('refuses a config or outDir starting with ~, which no shell expanded', async () => {
    for (const key of ['config', 'outDir'] as const) {
      const options =
        key === 'config' ? { ...quiet, entry: undefined, config: '~/app/s.yaml' } : { ...quiet, outDir: '~/out' };
      const error = await startRefusal(options);
      expect(error).toBeInstanceOf(TypeError);
      expect(error?.message).toMatch(new RegExp(`^Expected \`${key}\` to be a path not starting with \`~\``));
    }
  });

  it('refuses credentials whose secret is empty', async () => {
    const error = await startRefusal({ ...quiet, credentials: { accessKeyId: 'dev', accessKeySecret: '' } });
    expect(error).toBeInstanceOf(TypeError);
    expect(error?.message).toBe('Expected `credentials` to have a non-empty accessKeyId and accessKeySecret');
  });

  it('asks for an access key for a control host that only starts like 127.x', async () => {
    const error = await startRefusal({ ...quiet, controlHost: '127.example.com' });
    expect(error?.code).toBe('AccessKeyRequired');
    expect(error?.message).toMatch(/control plane on 127\.example\.com would be reachable from other machines/);
  });

  it('serves a control plane on another 127.x address without an access key, unsigned', async () => {
    const emulator = await startEmulator({ ...quiet, controlHost: '127.0.0.2' });
    try {
      expect(emulator.controlUrl).toMatch(/^http:\/\/127\.0\.0\.2:\d+$/);
      const answer = await fetch(new URL('/2023-03-30/functions/echo-handler/async-tasks', emulator.controlUrl));
      await answer.body?.cancel();
      expect(answer.status).toBe(200);
    } finally {
      await emulator.close({ timeoutMs: 100 });
    }
  });
});

describe('startEmulator defaults', () => {
  it('names an entry whose file name starts with a digit fn-<name>, as FC names must start with a letter or _', async () => {
    const file = join(dir, '2024 report.mjs');
    writeFileSync(file, "export const handler = async () => 'ok';\n");
    const emulator = await startEmulator({ ...quiet, entry: file });
    try {
      expect(emulator.functions).toEqual(['fn-2024-report']);
    } finally {
      await emulator.close({ timeoutMs: 100 });
    }
  });

  it('runs 10 async attempts of a function at once when no concurrency is given', async () => {
    type Gate = { mut20Running?: number; mut20Open?: boolean; mut20Waiting?: (() => void)[] };
    const gate = globalThis as Gate;
    const file = join(dir, 'blocking.mjs');
    writeFileSync(
      file,
      `export const handler = () => {
  if (globalThis.mut20Open) return 'done';
  globalThis.mut20Running = (globalThis.mut20Running ?? 0) + 1;
  return new Promise((resolve) => (globalThis.mut20Waiting ??= []).push(() => resolve('done')));
};
`,
    );
    const emulator = await startEmulator({ ...quiet, entry: file });
    try {
      for (let i = 0; i < 12; i++) {
        const answer = await fetch(`${emulator.triggerUrl}/`, {
          method: 'POST',
          headers: { 'x-fc-invocation-type': 'Async' },
        });
        await answer.body?.cancel();
        expect(answer.status).toBe(202);
      }
      await waitFor(() => ((gate.mut20Running ?? 0) >= 10 ? true : undefined), 5000);
      expect(gate.mut20Running).toBe(10);
    } finally {
      gate.mut20Open = true;
      for (const release of gate.mut20Waiting ?? []) release();
      await emulator.close({ timeoutMs: 1000 });
    }
  });

  it("gives an entry FC's 60 s timeout when none is set", async () => {
    const emulator = await startEmulator(quiet);
    try {
      const answer = await fetch(`${emulator.triggerUrl}/`);
      const body = (await answer.json()) as { context: { function: { name: string; timeout: number } } };
      expect(body.context.function).toMatchObject({ name: 'echo-handler', timeout: 60 });
    } finally {
      await emulator.close({ timeoutMs: 100 });
    }
  });
});

describe('fc-async dev reads whole numbers only, in decimal', () => {
  it.each([
    ['--port', '1e3', 'expected an integer from 0 to 65535'],
    ['--concurrency', '0x10', 'expected an integer from 1 to 10000'],
  ])('refuses %s %s in one line, exit 1', async (flag, value, expected) => {
    const { code, stderr } = await runCli(['dev', entry, flag, value]);
    expect(code).toBe(1);
    expect(stderr.trimEnd().split('\n')).toEqual([
      expect.stringMatching(
        new RegExp(`^fc-async: option '${flag} <\\w+>' argument '${value}' is invalid\\. ${expected} `),
      ),
    ]);
  });
});

describe('fc-async dev with half an access key', () => {
  it.each([
    ['the id alone', { FC_ASYNC_ACCESS_KEY_ID: 'dev', FC_ASYNC_ACCESS_KEY_SECRET: '' }],
    ['the secret alone', { FC_ASYNC_ACCESS_KEY_ID: '', FC_ASYNC_ACCESS_KEY_SECRET: 'dev-secret' }],
  ])('refuses %s in one line, exit 1, rather than serve with no key', async (_label, env) => {
    const { code, stderr } = await runCli(['dev', entry, '--port', '0', '--control-port', '0'], { env });
    expect(code).toBe(1);
    expect(stderr).toBe('fc-async: set both FC_ASYNC_ACCESS_KEY_ID and FC_ASYNC_ACCESS_KEY_SECRET, or neither\n');
  });
});

describe("fc-async dev keeps the control plane's key from the functions", () => {
  it('takes FC_ASYNC_ACCESS_KEY_ID and _SECRET out of the environment a function reads', async () => {
    const file = join(dir, 'env-reader.mjs');
    writeFileSync(
      file,
      'export const handler = async () => JSON.stringify({ id: process.env.FC_ASYNC_ACCESS_KEY_ID ?? null, secret: process.env.FC_ASYNC_ACCESS_KEY_SECRET ?? null });\n',
    );
    const run = await startCli([file], {
      env: { FC_ASYNC_ACCESS_KEY_ID: 'dev', FC_ASYNC_ACCESS_KEY_SECRET: 'dev-SECRET' },
    });
    try {
      const answer = await fetch(`${run.trigger}/`);
      expect(await answer.json()).toEqual({ id: null, secret: null });
    } finally {
      await run.stop();
    }
  });
});

describe('fc-async dev --redact-header, given more than once', () => {
  it('keeps every header named out of the task, not only the last', async () => {
    const run = await startCli([entry, '--redact-header', 'x-one', '--redact-header', 'X-Two']);
    try {
      const accepted = await fetch(`${run.trigger}/`, {
        method: 'POST',
        headers: {
          'x-fc-invocation-type': 'Async',
          'x-fc-async-task-id': 'redact2',
          'x-one': 'first-SECRET',
          'x-two': 'second-SECRET',
          'x-three': 'kept',
        },
      });
      await accepted.body?.cancel();
      expect(accepted.status).toBe(202);
      const task = await waitFor(async () => {
        const answer = await fetch(new URL('2023-03-30/functions/echo-handler/async-tasks/redact2', run.control));
        const text = await answer.text();
        return answer.status === 200 && JSON.parse(text).status === 'Succeeded' ? text : undefined;
      });
      expect(task).not.toContain('SECRET');
      expect(JSON.parse(JSON.parse(task).taskPayload).headers).toMatchObject({ 'x-three': 'kept' });
    } finally {
      await run.stop();
    }
  });
});

describe('destination ARNs, delivered', () => {
  it('takes an FC 2.0 ARN whose service carries a qualifier (svc.LATEST) for the function of that service here', async () => {
    const root = mkdtempSync(join(dir, 'latest-'));
    writeFileSync(
      join(root, 'index.mjs'),
      `export const web = (req, resp) => resp.send('ok');
export const worker = async (event) => { (globalThis.mut20Records ??= []).push(JSON.parse(event.toString())); };
`,
    );
    const fn = (name: string, handler: string, extra: string) =>
      `  ${name}:\n    component: fc\n    props:\n      service:\n        name: svc\n      function:\n        name: ${name}\n        runtime: nodejs18\n        codeUri: ./\n        handler: index.${handler}\n${extra}`;
    const config = join(root, 's.yaml');
    writeFileSync(
      config,
      `edition: 1.0.0\nservices:\n${fn('web', 'web', '        asyncConfiguration:\n          destination:\n            onSuccess: acs:fc:cn-hangzhou:123:services/svc.LATEST/functions/worker\n      triggers:\n        - name: http\n          type: http\n')}${fn('worker', 'worker', '')}`,
    );
    const emulator = await startEmulator({ ...quiet, entry: undefined, config, outDir: join(root, 'out') });
    try {
      const answer = await fetch(`${emulator.triggerUrl}/`, { headers: { 'x-fc-invocation-type': 'Async' } });
      await answer.body?.cancel();
      expect(answer.status).toBe(202);
      const records = globalThis as { mut20Records?: { requestContext: { functionArn: string } }[] };
      const record = await waitFor(() => records.mut20Records?.[0]);
      expect(record.requestContext.functionArn).toMatch(/functions\/web$/);
    } finally {
      await emulator.close({ timeoutMs: 1000 });
    }
  });

  it('types the CloudEvent of a failed task fc:AsyncInvoke:failed on an EventBridge onFailure', async () => {
    const root = mkdtempSync(join(dir, 'bus-'));
    writeFileSync(join(root, 'fail.mjs'), "export const handler = async () => { throw new Error('no'); };\n");
    const config = join(root, 's.yaml');
    writeFileSync(
      config,
      "resources:\n  jobs:\n    component: fc3\n    props:\n      functionName: jobs\n      code: ./\n      handler: fail.handler\n      triggers: [{ triggerName: http, triggerType: http }]\n      asyncInvokeConfig:\n        maxAsyncRetryAttempts: 0\n        destinationConfig:\n          onFailure: { destination: 'acs:eventbridge:cn-hangzhou:123:eventbus/default' }\n",
    );
    const emulator = await startEmulator({ ...quiet, entry: undefined, config, outDir: join(root, 'out') });
    try {
      const answer = await fetch(`${emulator.triggerUrl}/`, { headers: { 'x-fc-invocation-type': 'Async' } });
      await answer.body?.cancel();
      expect(answer.status).toBe(202);
      const line = await waitFor(() => {
        try {
          return readFileSync(join(root, 'out', 'jobs.onFailure.jsonl'), 'utf8').split('\n')[0] || undefined;
        } catch {
          return undefined;
        }
      });
      expect(JSON.parse(line)).toMatchObject({
        type: 'fc:AsyncInvoke:failed',
        data: { requestContext: { condition: 'UnhandledInvocationError' } },
      });
    } finally {
      await emulator.close({ timeoutMs: 1000 });
    }
  });
});
