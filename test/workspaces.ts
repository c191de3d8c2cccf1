/**
 * Which workspaces run in production and which are developer tools: the one list the
 * architecture test, the production-install test and the Compose test's image check
 * share. The runtime is the three shared packages and every service; any other
 * package under packages/ is a developer tool and never enters an image.
 */
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

export const ROOT = path.resolve(__dirname, '..');

/** The shared packages every service runs on. */
export const RUNTIME_PACKAGES = ['packages/contract', 'packages/telemetry', 'packages/kit'] as const;

export interface Workspace {
  /** Folder relative to the repository, e.g. packages/kit or services/cart. */
  dir: string;
  /** The package name, e.g. @bfl/kit. */
  name: string;
  runtime: boolean;
}

export function workspaces(root = ROOT): Workspace[] {
  const found: Workspace[] = [];
  for (const parent of ['packages', 'services']) {
    for (const entry of readdirSync(path.join(root, parent)).sort()) {
      const manifest = path.join(root, parent, entry, 'package.json');
      if (!existsSync(manifest)) continue;
      const dir = `${parent}/${entry}`;
      const { name } = JSON.parse(readFileSync(manifest, 'utf8')) as { name: string };
      found.push({ dir, name, runtime: parent === 'services' || (RUNTIME_PACKAGES as readonly string[]).includes(dir) });
    }
  }
  return found;
}

/**
 * A script for `node -e SCRIPT APP_DIR DEV_NAMES_JSON`, run from a service's folder in an
 * installed layout (an image, or the production-install test's copy): prints, as JSON,
 * every developer-tool package that resolves from there and every folder under
 * APP_DIR/packages that is not a runtime package. An empty list: no developer tool.
 */
export const DEV_TOOL_PROBE = `
const fs = require('node:fs'), path = require('node:path');
const [app, names] = [process.argv[1], JSON.parse(process.argv[2])];
const found = [];
for (const name of names) { try { require.resolve(name + '/package.json'); found.push(name); } catch {} }
const runtime = ${JSON.stringify(RUNTIME_PACKAGES.map((dir) => dir.split('/')[1]))};
let dirs = [];
try { dirs = fs.readdirSync(path.join(app, 'packages')); } catch {}
for (const dir of dirs) if (!runtime.includes(dir)) found.push('packages/' + dir);
console.log(JSON.stringify(found));
`;

/** The developer tools' package names (for DEV_TOOL_PROBE). */
export const devToolNames = (root = ROOT) =>
  workspaces(root)
    .filter((w) => !w.runtime)
    .map((w) => w.name);

/** Every .ts source under DIR (no .d.ts, nothing under node_modules or dist); none when DIR is missing. */
export function tsFiles(dir: string): string[] {
  let entries: string[];
  try {
    entries = readdirSync(dir);
  } catch {
    return [];
  }
  return entries.flatMap((entry) => {
    const full = path.join(dir, entry);
    if (statSync(full).isDirectory()) return entry === 'node_modules' || entry === 'dist' ? [] : tsFiles(full);
    return entry.endsWith('.ts') && !entry.endsWith('.d.ts') ? [full] : [];
  });
}

/** A throwaway tree for a check's can-fail case; `remove` it after the tests. */
export function scratchTree(prefix: string) {
  const root = mkdtempSync(path.join(tmpdir(), prefix));
  return {
    root,
    write(file: string, text: string) {
      mkdirSync(path.dirname(path.join(root, file)), { recursive: true });
      writeFileSync(path.join(root, file), text);
    },
    remove: () => rmSync(root, { recursive: true, force: true }),
  };
}
