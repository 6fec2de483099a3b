// biome-ignore-all lint/suspicious/noTemplateCurlyInString: the s.yaml texts here are written in Serverless Devs variable syntax
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadServerlessConfig } from '../src/index.js';
import { dotenvParse } from '../src/serverless-doc.js';

// Edges of the s.yaml a new user's walkthrough met: `.env` quotes, a bad value in a file the
// s.yaml extends, a code folder that is not there, a misspelt destinationConfig side.

/** A folder with `files` (path → text) and an `index.js` handler under `code/`. */
function project(files: Record<string, string>): string {
  const dir = mkdtempSync(join(tmpdir(), 'fc-async-edges-'));
  mkdirSync(join(dir, 'code'));
  writeFileSync(join(dir, 'code', 'index.js'), 'exports.handler = () => 1;\n');
  for (const [path, text] of Object.entries(files)) writeFileSync(join(dir, path), text);
  return dir;
}

const fc3 = (props: string) =>
  `resources:\n  api:\n    component: fc3\n    props:\n      functionName: api\n      runtime: nodejs20\n${props}`;
const CODE = '      code: ./code\n      handler: index.handler\n';

/** The message of the `InvalidConfig` error loading `file` gives. */
async function refusal(file: string): Promise<string> {
  const error = await loadServerlessConfig(file, { env: {} }).then(
    () => undefined,
    (e: unknown) => e as { code?: string; message: string },
  );
  expect(error?.code).toBe('InvalidConfig');
  return (error as { message: string }).message;
}

describe('.env beside the s.yaml is read as dotenv reads it', () => {
  const ENV = 'A="quoted value" # comment\nB=\'single\' # c\nC=plain # c\nD="has # hash"\nexport E=`tick`\n';
  const EXPECTED = { A: 'quoted value', B: 'single', C: 'plain', D: 'has # hash', E: 'tick' };

  it('strips the quotes of a quoted value followed by a comment', async () => {
    const vars = Object.keys(EXPECTED)
      .map((k) => `        ${k}: \${env('${k}')}\n`)
      .join('');
    const dir = project({ '.env': ENV, 's.yaml': fc3(`${CODE}      environmentVariables:\n${vars}`) });
    const { functions } = await loadServerlessConfig(join(dir, 's.yaml'), { env: {} });
    expect(functions[0]?.environmentVariables).toEqual(EXPECTED);
  });

  it('reads the same without Node.js util.parseEnv (Node 20.11): quotes, comments, multi-line values', () => {
    expect(dotenvParse(ENV)).toEqual(EXPECTED);
    expect(dotenvParse('M="line 1\\nline 2"\nN="two\nlines"\r\nO=a#b\nP = spaced  \n')).toEqual({
      M: 'line 1\nline 2',
      N: 'two\nlines',
      O: 'a',
      P: 'spaced',
    });
  });
});

describe('a bad value in a file the s.yaml extends', () => {
  it('is blamed on the file that holds it', async () => {
    const dir = project({
      'base.yaml': fc3(`${CODE}      timeout: 0\n`),
      's.yaml': 'extend: base.yaml\nresources:\n  api:\n    props:\n      memorySize: 512\n',
    });
    expect(await refusal(join(dir, 's.yaml'))).toBe(
      `${join(dir, 'base.yaml')}: resources.api.props.timeout must be an integer from 1 to 86400 (seconds), got 0`,
    );
  });

  it("is the s.yaml's own when the s.yaml sets the key over the base's", async () => {
    const dir = project({
      'base.yaml': fc3(`${CODE}      timeout: 5\n`),
      's.yaml': 'extend: base.yaml\nresources:\n  api:\n    props:\n      timeout: 0\n',
    });
    expect(await refusal(join(dir, 's.yaml'))).toMatch(/^.*\/s\.yaml: resources\.api\.props\.timeout must be/);
  });

  it('lists the files when none of them sets the key', async () => {
    const dir = project({
      'base.yaml': fc3('      handler: index.handler\n'),
      's.yaml': 'extend: base.yaml\nresources:\n  api:\n    props:\n      memorySize: 512\n',
    });
    const file = join(dir, 's.yaml');
    expect(await refusal(file)).toBe(
      `${file}: resources.api.props.code must be the path of the code folder (OSS code cannot run locally) (from ${file} or a file it extends: ${join(dir, 'base.yaml')})`,
    );
  });
});

