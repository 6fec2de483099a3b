import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';

// The TSDoc `@example` blocks of the published packages, read from their built `.d.ts` (what a
// user's editor shows), written out as modules that import each package by its public name, and
// type-checked together in one strict NodeNext program.

const REPO = fileURLToPath(new URL('../../../', import.meta.url));

/** An entry of a published workspace package: its import name (`@fc-async/core/conformance`), folder and built types. */
export interface Published {
  name: string;
  dir: string;
  types: string;
}

/** One `@example` block: where it is documented, and its code. */
export interface Example {
  pkg: string;
  /** The export it documents, with the member for a member's example (`FcHandler.tasks`). */
  owner: string;
  /** The `.d.ts` file and line, relative to the repo. */
  at: string;
  code: string;
}

/** An export of a package's entry, and whether its declaration carries TSDoc with an `@example`. */
export interface ExportDoc {
  pkg: string;
  name: string;
  hasExample: boolean;
}

const COMPILER_OPTIONS: ts.CompilerOptions = {
  target: ts.ScriptTarget.ES2022,
  lib: ['lib.es2023.d.ts'],
  module: ts.ModuleKind.NodeNext,
  moduleResolution: ts.ModuleResolutionKind.NodeNext,
  strict: true,
  noUncheckedIndexedAccess: true,
  esModuleInterop: true,
  skipLibCheck: true,
  noEmit: true,
  types: ['node'],
};

export function publishedPackages(): Published[] {
  const root = join(REPO, 'packages');
  return readdirSync(root)
    .map((dir) => join(root, dir))
    .filter((dir) => existsSync(join(dir, 'package.json')))
    .map((dir) => ({ dir, pkg: JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) }))
    .filter(({ pkg }) => !pkg.private)
    .flatMap(({ dir, pkg }) =>
      // Each entry of `exports` with types: the package's own, and its subpaths.
      Object.entries(pkg.exports as Record<string, string | { types?: string }>).flatMap(([subpath, target]) =>
        typeof target === 'object' && target.types
          ? [{ name: `${pkg.name}${subpath.slice(1)}`, dir, types: join(dir, target.types) }]
          : [],
      ),
    );
}

/** The code of an `@example`: its fenced blocks joined, or the whole text when it has no fence. */
function exampleCode(tag: ts.JSDocTag): string {
  const text = ts.getTextOfJSDocComment(tag.comment) ?? '';
  const fences = [...text.matchAll(/```[\w-]*\n([\s\S]*?)```/g)].map((m) => m[1] as string);
  return fences.length > 0 ? fences.join('\n') : text;
}

function memberName(node: ts.Node): string | undefined {
  const name = (node as ts.NamedDeclaration).name;
  return name && (ts.isIdentifier(name) || ts.isStringLiteral(name)) ? name.text : undefined;
}

/**
 * Reads each package's built entry: every export (values and types), whether it has an `@example`,
 * and every `@example` on an export or on one of its members.
 */
export function readExamples(packages: Published[]): {
  examples: Example[];
  exports: ExportDoc[];
  program: ts.Program;
} {
  const entries = packages.map((p) => p.types);
  const program = ts.createProgram(entries, COMPILER_OPTIONS);
  const checker = program.getTypeChecker();
  const examples: Example[] = [];
  const exports: ExportDoc[] = [];
  const seen = new Set<ts.JSDocTag>();
  packages.forEach((p, i) => {
    const file = program.getSourceFile(entries[i] as string);
    const moduleSymbol = file && checker.getSymbolAtLocation(file);
    if (!moduleSymbol) throw new Error(`${p.name}: no built entry at ${entries[i]} (build the packages first)`);
    for (const exported of checker.getExportsOfModule(moduleSymbol)) {
      const symbol =
        exported.flags & ts.SymbolFlags.Alias ? checker.getAliasedSymbol(exported) : (exported as ts.Symbol);
      const declarations = symbol.declarations ?? [];
      const own = declarations.flatMap((d) => ts.getJSDocTags(d)).filter((t) => t.tagName.text === 'example');
      exports.push({ pkg: p.name, name: exported.name, hasExample: own.length > 0 });
      const visit = (node: ts.Node, owner: string) => {
        for (const tag of ts.getJSDocTags(node)) {
          if (tag.tagName.text !== 'example' || seen.has(tag)) continue;
          seen.add(tag);
          const source = node.getSourceFile();
          const line = source.getLineAndCharacterOfPosition(tag.getStart()).line + 1;
          examples.push({
            pkg: p.name,
            owner,
            at: `${relative(REPO, source.fileName)}:${line}`,
            code: exampleCode(tag),
          });
        }
        ts.forEachChild(node, (child) => {
          const member = (ts.isClassElement(child) || ts.isTypeElement(child)) && memberName(child);
          visit(child, member ? `${owner}.${member}` : owner);
        });
      };
      for (const declaration of declarations) visit(declaration, exported.name);
    }
  });
  return { examples, exports, program };
}

