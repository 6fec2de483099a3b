// biome-ignore-all lint/suspicious/noTemplateCurlyInString: the values here are written in Serverless Devs variable syntax
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadServerlessConfig } from '../src/index.js';
import { resolveVars, type VarContext, VarError } from '../src/yaml-vars.js';

// What Serverless Devs users write in s.yaml and the emulator once kept as written ("not resolved
// locally"): a `}` inside a quoted argument ended the expression, and member access stopped at a
// value that is an expression itself or at a list index.

function context(root: Record<string, unknown>, env: Record<string, string> = {}): VarContext {
  const dir = mkdtempSync(join(tmpdir(), 'fc-async-vars-'));
  writeFileSync(join(dir, 'cfg.json'), '{"greeting":"hello","ports":[80,443]}');
  return { root, env, accountId: '123', region: 'cn-hangzhou', dir, unresolved: new Set() };
}

describe('s.yaml variables', () => {
  it('reads braces and a } inside quoted arguments as part of the expression', () => {
    const ctx = context({});
    expect(resolveVars('${json(\'{"maxAsyncRetryAttempts":1}\')}', ctx)).toEqual({ maxAsyncRetryAttempts: 1 });
    expect(resolveVars("${env('UNSET_X', 'a}b')}", ctx)).toBe('a}b');
    expect(resolveVars("id-${env('UNSET_X', 'a}b')}-${config('Region')}", ctx)).toBe('id-a}b-cn-hangzhou');
    expect([...ctx.unresolved]).toEqual([]);
  });

  it("takes env()'s bare number default as a number, and a variable set then as a number too", () => {
    const unset = context({});
    expect(resolveVars("${env('UNSET_T', 60)}", unset)).toBe(60);
    expect(resolveVars("${env('UNSET_T', 0.5)}", unset)).toBe(0.5);
    const set = context({}, { T: '30', NAME: '007', WORD: 'fast', EMPTY: '' });
    expect(resolveVars("${env('T', 60)}", set)).toBe(30);
    expect(resolveVars("${env('EMPTY', 60)}", set)).toBe(60);
    // Text stays text: a quoted default, no default, a value that is no plain number, inside a string.
    expect(resolveVars("${env('T', '60')}", set)).toBe('30');
    expect(resolveVars("${env('T')}", set)).toBe('30');
    expect(resolveVars("${env('NAME', 1)}", set)).toBe('007');
    expect(resolveVars("${env('WORD', 1)}", set)).toBe('fast');
    expect(resolveVars("t-${env('T', 60)}", set)).toBe('t-30');
  });

  it('keeps as written a variable or a default that a number would read back otherwise (1.10, a long id)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'fc-async-vars-'));
    writeFileSync(join(dir, 'index.mjs'), 'export const handler = async () => "ok";\n');
    writeFileSync(
      join(dir, 's.yaml'),
      [
        'edition: 3.0.0',
        'resources:',
        '  web:',
        '    component: fc3',
        '    props: { functionName: web, runtime: nodejs20, handler: index.handler, code: .,',
        '      environmentVariables: { APP_VERSION: "${env(\'APP_VERSION\', 1)}" } }',
        '',
      ].join('\n'),
    );
    // The app must see APP_VERSION as set, 1.10, not 1.1.
    const [fn] = (await loadServerlessConfig(join(dir, 's.yaml'), { env: { APP_VERSION: '1.10' } })).functions;
    expect(fn?.environmentVariables).toEqual({ APP_VERSION: '1.10' });
    const set = context({}, { VERSION: '1.10', ROUND: '10.0', ID: '12345678901234567890' });
    expect(resolveVars("${env('VERSION', 1)}", set)).toBe('1.10');
    expect(resolveVars("v${env('VERSION', 1)}", set)).toBe('v1.10');
    expect(resolveVars("${env('ROUND', 1)}", set)).toBe('10.0');
    expect(resolveVars("${env('ID', 0)}", set)).toBe('12345678901234567890');
    expect(resolveVars("v${env('UNSET_V', 1.50)}", set)).toBe('v1.50');
  });

  it("reads an s.yaml's numbers given as `${env('NAME', 60)}`: the default, or the variable set", async () => {
    const dir = mkdtempSync(join(tmpdir(), 'fc-async-vars-'));
    writeFileSync(join(dir, 'index.mjs'), 'export const handler = async () => "ok";\n');
    writeFileSync(
      join(dir, 's.yaml'),
      [
        'edition: 3.0.0',
        'name: numbers',
        'resources:',
        '  web:',
        '    component: fc3',
        '    props:',
        '      region: cn-hangzhou',
        '      functionName: web',
        '      runtime: nodejs20',
        '      handler: index.handler',
        '      code: .',
        "      timeout: ${env('FN_TIMEOUT', 60)}",
        "      memorySize: ${env('FN_MEMORY', 512)}",
        '      asyncInvokeConfig:',
        "        maxAsyncRetryAttempts: ${env('FN_RETRIES', 1)}",
        '',
      ].join('\n'),
    );
    const read = async (env: Record<string, string>) => {
      const [fn] = (await loadServerlessConfig(join(dir, 's.yaml'), { env })).functions;
      return { timeout: fn?.timeout, memorySize: fn?.memorySize, retries: fn?.asyncConfig?.maxAsyncRetryAttempts };
    };
    expect(await read({})).toEqual({ timeout: 60, memorySize: 512, retries: 1 });
    expect(await read({ FN_TIMEOUT: '300', FN_RETRIES: '0' })).toEqual({ timeout: 300, memorySize: 512, retries: 0 });
    await expect(read({ FN_RETRIES: 'three' })).rejects.toThrow(
      "maxAsyncRetryAttempts must be an integer from 0 to 8, got the value of ${env('FN_RETRIES', 1)}",
    );
  });

  it("says a number field's value is text when an expression gave it so (a quoted env() default, '60')", async () => {
    const dir = mkdtempSync(join(tmpdir(), 'fc-async-vars-'));
    writeFileSync(join(dir, 'index.mjs'), 'export const handler = async () => "ok";\n');
    const refusal = (field: string) => {
      writeFileSync(
        join(dir, 's.yaml'),
        `edition: 3.0.0\nresources:\n  web:\n    component: fc3\n    props: { functionName: web, runtime: nodejs20, handler: index.handler, code: ., ${field} }\n`,
      );
      return loadServerlessConfig(join(dir, 's.yaml'), { env: {} }).then(
        () => '',
        (error: Error) => error.message,
      );
    };
    // 60 is in the range: what is wrong is that it is text, which the message must say.
    expect(await refusal(`timeout: "\${env('FN_TIMEOUT', '60')}"`)).toContain(
      "timeout must be an integer from 1 to 86400 (seconds), got the value of ${env('FN_TIMEOUT', '60')}, which is text",
    );
    expect(await refusal(`memorySize: "\${env('FN_MEMORY', '512')}"`)).toContain(
      "memorySize must be a positive number, got the value of ${env('FN_MEMORY', '512')}, which is text",
    );
    expect(await refusal(`asyncInvokeConfig: { maxAsyncRetryAttempts: "\${env('FN_RETRIES', '1')}" }`)).toContain(
      "maxAsyncRetryAttempts must be an integer from 0 to 8, got the value of ${env('FN_RETRIES', '1')}, which is text",
    );
  });

  it('walks into a value that is an expression of its own (a file) and into list items by index', () => {
    const ctx = context({ vars: { cfg: "${file('./cfg.json')}", list: ['a', 'b'] } });
    expect(resolveVars('${vars.cfg.greeting}', ctx)).toBe('hello');
    expect(resolveVars('${vars.cfg.ports[1]}', ctx)).toBe(443);
    expect(resolveVars('${vars.list[1]}-${vars.list.0}', ctx)).toBe('b-a');
    expect([...ctx.unresolved]).toEqual([]);
  });

  it("takes a file()'s value reached by a walk as data: neither expanded nor shown", () => {
    const ctx = context({ vars: { s: "${file('./secrets.json')}" } }, { HOME_SECRET: 'leaked' });
    writeFileSync(join(ctx.dir, 'secrets.json'), '{"password":"pa${ss","token":"x-${env.HOME_SECRET}"}');
    expect(resolveVars('${vars.s.token}', ctx)).toBe('x-${env.HOME_SECRET}');
    expect(resolveVars('${vars.s.password}', ctx)).toBe('pa${ss');
    expect([...ctx.unresolved]).toEqual([]);
  });

  it('counts the expressions a walk evaluates against the file budget (a VarError, not minutes of CPU)', () => {
    // l0..l7 each call env() with six arguments walking into the next level: about 6^8 (1.7 million) evaluations.
    const vars: Record<string, unknown> = { l8: { k: 'v' } };
    for (let n = 7; n >= 0; n--) {
      const args = Array.from({ length: 6 }, () => `vars.l${n + 1}.k`);
      vars[`l${n}`] = `\${env(${args.join(', ')})}`;
    }
    expect(() => resolveVars('${vars.l0.k}', context({ vars }))).toThrow(/expand to more than 100000 values/);
  });

  it('still keeps what it cannot read as written, says so, and refuses a reference to itself', () => {
    const ctx = context({ vars: { a: '${vars.a.b}' } });
    expect(resolveVars("${unknown('x')}", ctx)).toBe("${unknown('x')}");
    expect(resolveVars('${open', ctx)).toBe('${open');
    expect([...ctx.unresolved]).toEqual(["${unknown('x')}", '${open']);
    expect(() => resolveVars('${vars.a.b}', ctx)).toThrow(VarError);
  });

  it("resolves ${this.x} in a referenced resource's value against that resource, at any depth", () => {
    const api = { name: 'api', props: { functionName: '${vars.prefix}-${this.name}' } };
    const ctx = context({
      vars: { prefix: 'demo' },
      resources: {
        dest: { props: { functionName: '${vars.prefix}-${this.name}', alias: '${this.props.functionName}' } },
        mid: { props: { target: '${resources.dest.props.alias}', self: '${this.name}' } },
        api: { props: api.props },
      },
    });
    expect(resolveVars('${resources.dest.props.functionName}', ctx, api)).toBe('demo-dest');
    expect(resolveVars('to ${dest.props.functionName}', ctx, api)).toBe('to demo-dest');
    // Through a resource that refers on: each `${this}` reads the resource that wrote it.
    expect(resolveVars('${resources.mid.props.target}/${mid.props.self}', ctx, api)).toBe('demo-dest/mid');
    expect(resolveVars('${resources.mid.props}', ctx, api)).toEqual({ target: 'demo-dest', self: 'mid' });
    expect(resolveVars('${this.props.functionName}', ctx, api)).toBe('demo-api');
    expect([...ctx.unresolved]).toEqual([]);
  });
});