describe('what a new user mistypes in an fc3 resource', () => {
  it('a code folder that is not there is named as such, not as the handler missing', async () => {
    const dir = project({ 's.yaml': fc3('      code: ./nocode\n      handler: index.handler\n') });
    expect(await refusal(join(dir, 's.yaml'))).toBe(
      `${join(dir, 's.yaml')}: resources.api.props.code ./nocode is not a folder: nothing is at ${join(dir, 'nocode')}`,
    );
  });

  it('an unknown destinationConfig side gets a "did you mean"', async () => {
    const dir = project({
      's.yaml': fc3(
        `${CODE}      asyncInvokeConfig:\n        destinationConfig:\n          onFailur:\n            destination: acs:fc:::functions/f\n`,
      ),
    });
    expect(await refusal(join(dir, 's.yaml'))).toMatch(
      /resources\.api\.props\.asyncInvokeConfig\.destinationConfig has an unknown key onFailur; did you mean onFailure\?$/,
    );
  });

  it('a function name past 64 characters is refused with the limit', async () => {
    const dir = project({ 's.yaml': fc3(CODE).replace('functionName: api', `functionName: ${'a'.repeat(70)}`) });
    expect(await refusal(join(dir, 's.yaml'))).toContain('must be an FC function name (1 to 64 letters');
  });
});

describe('what a deep read of the s.yaml loader found (review 18)', () => {
  it('resolves ${this.*} of a referenced resource against that resource, not the one referring to it', async () => {
    const dir = project({
      's.yaml': `vars:
  prefix: demo
resources:
  dest:
    component: fc3
    props:
      functionName: \${vars.prefix}-\${this.name}
      runtime: nodejs20
${CODE}  api:
    component: fc3
    props:
      functionName: \${vars.prefix}-\${this.name}
      runtime: nodejs20
${CODE}      environmentVariables:
        DEST: \${resources.dest.props.functionName}
      asyncInvokeConfig:
        destinationConfig:
          onSuccess:
            destination: acs:fc:cn-hangzhou:\${config('AccountID')}:functions/\${resources.dest.props.functionName}
`,
    });
    const { functions } = await loadServerlessConfig(join(dir, 's.yaml'), { env: {} });
    const api = functions.find((f) => f.name === 'demo-api');
    // It was demo-api: api became its own destination, a chain of records.
    expect(api?.environmentVariables?.DEST).toBe('demo-dest');
    expect(api?.asyncConfig?.destinationConfig?.onSuccess?.destination).toBe(
      'acs:fc:cn-hangzhou:0:functions/demo-dest',
    );
  });

  it('finds the file of a handler whose module name has a dot (main.bundle.handler: code/main.bundle.js)', async () => {
    const dir = project({ 's.yaml': fc3('      code: ./code\n      handler: main.bundle.handler\n') });
    writeFileSync(join(dir, 'code/main.bundle.js'), 'exports.handler = () => 1;\n');
    const { functions } = await loadServerlessConfig(join(dir, 's.yaml'), { env: {} });
    expect(functions[0]).toMatchObject({ file: join(dir, 'code/main.bundle.js'), exportName: 'handler' });
  });

  it('reads a hundred and more resources merging one anchor that holds an alias itself', async () => {
    const lines = ['x-trigger: &trigger', '  - triggerName: http', '    triggerType: http', 'x-common: &common'];
    lines.push(
      '  runtime: nodejs20',
      '  code: ./code',
      '  handler: index.handler',
      '  triggers: *trigger',
      'resources:',
    );
    for (let i = 0; i < 150; i++) {
      lines.push(`  f${i}:`, '    component: fc3', '    props:', '      <<: *common', `      functionName: f${i}`);
    }
    const dir = project({ 's.yaml': `${lines.join('\n')}\n` });
    // It was a bare ReferenceError past 46 such resources: yaml's default maxAliasCount (100).
    const { functions } = await loadServerlessConfig(join(dir, 's.yaml'), { env: {} });
    expect(functions).toHaveLength(150);
  });

  it('refuses aliases that expand past a million values, or that hold their own anchor, naming the file', async () => {
    const laughs = ['x-0: &a0 [l, l, l, l, l, l, l, l, l, l]'];
    for (let i = 1; i < 9; i++)
      laughs.push(
        `x-${i}: &a${i} [${Array(10)
          .fill(`*a${i - 1}`)
          .join(', ')}]`,
      );
    const bomb = project({ 's.yaml': `${laughs.join('\n')}\n${fc3(CODE)}` });
    expect(await refusal(join(bomb, 's.yaml'))).toMatch(/s\.yaml: its aliases expand to more than 1000000 values/);
    // Under yaml's alias count, over the expanded size: an anchor of 2,000 values aliased 600 times.
    const wide = `x-wide: &wide [${Array(2000).fill('w').join(', ')}]\nx-copies: [${Array(600).fill('*wide').join(', ')}]\n`;
    const big = project({ 's.yaml': `${wide}${fc3(CODE)}` });
    expect(await refusal(join(big, 's.yaml'))).toMatch(/s\.yaml: its aliases expand to more than 1000000 values/);
    const loop = project({ 's.yaml': fc3(`${CODE}      x-self: &self\n        again: *self\n`) });
    expect(await refusal(join(loop, 's.yaml'))).toBe(
      `${join(loop, 's.yaml')}: has an alias inside the mapping or list its anchor names (a loop)`,
    );
  });
});
