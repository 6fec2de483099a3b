// biome-ignore-all lint/suspicious/noTemplateCurlyInString: the values here are written in Serverless Devs variable syntax
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadServerlessConfig } from '../src/index.js';

// A value an s.yaml expression produced (an environment variable, the .env beside the file, a
// file(), json(), vars) may be a secret: an error about it names the expression, never the value.
// A value typed in the s.yaml is still quoted.

const SECRET = 'hunter2-SECRET';
const dir = mkdtempSync(join(tmpdir(), 'fc-async-config-secrets-'));
mkdirSync(join(dir, 'app'));
writeFileSync(join(dir, 'app', 'index.js'), 'exports.handler = () => 1;\n');
writeFileSync(join(dir, 'app', '.env'), `DOTENV_PW=${SECRET}-dotenv\n`);
writeFileSync(join(dir, 'app', 'async.json'), JSON.stringify({ maxAsyncRetryAttempts: `${SECRET}-file` }));
writeFileSync(join(dir, 'app', 'broken.json'), `{"password": ${SECRET}-broken}`);
writeFileSync(join(dir, 'app', 'broken.yaml'), `a: 1\npassword: ${SECRET}-yaml: x\n`);
let n = 0;

const fc3 = (props: string, head = '') =>
  `${head}resources:\n  f:\n    component: fc3\n    props:\n      functionName: f\n      code: ./\n      handler: index.handler\n${props}`;

const fc2 = (props: string) =>
  `edition: 1.0.0\nservices:\n  f:\n    component: fc\n    props:\n      region: cn-hangzhou\n      service:\n        name: s\n      function:\n        name: f\n        codeUri: ./\n        handler: index.handler\n        runtime: nodejs16\n${props.replace(/^ {6}/gm, '        ')}`;

/** The problem loading `text` is refused for (`InvalidConfig`), the environment holding the secret. */
async function refusal(text: string): Promise<string> {
  const file = join(dir, 'app', `s${++n}.yaml`);
  writeFileSync(file, text);
  const env = { ENV_PW: `${SECRET}-env`, API_TOKEN: `${SECRET}-token`, N: '99' };
  const error = await loadServerlessConfig(file, { env }).then(
    () => undefined,
    (e: unknown) => e as { code?: string; message: string },
  );
  expect(error?.code).toBe('InvalidConfig');
  return (error as { message: string }).message.slice(file.length + 2);
}

describe('an s.yaml error about a value an expression produced', () => {
  it.each([
    [
      'a timeout from the .env',
      fc3('      timeout: ${env(DOTENV_PW)}\n'),
      'resources.f.props.timeout must be an integer from 1 to 86400 (seconds), got the value of ${env(DOTENV_PW)}, which is text',
    ],
    [
      'a timeout from the environment, spliced into text',
      fc3('      timeout: x-${env.ENV_PW}\n'),
      'resources.f.props.timeout must be an integer from 1 to 86400 (seconds), got the value of "x-${env.ENV_PW}", which is text',
    ],
    [
      'json() of an environment variable that is not JSON',
      fc3('      environmentVariables: ${json(env("API_TOKEN"))}\n'),
      'resources.f.props: json() got text that is not JSON: the value of env("API_TOKEN")',
    ],
    [
      'retries read from a file()',
      fc3("      asyncInvokeConfig: ${file('./async.json')}\n"),
      "resources.f.props.asyncInvokeConfig.maxAsyncRetryAttempts must be an integer from 0 to 8, got the value of ${file('./async.json')}, which is text",
    ],
    [
      'retries from vars that hold an environment variable',
      fc3(
        '      asyncInvokeConfig:\n        maxAsyncRetryAttempts: ${vars.retries}\n',
        'vars:\n  retries: ${env(N)}\n',
      ),
      'resources.f.props.asyncInvokeConfig.maxAsyncRetryAttempts must be an integer from 0 to 8, got the value of ${vars.retries}, which is text',
    ],
    [
      'a destination ARN from the environment',
      fc3(
        '      asyncInvokeConfig:\n        destinationConfig:\n          onFailure:\n            destination: ${env(ENV_PW)}\n',
      ),
      'resources.f.props.asyncInvokeConfig.destinationConfig onFailure.destination is not an FC, MNS, EventBridge or RocketMQ ARN: the value of ${env(ENV_PW)}',
    ],
    [
      'a function name in a list typed in the s.yaml',
      fc3('').replace('functionName: f', 'functionName: [a, "${env(ENV_PW)}"]'),
      'resources.f.props.functionName must be an FC function name (1 to 64 letters, digits, _ and -, starting with a letter or _), got a list holding the value of ${env(ENV_PW)}',
    ],
  ])('%s: names the expression, not the value', async (_label, text, message) => {
    const problem = await refusal(text);
    expect(problem).toBe(message);
    expect(problem).not.toContain(SECRET);
  });

  it.each([
    ["      environmentVariables: ${file('./broken.json')}\n", /file\('\.\/broken\.json'\) is not valid json: /],
    ["      environmentVariables: ${file('./broken.yaml')}\n", /file\('\.\/broken\.yaml'\) is not valid yaml: /],
  ])('a file() that does not parse: the problem without its text (%#)', async (props, message) => {
    const problem = await refusal(fc3(props));
    expect(problem).toMatch(message);
    // JSON.parse quotes a stretch of the text around the error, cut short: any of it.
    expect(problem).not.toContain('hunter2');
  });

  it.each([
    [
      'fc3',
      '      asyncInvokeConfig:\n        destinationConfig:\n          onSuccess:\n            destination: HOOK\n',
      'resources.f.props.asyncInvokeConfig.destinationConfig onSuccess.destination',
    ],
    [
      'fc2',
      '      asyncConfiguration:\n        destination:\n          onSuccess: HOOK\n',
      'services.f.props.function.asyncConfiguration.destinationConfig onSuccess.destination',
    ],
  ])('masks a webhook URL typed as a destination (%s): no password, no token', async (kind, props, where) => {
    const hook = 'https://hook-user:HOOKPASSWORD@hooks.example.com/fc?token=YAMLSECRET';
    const text = kind === 'fc3' ? fc3(props.replace('HOOK', hook)) : fc2(props.replace('HOOK', hook));
    const problem = await refusal(text);
    expect(problem).toBe(
      `${where} is not an FC, MNS, EventBridge or RocketMQ ARN: https://***@hooks.example.com/fc?***`,
    );
    expect(problem).not.toMatch(/HOOKPASSWORD|YAMLSECRET|hook-user/);
  });

  it('still quotes a value typed in the s.yaml', async () => {
    expect(await refusal(fc3('      timeout: 60s\n'))).toBe(
      'resources.f.props.timeout must be an integer from 1 to 86400 (seconds), got "60s"',
    );
    expect(await refusal(fc3("      description: ${json('not json')}\n"))).toBe(
      'resources.f.props: json() got text that is not JSON: not json',
    );
  });
});
