import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadServerlessConfig } from '../src/index.js';

// Review of logConfig reading: Serverless Devs reads `auto` whatever its case (fc3: `_.toUpper(x)
// === 'AUTO'`; fc 2.0: `auto` or `Auto`), and a logConfig that is a variable left unresolved
// locally (`${resources.sls.output}`) names nothing the emulator knows. Neither may keep the
// emulator from starting: the function runs without the log headers, as for `logConfig: auto`.

const dirs: string[] = [];
afterAll(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

function write(yaml: string): string {
  const dir = mkdtempSync(join(tmpdir(), 'fc-async-review-11-'));
  dirs.push(dir);
  writeFileSync(join(dir, 'index.cjs'), 'exports.handler = async () => ({ statusCode: 200, body: "ok" });\n');
  writeFileSync(join(dir, 's.yaml'), yaml);
  return join(dir, 's.yaml');
}

const fc3 = (logConfig: string) => `edition: 3.0.0
name: logs
resources:
  web:
    component: fc3
    props:
      functionName: web
      runtime: nodejs18
      code: ./
      handler: index.handler
      logConfig: ${logConfig}
`;

const fc2 = (logConfig: string) => `edition: 1.0.0
services:
  web:
    component: fc
    props:
      service:
        name: svc
        logConfig: ${logConfig}
      function: { name: web, codeUri: ./, handler: index.handler, runtime: nodejs18 }
`;

describe('logConfig: auto in any case', () => {
  it.each([
    ['fc3', 'Auto'],
    ['fc3', 'AUTO'],
    ['fc', 'Auto'],
  ])('loads an %s function with logConfig %s, without log names', async (component, value) => {
    const config = await loadServerlessConfig(write(component === 'fc3' ? fc3(value) : fc2(value)));
    expect(config.functions.map((f) => f.name)).toEqual(['web']);
    expect(config.functions[0]?.logConfig).toBeUndefined();
  });
});

describe('a logConfig left unresolved', () => {
  it('loads the function without log names, and says the variable is not resolved', async () => {
    // biome-ignore lint/suspicious/noTemplateCurlyInString: Serverless Devs variable syntax
    const variable = '${resources.sls.output}';
    const config = await loadServerlessConfig(write(fc3(variable)));
    expect(config.functions[0]?.logConfig).toBeUndefined();
    expect(config.warnings.join('\n')).toContain(`${variable} is not resolved locally`);
  });

  it('still refuses a logConfig that is text but neither auto nor a variable', async () => {
    await expect(loadServerlessConfig(write(fc3('my-project')))).rejects.toMatchObject({
      code: 'InvalidConfig',
      message: expect.stringContaining('resources.web.props.logConfig must be auto or a mapping'),
    });
  });
});
