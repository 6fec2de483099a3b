// biome-ignore-all lint/suspicious/noTemplateCurlyInString: the s.yaml texts here are written in Serverless Devs variable syntax
import { mkdirSync, mkdtempSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { type Emulator, loadServerlessConfig, startEmulator } from '../src/index.js';
import { fixture, runCli } from './helpers.js';

// What a new user's typos in an s.yaml give: a notice naming the path (and the key meant), or,
// for what FC itself refuses at deploy, a one-line refusal.
const dir = mkdtempSync(join(tmpdir(), 'fc-async-config-typos-'));
mkdirSync(join(dir, 'app'));
writeFileSync(join(dir, 'app', 'index.js'), 'exports.handler = () => 1;\n');
let n = 0;
function yaml(text: string): string {
  const file = join(dir, 'app', `s-t${++n}.yaml`);
  writeFileSync(file, text);
  return file;
}

const fc3 = (props: string) =>
  `resources:\n  f:\n    component: fc3\n    props:\n      functionName: f\n      runtime: nodejs20\n      code: ./\n      handler: index.handler\n${props}`;
const fc2 = (props: string, fn = '') =>
  `edition: 1.0.0\nservices:\n  f:\n    component: fc\n    props:\n      service:\n        name: svc\n      function:\n        name: f\n        runtime: nodejs16\n        codeUri: ./\n        handler: index.handler\n${fn}${props}`;
const httpTrigger = (entry: string, config = '') =>
  `      triggers:\n        - triggerName: web\n          triggerType: http\n${entry}          triggerConfig:\n            authType: anonymous\n            methods: [GET]\n${config}`;

const warningsOf = async (text: string) => (await loadServerlessConfig(yaml(text), { env: {} })).warnings;

/** The `InvalidConfig` problem loading `text` gives, after the file name the message starts with. */
async function refusal(text: string): Promise<string> {
  const file = yaml(text);
  const error = await loadServerlessConfig(file, { env: {} }).then(
    () => undefined,
    (e: unknown) => e as { code?: string; message: string },
  );
  expect(error?.code).toBe('InvalidConfig');
  expect(error?.message.startsWith(`${file}: `)).toBe(true);
  return (error as { message: string }).message.slice(file.length + 2);
}

describe('a misspelt key of a block the emulator reads gets a notice with the key meant', () => {
  it('asyncInvokeConfig.maxAsyncRetryAttemps (the default retry count would be used)', async () => {
    const config = await loadServerlessConfig(
      yaml(fc3('      asyncInvokeConfig:\n        maxAsyncRetryAttemps: 2\n')),
      { env: {} },
    );
    expect(config.warnings).toEqual([
      'resources.f.props.asyncInvokeConfig: unknown key maxAsyncRetryAttemps (ignored); did you mean maxAsyncRetryAttempts?',
    ]);
    expect(config.functions[0]?.asyncConfig).toEqual({});
  });

  it('asyncInvokeConf: (the whole block would be ignored)', async () => {
    expect(await warningsOf(fc3('      asyncInvokeConf:\n        maxAsyncRetryAttempts: 2\n'))).toEqual([
      'resources.f.props: unknown key asyncInvokeConf (ignored); did you mean asyncInvokeConfig?',
    ]);
  });

  it('triggerTyp: http (the function would quietly become an event function)', async () => {
    const config = await loadServerlessConfig(
      yaml(fc3('      triggers:\n        - triggerName: web\n          triggerTyp: http\n')),
      { env: {} },
    );
    expect(config.warnings).toEqual([
      'resources.f.props.triggers[0]: has no triggerType but has triggerTyp; did you mean triggerType? (the trigger is ignored, so f gets no HTTP trigger from it)',
    ]);
    expect(config.functions[0]?.http).toBeUndefined();
  });

  it.each(['htpp', 'HTTP', 'htp'])(
    'triggerType: %s (the function would quietly become an event function)',
    async (type) => {
      const config = await loadServerlessConfig(
        yaml(fc3(`      triggers:\n        - triggerName: web\n          triggerType: ${type}\n`)),
        { env: {} },
      );
      expect(config.warnings).toEqual([
        `resources.f.props.triggers[0].triggerType: "${type}" is not a trigger type; did you mean http? (the trigger is ignored, so f gets no HTTP trigger from it)`,
      ]);
      expect(config.functions[0]?.http).toBeUndefined();
    },
  );

  it('triggerType: timer, oss or log (other FC trigger types) gets no notice', async () => {
    for (const type of ['timer', 'oss', 'log', 'eventbridge']) {
      expect(
        await warningsOf(fc3(`      triggers:\n        - triggerName: t\n          triggerType: ${type}\n`)),
      ).toEqual([]);
    }
  });

  it("an HTTP trigger's entry and triggerConfig: close keys are named, others only said unknown", async () => {
    const text = fc3(
      httpTrigger('          qualifer: LATEST\n          labels: x\n', '            authTyp: function\n'),
    );
    expect(await warningsOf(text)).toEqual([
      'resources.f.props.triggers[0]: unknown key qualifer (ignored); did you mean qualifier?',
      'resources.f.props.triggers[0]: unknown key labels (ignored)',
      'resources.f.props.triggers[0].triggerConfig: unknown key authTyp (ignored); did you mean authType?',
    ]);
  });

  it('FC 2.0: asyncConfiguration, its destination, and a trigger `tpye`', async () => {
    const fn =
      '        asyncConfiguration:\n          statefullInvocation: true\n          destination:\n            onSucess: acs:fc:::services/svc/functions/f\n';
    const triggers = '      triggers:\n        - name: web\n          tpye: http\n';
    expect(await warningsOf(fc2(triggers, fn))).toEqual([
      'services.f.props.triggers[0]: has no type but has tpye; did you mean type? (the trigger is ignored, so f gets no HTTP trigger from it)',
      'services.f.props.function.asyncConfiguration: unknown key statefullInvocation (ignored); did you mean statefulInvocation?',
      'services.f.props.function.asyncConfiguration.destination: unknown key onSucess (ignored); did you mean onSuccess?',
    ]);
  });

  it('FC 2.0: a misspelt `trigger:` and function `timout:`', async () => {
    const text = fc2('      trigger:\n        - name: web\n          type: http\n', '        timout: 30\n');
    expect(await warningsOf(text)).toEqual([
      'services.f.props: unknown key trigger (ignored); did you mean triggers?',
      'services.f.props.function: unknown key timout (ignored); did you mean timeout?',
    ]);
  });

  it('keys of the fc3 component, newer ones and props far from what is read get no notice', async () => {
    const text = fc3(
      '      role: acs:ram::1:role/r\n      cpu: 0.5\n      scalingConfig:\n        minInstances: 1\n      someFutureField: 1\n' +
        '      asyncInvokeConfig:\n        qualifier: LATEST\n        asyncTask: true\n' +
        httpTrigger(
          '          qualifier: LATEST\n          description: web\n          sourceArn: x\n          invocationRole: y\n',
          '            disableURLInternet: false\n            authConfig: "{}"\n',
        ),
    );
    expect(await warningsOf(text)).toEqual([]);
  });

  it('destinationConfig keeps refusing an unknown key', async () => {
    expect(
      await refusal(
        fc3(
          '      asyncInvokeConfig:\n        destinationConfig:\n          onSucess:\n            destination: acs:fc:::functions/f\n',
        ),
      ),
    ).toBe(
      'resources.f.props.asyncInvokeConfig.destinationConfig has an unknown key onSucess; did you mean onSuccess?',
    );
  });
});

describe('an HTTP method FC does not take is refused, naming the function and the value', () => {
  it('FC 3.0: methods: [GET, PSOT]', async () => {
    const text = fc3(httpTrigger('').replace('methods: [GET]', 'methods: [GET, PSOT]'));
    expect(await refusal(text)).toBe(
      'resources.f.props.triggers[0].triggerConfig.methods of function f: "PSOT" is not an HTTP method FC takes (GET, POST, PUT, DELETE, HEAD, PATCH, OPTIONS); did you mean POST?',
    );
  });

  it('FC 2.0: methods: [FETCH]; lower case names are taken', async () => {
    const trigger = (methods: string) =>
      `      triggers:\n        - name: web\n          type: http\n          config:\n            authType: anonymous\n            methods: ${methods}\n`;
    expect(await refusal(fc2(trigger('[get, FETCH]')))).toBe(
      'services.f.props.triggers[0].config.methods of function f: "FETCH" is not an HTTP method FC takes (GET, POST, PUT, DELETE, HEAD, PATCH, OPTIONS)',
    );
    expect(await warningsOf(fc2(trigger('[get, patch]')))).toEqual([]);
  });
});

describe('a YAML syntax error is one line, with its line, column and the line quoted', () => {
  const broken =
    'edition: 3.0.0\nresources:\n  f:\n    component: fc3\n    props:\n      functionName: f\n     code: ./\n';

  it('from loadServerlessConfig', async () => {
    expect(await refusal(broken)).toBe(
      'invalid YAML: All mapping items must start at the same column at line 7, column 1, in the line "     code: ./"',
    );
  });

  // The line of a file() is not quoted: the file may hold secrets (the line and column say where).
  it('a tab is shown escaped, and a file() of invalid YAML is one line too', async () => {
    expect(await refusal('a:\n\tb: 1\n')).toBe(
      'invalid YAML: Tabs are not allowed as indentation at line 2, column 1, in the line "\\tb: 1"',
    );
    writeFileSync(join(dir, 'app', 'env.yaml'), 'A: 1\n  B: 2\n');
    expect(await refusal(fc3("      environmentVariables: ${file('./env.yaml')}\n"))).toBe(
      "resources.f.props: file('./env.yaml') is not valid yaml: Nested mappings are not allowed in compact mappings at line 1, column 4",
    );
  });

  it('fc-async dev --config prints it as one line and exits 1', async () => {
    const file = basename(yaml(broken));
    const { code, stderr } = await runCli(['dev', '--config', file, '--port', '0', '--control-port', '0'], {
      cwd: join(dir, 'app'),
    });
    expect(code).toBe(1);
    expect(stderr).toBe(
      `fc-async: ${file}: invalid YAML: All mapping items must start at the same column at line 7, column 1, in the line "     code: ./"\n`,
    );
  });
});

describe('what a user reads at start', () => {
  let emulator: Emulator | undefined;
  afterEach(async () => {
    await emulator?.close({ timeoutMs: 0 });
    emulator = undefined;
  });

  it('the notice is one log line naming the file', async () => {
    const file = yaml(fc3('      asyncInvokeConfig:\n        maxAsyncRetryAttemps: 2\n'));
    const lines: string[] = [];
    emulator = await startEmulator({ config: file, port: 0, controlPort: 0, output: (text) => lines.push(text) });
    const notice = lines
      .join('')
      .split('\n')
      .find((line) => line.includes('maxAsyncRetryAttemps'));
    expect(notice).toMatch(
      new RegExp(
        `^\\d\\d:\\d\\d:\\d\\d\\.\\d{3} INFO  ${basename(file)}: resources\\.f\\.props\\.asyncInvokeConfig: unknown key maxAsyncRetryAttemps \\(ignored\\); did you mean maxAsyncRetryAttempts\\?$`,
      ),
    );
  });
});

describe('real-world files', () => {
  it('get no notice about their keys', async () => {
    const root = fixture('real-world');
    const files = readdirSync(root).flatMap((d) =>
      readdirSync(join(root, d))
        .filter((f) => /^s.*\.ya?ml$/.test(f))
        .map((f) => join(root, d, f)),
    );
    expect(files.length).toBeGreaterThan(10);
    for (const file of files) {
      const config = await loadServerlessConfig(file, { env: { FC_COMPONENT: 'fc3' } });
      expect(config.warnings.filter((w) => /unknown key|did you mean|has no /.test(w))).toEqual([]);
    }
  });
});
