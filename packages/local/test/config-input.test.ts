import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadServerlessConfig } from '../src/index.js';

const dir = mkdtempSync(join(tmpdir(), 'fc-async-config-input-'));
mkdirSync(join(dir, 'app'));
writeFileSync(join(dir, 'app', 'index.js'), 'exports.handler = () => 1;\n');
// A code folder that is there but holds no handler file.
mkdirSync(join(dir, 'elsewhere'));
let n = 0;
function yaml(text: string): string {
  const file = join(dir, 'app', `s${++n}.yaml`);
  writeFileSync(file, text);
  return file;
}

const fc3 = (props: string, head = '') =>
  `${head}resources:\n  f:\n    component: fc3\n    props:\n      functionName: f\n      code: ./\n      handler: index.handler\n${props}`;

/** The `InvalidConfig` error loading `text` gives (it names the file). */
async function refusal(text: string): Promise<string> {
  const file = yaml(text);
  const error = await loadServerlessConfig(file).then(
    () => undefined,
    (e: unknown) => e as { code?: string; message: string },
  );
  expect(error?.code).toBe('InvalidConfig');
  expect(error?.message.startsWith(`${file}: `)).toBe(true);
  return (error as { message: string }).message.slice(file.length + 2);
}

describe('an s.yaml that cannot be served is refused, naming the file and the problem', () => {
  it('a destination that is not an ARN (as PutAsyncInvokeConfig refuses it)', async () => {
    const problem = await refusal(
      fc3(
        '      asyncInvokeConfig:\n        destinationConfig:\n          onFailure:\n            destination: not-an-arn\n',
      ),
    );
    expect(problem).toMatch(/asyncInvokeConfig\.destinationConfig.*onFailure.*not an FC, MNS.*ARN: not-an-arn/);
  });

  it.each([['0.5'], ['0'], ['86401'], ['1e10']])('a timeout of %s s (FC: whole seconds, 1 to 86400)', async (t) => {
    expect(await refusal(fc3(`      timeout: ${t}\n`))).toMatch(
      /^resources\.f\.props\.timeout must be an integer from 1 to 86400/,
    );
  });

  it('a code folder outside the s.yaml folder that has no handler: the paths it looked at', async () => {
    const problem = await refusal(fc3('').replace('code: ./', 'code: ../elsewhere'));
    expect(problem).toContain('none of ../elsewhere/index.js, ../elsewhere/index.mjs');
  });

  it('a reference to itself', async () => {
    const problem = await refusal(
      fc3(`      environmentVariables:\n        A: \${vars.a}\n`, `vars:\n  a: \${vars.b}\n  b: \${vars.a}\n`),
    );
    expect(problem).toMatch(/^resources\.f\.props: .*refers to itself/);
  });

  it('references that expand exponentially are refused, not expanded for ever', async () => {
    const levels = Array.from(
      { length: 7 },
      (_, i) =>
        `  v${i}: [${Array(12)
          .fill(`"\${vars.v${i + 1}}"`)
          .join(', ')}]`,
    );
    const vars = `vars:\n${levels.join('\n')}\n  v7: x\n`;
    const problem = await refusal(fc3(`      environmentVariables:\n        A: \${vars.v0}\n`, vars));
    expect(problem).toMatch(/^resources\.f\.props: its references expand to more than \d+ values/);
  }, 10_000);
});
