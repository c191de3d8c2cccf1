/**
 * `npm run alerts:render`: renders the alert rules (observability/alerts/) for a
 * demo-minute length.
 *
 *   npm run alerts:render                      the shipped 60 s rendering, written to
 *                                              observability/prometheus/black-friday.rules.yaml
 *   npm run alerts:render -- --minute 5s       that rendering on stdout (or --out FILE)
 *   npm run alerts:render -- --check           exit 1 when the shipped rendering is stale
 */
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { parsePromDuration, REPO_ROOT, renderRules, SHIPPED_MINUTE_MS, SHIPPED_RULES } from './alert-rules.js';
import { headerHelp } from './cli-help.js';

function main(): number {
  let args: ReturnType<typeof parse>;
  try {
    args = parse();
  } catch (error) {
    process.stderr.write(`alerts:render: ${(error as Error).message} (see --help)\n`);
    return 2;
  }
  if (args.values.help) {
    process.stdout.write(headerHelp(__filename, 10));
    return 0;
  }
  let minuteMs = SHIPPED_MINUTE_MS;
  if (args.values.minute !== undefined) {
    const text = args.values.minute.trim();
    try {
      minuteMs = /^\d+(\.\d+)?$/.test(text) ? Math.round(Number(text) * 1000) : parsePromDuration(text);
    } catch {
      process.stderr.write(`alerts:render: --minute "${text}" is not a duration (e.g. 5s, 60s, 1m)\n`);
      return 2;
    }
  }
  let rendered: string;
  try {
    rendered = renderRules(minuteMs);
  } catch (error) {
    process.stderr.write(`alerts:render: ${(error as Error).message}\n`);
    return 2;
  }
  const relative = path.relative(REPO_ROOT, SHIPPED_RULES);
  if (args.values.check) {
    const current = (() => {
      try {
        return readFileSync(SHIPPED_RULES, 'utf8');
      } catch {
        return '';
      }
    })();
    if (current === renderRules(SHIPPED_MINUTE_MS)) return 0;
    process.stderr.write(`alerts:render: ${relative} is stale: run \`npm run alerts:render\` and commit it\n`);
    return 1;
  }
  const out = args.values.out ?? (args.values.minute === undefined ? SHIPPED_RULES : undefined);
  if (!out) {
    process.stdout.write(rendered);
    return 0;
  }
  writeFileSync(out, rendered);
  process.stdout.write(`alerts:render: wrote ${path.relative(process.cwd(), out)} (${minuteMs / 1000} s demo minutes)\n`);
  return 0;
}

function parse() {
  return parseArgs({
    options: {
      minute: { type: 'string' },
      out: { type: 'string' },
      check: { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
    strict: true,
    allowPositionals: false,
  });
}

process.exitCode = main();
