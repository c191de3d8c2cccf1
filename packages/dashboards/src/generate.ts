/**
 * `npm run dashboards:generate`: writes observability/grafana/dashboards/<uid>.json.
 * `-- --check`: writes nothing; exits 1 naming the stale files, 0 when all are fresh.
 * `-- --out DIR`: another directory (default: the committed one).
 */
import path from 'node:path';
import { parseArgs } from 'node:util';
import { FIX, staleFiles, writeAll } from './generator.js';

const DEFAULT_DIR = path.resolve(__dirname, '../../../observability/grafana/dashboards');

export function main(argv: string[]): number {
  const { values } = parseArgs({
    args: argv,
    options: { check: { type: 'boolean', default: false }, out: { type: 'string' }, help: { type: 'boolean', short: 'h', default: false } },
  });
  if (values.help) {
    console.log('usage: npm run dashboards:generate [-- --check] [-- --out DIR]');
    return 0;
  }
  const dir = path.resolve(values.out ?? DEFAULT_DIR);
  const shown = path.relative(process.cwd(), dir) || '.';
  if (values.check) {
    const stale = staleFiles(dir);
    if (stale.length) {
      console.error(`${shown} is stale: ${stale.join(', ')}\nrun \`${FIX}\` and commit the result`);
      return 1;
    }
    console.log(`${shown}: every dashboard is fresh`);
    return 0;
  }
  const { written, unchanged, removed } = writeAll(dir);
  for (const file of written) console.log(`wrote ${path.join(shown, file)}`);
  for (const file of removed) console.log(`removed ${path.join(shown, file)} (no dashboard makes it)`);
  if (unchanged.length) console.log(`unchanged: ${unchanged.join(', ')}`);
  return 0;
}

try {
  process.exitCode = main(process.argv.slice(2));
} catch (error) {
  console.error(error instanceof Error ? error.message : error);
  process.exitCode = 2;
}