/** Top-level names an example declares or imports itself. */
function declaredNames(source: ts.SourceFile): Set<string> {
  const names = new Set<string>();
  const bind = (name: ts.BindingName) => {
    if (ts.isIdentifier(name)) names.add(name.text);
    else for (const element of name.elements) if (!ts.isOmittedExpression(element)) bind(element.name);
  };
  for (const statement of source.statements) {
    if (ts.isVariableStatement(statement)) for (const d of statement.declarationList.declarations) bind(d.name);
    else if (ts.isImportDeclaration(statement)) {
      const clause = statement.importClause;
      if (clause?.name) names.add(clause.name.text);
      const bindings = clause?.namedBindings;
      if (bindings && ts.isNamespaceImport(bindings)) names.add(bindings.name.text);
      else if (bindings) for (const s of bindings.elements) names.add(s.name.text);
    } else if ('name' in statement && statement.name && ts.isIdentifier(statement.name as ts.Node)) {
      names.add((statement.name as ts.Identifier).text);
    }
  }
  return names;
}

/**
 * The module written for an example. The one uniform addition: an example that does not import
 * from its own package gets the package's exports it names imported (TSDoc examples are read
 * beside the declaration they document). Everything else an example uses it imports or declares.
 */
export function exampleModule(example: Example, exportNames: ReadonlySet<string>): string {
  const source = ts.createSourceFile('example.ts', example.code, ts.ScriptTarget.ES2022, true);
  const importsOwn = source.statements.some(
    (s) => ts.isImportDeclaration(s) && (s.moduleSpecifier as ts.StringLiteral).text === example.pkg,
  );
  const lines: string[] = [];
  if (!importsOwn) {
    const declared = declaredNames(source);
    const used = new Set(example.code.match(/[A-Za-z_$][\w$]*/g) ?? []);
    const names = [...exportNames].filter((n) => used.has(n) && !declared.has(n)).sort();
    if (names.length > 0) lines.push(`import { ${names.join(', ')} } from '${example.pkg}';`);
  }
  lines.push(`// ${example.owner} (${example.at})`, example.code, 'export {};', '');
  return lines.join('\n');
}

/**
 * Type-checks modules (file name to text) in one program, in a temporary folder whose
 * `node_modules` is the repo's, so each package resolves by its public name to its built types.
 * Returns one line per error: the file, the line in the module, the message.
 */
export function typeCheck(modules: Map<string, string>, oldProgram?: ts.Program): string[] {
  const dir = mkdtempSync(join(tmpdir(), 'fc-async-tsdoc-'));
  try {
    symlinkSync(join(REPO, 'node_modules'), join(dir, 'node_modules'), 'dir');
    writeFileSync(join(dir, 'package.json'), JSON.stringify({ type: 'module', private: true }));
    mkdirSync(join(dir, 'examples'));
    const files = [...modules].map(([name, text]) => {
      const file = join(dir, 'examples', name);
      writeFileSync(file, text);
      return file;
    });
    const program = ts.createProgram(files, COMPILER_OPTIONS, undefined, oldProgram);
    return files.flatMap((file) => {
      const source = program.getSourceFile(file);
      if (!source) return [`${file}: not in the program`];
      return [...program.getSyntacticDiagnostics(source), ...program.getSemanticDiagnostics(source)].map((d) => {
        const line = d.start === undefined ? 0 : source.getLineAndCharacterOfPosition(d.start).line + 1;
        return `${relative(join(dir, 'examples'), file)}:${line}: ${ts.flattenDiagnosticMessageText(d.messageText, '\n')}`;
      });
    });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
