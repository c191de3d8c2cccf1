/**
 * Every value a workspace's module exports (const, function, class, enum) is imported
 * somewhere else: in another module or a test. An export nobody imports is a name kept
 * public for nothing; drop the `export`. (Types are left out: an exported signature
 * names its parameter and return types.) Package entry points (index.ts) re-export and
 * are not checked themselves.
 */
import { mkdirSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ROOT, scratchTree, tsFiles } from './workspaces';

const EXPORTED_VALUE = /^export\s+(?:declare\s+)?(?:async\s+)?(?:const|let|function\*?|class|abstract class|enum)\s+([A-Za-z_$][\w$]*)/gm;
const literal = (name: string) => name.replace(/\$/g, '\\$');

/** `file: name` for each exported value of the workspaces at ROOT that nothing else imports. */
function unusedExports(root: string): string[] {
  const sources = ['packages', 'services'].flatMap((parent) =>
    readdirSync(path.join(root, parent)).flatMap((ws) => tsFiles(path.join(root, parent, ws, 'src'))),
  );
  const everything = [
    ...sources,
    ...['packages', 'services'].flatMap((parent) =>
      readdirSync(path.join(root, parent)).flatMap((ws) => tsFiles(path.join(root, parent, ws, 'test'))),
    ),
    ...tsFiles(path.join(root, 'test')),
  ];
  const text = new Map(everything.map((f) => [f, readFileSync(f, 'utf8')]));
  const unused: string[] = [];
  for (const file of sources.filter((f) => path.basename(f) !== 'index.ts')) {
    for (const [, name] of (text.get(file) ?? '').matchAll(EXPORTED_VALUE)) {
      const n = literal(name as string);
      // import { n } / export { n } from, a destructuring require, or (require(...) as typeof import(...)).n
      const imported = new RegExp(
        `(?:import|export)\\s*(?:type\\s*)?\\{[^}]*\\b${n}\\b[^}]*\\}\\s*from|\\{[^}]*\\b${n}\\b[^}]*\\}\\s*=\\s*\\(?require\\(|import\\([^)]*\\)\\)?\\.${n}\\b`,
      );
      if (![...text].some(([other, t]) => other !== file && imported.test(t))) unused.push(`${path.relative(root, file)}: ${name}`);
    }
  }
  return unused;
}

describe('exports', () => {
  it('every exported value of every workspace is imported somewhere else', () => {
    expect(unusedExports(ROOT)).toEqual([]);
  });

  const scratch = scratchTree('exports-');
  afterAll(scratch.remove);

  it('the check names an export nobody imports (the check can fail)', () => {
    const { write } = scratch;
    write('packages/kit/src/a.ts', 'export const used = 1;\nexport function lonely() {}\nexport interface Shape {}\n');
    write('packages/kit/src/index.ts', "export { used } from './a.js';\n");
    write('services/cart/src/app.ts', "import { used } from '@bfl/kit';\n");
    mkdirSync(path.join(scratch.root, 'test'));
    expect(unusedExports(scratch.root)).toEqual(['packages/kit/src/a.ts: lonely']);
  });
});
