/**
 * The tree's rule: runtime workspaces (the shared packages contract, telemetry and kit,
 * and every service) never depend on a developer tool (every other package), and the
 * images compile and copy the runtime workspaces only. Checked on the sources and the
 * Dockerfile; test/production-install.test.ts and the Compose test check the installed
 * layout and the real images.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ROOT, RUNTIME_PACKAGES, scratchTree, tsFiles, workspaces } from './workspaces';

/** The module specifiers a file imports, requires or re-exports. */
function specifiers(file: string): string[] {
  const text = readFileSync(file, 'utf8');
  const found: string[] = [];
  for (const m of text.matchAll(/(?:\bfrom\s*|\bimport\s*\(\s*|\brequire\s*\(\s*|^\s*import\s+)['"]([^'"]+)['"]/gm))
    found.push(m[1] as string);
  return found;
}

/**
 * Each place a runtime workspace of the tree at ROOT reaches a developer tool: an
 * import of its package, a relative import into its folder, or a dependency in
 * package.json.
 */
function violations(root: string): string[] {
  const all = workspaces(root);
  const dev = all.filter((w) => !w.runtime);
  const problems: string[] = [];
  for (const w of all.filter((w) => w.runtime)) {
    const manifest = JSON.parse(readFileSync(path.join(root, w.dir, 'package.json'), 'utf8')) as Record<string, Record<string, string>>;
    for (const field of ['dependencies', 'optionalDependencies', 'peerDependencies']) {
      for (const name of Object.keys(manifest[field] ?? {}))
        if (dev.some((d) => d.name === name)) problems.push(`${w.dir}/package.json: ${field} has the developer tool ${name}`);
    }
    for (const file of tsFiles(path.join(root, w.dir, 'src'))) {
      for (const spec of specifiers(file)) {
        const target = spec.startsWith('.')
          ? dev.find((d) => path.resolve(path.dirname(file), spec).startsWith(path.join(root, d.dir) + path.sep))
          : dev.find((d) => spec === d.name || spec.startsWith(`${d.name}/`));
        if (target) problems.push(`${path.relative(root, file)} imports ${spec} (the developer tool ${target.name})`);
      }
    }
  }
  return problems;
}

describe('runtime and developer tools', () => {
  it('has the three shared runtime packages and developer tools beside them', () => {
    const all = workspaces();
    expect(all.filter((w) => w.runtime && w.dir.startsWith('packages/')).map((w) => w.dir)).toEqual([...RUNTIME_PACKAGES].sort());
    expect(all.filter((w) => !w.runtime).map((w) => w.name)).toEqual(
      expect.arrayContaining(['@bfl/lab', '@bfl/traces', '@bfl/scenario-cli', '@bfl/dashboards', '@bfl/coralogix']),
    );
  });

  it('no runtime workspace imports or depends on a developer tool', () => {
    expect(violations(ROOT)).toEqual([]);
  });

  const scratch = scratchTree('architecture-');
  afterAll(scratch.remove);

  it('the check fails on a runtime package that imports a developer tool (the check can fail)', () => {
    const { write } = scratch;
    write('packages/kit/package.json', JSON.stringify({ name: '@bfl/kit', dependencies: { '@bfl/lab': '0.1.0' } }));
    write(
      'packages/kit/src/index.ts',
      "import { startLab } from '@bfl/lab';\nexport const x = require('../../traces/src/otlp-receiver.js');\n",
    );
    write('packages/lab/package.json', JSON.stringify({ name: '@bfl/lab' }));
    write('packages/traces/package.json', JSON.stringify({ name: '@bfl/traces' }));
    write('services/cart/package.json', JSON.stringify({ name: '@bfl/cart' }));
    write('services/cart/src/app.ts', "import type { Lab } from '@bfl/lab/observe';\n");
    expect(violations(scratch.root)).toEqual([
      'packages/kit/package.json: dependencies has the developer tool @bfl/lab',
      'packages/kit/src/index.ts imports @bfl/lab (the developer tool @bfl/lab)',
      'packages/kit/src/index.ts imports ../../traces/src/otlp-receiver.js (the developer tool @bfl/traces)',
      'services/cart/src/app.ts imports @bfl/lab/observe (the developer tool @bfl/lab)',
    ]);
  });

  it('the Dockerfile copies every manifest, compiles and copies the runtime workspaces only', () => {
    const dockerfile = readFileSync(path.join(ROOT, 'Dockerfile'), 'utf8');
    const all = workspaces();
    // Every manifest (the lockfile names every workspace).
    const manifests = [...dockerfile.matchAll(/^COPY (\S+)\/package\.json \1\/$/gm)].map((m) => m[1]);
    expect(manifests.sort()).toEqual(all.map((w) => w.dir).sort());
    // Sources: the runtime packages one by one, and the services folder.
    const copied = [...dockerfile.matchAll(/^COPY (packages\/[\w-]+|services) \.\/\1$/gm)].map((m) => m[1]);
    expect(copied.sort()).toEqual([...RUNTIME_PACKAGES, 'services'].sort());
    const compiled = /RUN npx tsc -b ([^\\\n]+)/.exec(dockerfile)?.[1]?.trim().split(/\s+/);
    expect(compiled).toEqual([...RUNTIME_PACKAGES, 'services/*/']);
  });
});
