// docs/local-dev.md: `fc-async dev` serves `.ts`, `.mts` and `.cts` entries (through tsx). The other
// suites run the CLI from source under tsx's loader, which would load TypeScript whatever the CLI
// does: this one runs the command as npm links it (bin/fc-async.js over dist/) under plain node.
// dist/ is built before the tests (`npm test`, `turbo run test`).
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { invokeSync, PKG, runCli, startCli } from './helpers.js';

describe('the built fc-async command serves TypeScript entries under plain node', () => {
  let dir: string;
  beforeAll(() => {
    if (!existsSync(join(PKG, 'dist/cli.js'))) {
      throw new Error('packages/local/dist is not built: run `npm run build -w @fc-async/local` first');
    }
    dir = mkdtempSync(join(tmpdir(), 'fc-async-built-ts-'));
    // Type annotations and a type-only import, which plain node refuses; each entry imports a
    // TypeScript module of its own kind (`./lib.mjs` is lib.mts, as TypeScript's resolution has it).
    writeFileSync(join(dir, 'lib.mts'), "export const kind = (): string => 'mts';\n");
    writeFileSync(
      join(dir, 'app.mts'),
      [
        "import type { IncomingMessage } from 'node:http';",
        "import { kind } from './lib.mjs';",
        "type Reply = 'served:mts';",
        "export const handler = async (_event: Buffer, _context: unknown): Promise<Reply> => ('served:' + kind()) as Reply;",
        'export type Unused = IncomingMessage;',
        '',
      ].join('\n'),
    );
    writeFileSync(join(dir, 'lib.cts'), "export const kind = (): string => 'cts';\n");
    writeFileSync(
      join(dir, 'app.cts'),
      [
        "import { kind } from './lib.cjs';",
        'interface Reply { text: string }',
        "const reply: Reply = { text: 'served:' + kind() };",
        'export const handler = async (_event: Buffer, _context: unknown): Promise<string> => reply.text;',
        '',
      ].join('\n'),
    );
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it.each([
    ['app.mts', 'served:mts'],
    ['app.cts', 'served:cts'],
  ])('%s answers through the HTTP trigger', async (entry, body) => {
    const run = await startCli([join(dir, entry)], { built: true, cwd: dir });
    try {
      expect(run.lines[0]).toMatchObject({ kind: 'ready', functions: [{ name: 'app', kind: 'fc-handler' }] });
      const res = await fetch(run.trigger, { signal: AbortSignal.timeout(15_000) });
      expect({ status: res.status, body: await res.text() }).toEqual({ status: 200, body });
    } finally {
      await run.stop();
    }
  });

  // A NestJS entry's decorators compile only with `experimentalDecorators`: the tsconfig.json next
  // to the entry gives it, whatever folder the command was started in (here one without any).
  it.each(['mts', 'cts'])('compiles a .%s entry with the tsconfig.json nearest to it', async (ext) => {
    const project = mkdtempSync(join(tmpdir(), 'fc-async-built-tsconfig-'));
    try {
      writeFileSync(join(project, 'tsconfig.json'), '{ "compilerOptions": { "experimentalDecorators": true } }\n');
      writeFileSync(
        join(project, `main.${ext}`),
        [
          'const seen: string[] = [];',
          'function param(target: object, key: string | symbol | undefined, index: number) {',
          "  seen.push([typeof target, String(key), index].join(':'));",
          '}',
          'class Orders {',
          '  constructor(@param readonly id: string) {}',
          '}',
          "export const handler = async (): Promise<string> => seen.join() + '|' + new Orders('1').id;",
          '',
        ].join('\n'),
      );
      const run = await startCli([join(project, `main.${ext}`)], { built: true, cwd: dir });
      try {
        const res = await fetch(run.trigger, { signal: AbortSignal.timeout(15_000) });
        expect({ status: res.status, body: await res.text() }).toEqual({ status: 200, body: 'function:undefined:0|1' });
      } finally {
        await run.stop();
      }
    } finally {
      rmSync(project, { recursive: true, force: true });
    }
  });

  // tsx reads an entry's tsconfig (and what it `extends`) before it loads the entry, and its error
  // names neither: `File './base.json' not found.` alone.
  it('refuses an entry whose tsconfig.json cannot be read in one line that names both, exit 1', async () => {
    const project = mkdtempSync(join(tmpdir(), 'fc-async-built-bad-tsconfig-'));
    try {
      const write = (file: string, text: string) => {
        mkdirSync(join(project, file, '..'), { recursive: true });
        writeFileSync(join(project, file), text);
      };
      const entry = 'export const handler = async (): Promise<string> => "served";\n';
      write('tsconfig.json', '{ "extends": "./base.json" }\n');
      write('src/app.ts', entry);
      write('functions/good/tsconfig.json', '{}\n');
      write('functions/good/index.ts', entry);
      write('functions/bad/tsconfig.json', '{ "extends": "./missing.json" }\n');
      write('functions/bad/index.ts', entry);
      const fn = (name: string) =>
        `  ${name}: { component: fc3, props: { region: cn-hangzhou, functionName: ${name}, runtime: nodejs20, code: ./functions/${name}, handler: index.handler } }`;
      write('s.yaml', ['edition: 3.0.0', 'name: bad-tsconfig', 'resources:', fn('good'), fn('bad'), ''].join('\n'));
      const app = join(project, 'src/app.ts');
      const nowhere = join(project, 'nowhere.json');
      const runs = [
        // The first TypeScript entry's tsconfig, which the process-wide hooks use.
        [
          ['dev', app],
          {},
          `Loading ${app} failed: its tsconfig ${join(project, 'tsconfig.json')} could not be read: File './base.json' not found.`,
        ],
        // A second function's, read for a tsx namespace of its own.
        [
          ['dev', '--config', join(project, 's.yaml')],
          {},
          `Loading ${join(project, 'functions/bad/index.ts')} failed: its tsconfig ${join(project, 'functions/bad/tsconfig.json')} could not be read: File './missing.json' not found.`,
        ],
        // TSX_TSCONFIG_PATH naming a file that is not there.
        [
          ['dev', app],
          { TSX_TSCONFIG_PATH: nowhere },
          `Loading ${app} failed: its tsconfig ${nowhere} (TSX_TSCONFIG_PATH) could not be read: Cannot resolve tsconfig at path: ${nowhere}`,
        ],
      ] as const;
      for (const [args, env, told] of runs) {
        const run = await runCli([...args, '--port', '0', '--control-port', '0'], { built: true, cwd: project, env });
        expect({ code: run.code, stderr: run.stderr }).toEqual({ code: 1, stderr: `fc-async: ${told}\n` });
      }
    } finally {
      rmSync(project, { recursive: true, force: true });
    }
  });

  // Two functions of one s.yaml in folders of their own: a NestJS-like one whose tsconfig.json turns
  // on experimentalDecorators (parameter decorators compile only with it), a plain one under the
  // project's root tsconfig.json that turns it off and assigns class fields rather than defining
  // them. Each entry, and the module it imports, compiles with its own nearest tsconfig, whichever
  // loads first (with only the first's, the other failed to load or defined its fields).
  const ORDERS = [
    ['mts', ['nest', 'plain']],
    ['mts', ['plain', 'nest']],
    ['cts', ['nest', 'plain']],
    ['cts', ['plain', 'nest']],
  ] as const;
  it.each(ORDERS)(
    'compiles each .%s entry of an s.yaml with its own nearest tsconfig.json (%j)',
    async (ext, order) => {
      const project = mkdtempSync(join(tmpdir(), 'fc-async-built-tsconfigs-'));
      try {
        const write = (file: string, lines: string[]) => {
          mkdirSync(join(project, file, '..'), { recursive: true });
          writeFileSync(join(project, file), `${lines.join('\n')}\n`);
        };
        write('tsconfig.json', [
          '{ "compilerOptions": { "experimentalDecorators": false, "useDefineForClassFields": false } }',
        ]);
        write('functions/nest/tsconfig.json', [
          '{ "compilerOptions": { "experimentalDecorators": true, "useDefineForClassFields": true } }',
        ]);
        // How the class fields of a subclass meet a setter of its base: `assign` runs it, `define` does not.
        const fields = [
          'export class Base { how = "define"; set id(_v: string) { this.how = "assign"; } }',
          'export class Child extends Base { id = "1"; }',
        ];
        write(`functions/nest/fields.${ext}`, fields);
        write(`functions/plain/fields.${ext}`, fields);
        const imported = ext === 'mts' ? './fields.mjs' : './fields.cjs';
        write(`functions/nest/index.${ext}`, [
          `import { Child } from '${imported}';`,
          'const seen: number[] = [];',
          'function param(_target: object, _key: string | symbol | undefined, index: number) {',
          '  seen.push(index);',
          '}',
          'class Orders {',
          '  constructor(@param readonly id: string) {}',
          '}',
          "export const handler = async (): Promise<string> => ['nest', seen.join(), new Orders('1').id, new Child().how].join(':');",
        ]);
        write(`functions/plain/index.${ext}`, [
          `import { Child } from '${imported}';`,
          "export const handler = async (): Promise<string> => 'plain:' + new Child().how;",
        ]);
        const fn = (name: string) => [
          `  ${name}:`,
          '    component: fc3',
          '    props:',
          '      region: cn-hangzhou',
          `      functionName: ${name}`,
          '      runtime: nodejs20',
          `      code: ./functions/${name}`,
          '      handler: index.handler',
        ];
        write('s.yaml', ['edition: 3.0.0', 'name: two-tsconfigs', 'resources:', ...order.flatMap(fn)]);
        const run = await startCli(['--config', join(project, 's.yaml')], { built: true, cwd: project });
        try {
          const answers: Record<string, string> = {};
          for (const name of ['nest', 'plain']) {
            const res = await invokeSync(run.control, name, '/');
            answers[name] = `${res.status} ${await res.text()}`;
          }
          expect(answers).toEqual({ nest: '200 nest:0:1:define', plain: '200 plain:assign' });
        } finally {
          await run.stop();
        }
      } finally {
        rmSync(project, { recursive: true, force: true });
      }
    },
  );
});
