/**
 * `npm run coralogix:alerts`: the lab's alert rules as Coralogix alert definitions.
 *
 *   npm run coralogix:alerts                  render observability/coralogix/alerts.json
 *                                             from observability/alerts/ (60 s minutes)
 *   npm run coralogix:alerts -- --check       exit 1 when that file is stale
 *   npm run coralogix:alerts -- --apply       create or replace them by name in Coralogix:
 *                                             CORALOGIX_DOMAIN and CORALOGIX_API_KEY (a
 *                                             management key with the Alerts permissions)
 */
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { REPO_ROOT } from '@bfl/lab/alert-rules';
import { headerHelp } from '@bfl/lab/cli-help';
import { alertsFileText, CORALOGIX_ALERTS_FILE, readCommittedAlerts } from './alerts.js';
import { alertsApiBase, applyAlerts } from './api.js';

const NAME = 'coralogix:alerts';
const fail = (message: string, code = 2) => {
  process.stderr.write(`${NAME}: ${message}\n`);
  return code;
};

async function main(): Promise<number> {
  let values: { check: boolean; apply: boolean; help: boolean };
  try {
    ({ values } = parseArgs({
      options: {
        check: { type: 'boolean', default: false },
        apply: { type: 'boolean', default: false },
        help: { type: 'boolean', short: 'h', default: false },
      },
      strict: true,
      allowPositionals: false,
    }));
  } catch (error) {
    return fail(`${(error as Error).message} (see --help)`);
  }
  if (values.help) {
    process.stdout.write(headerHelp(__filename, 10));
    return 0;
  }
  const relative = path.relative(REPO_ROOT, CORALOGIX_ALERTS_FILE);
  let rendered: string;
  try {
    rendered = alertsFileText();
  } catch (error) {
    return fail(`cannot render the rules: ${(error as Error).message}`);
  }
  const committed = (() => {
    try {
      return readFileSync(CORALOGIX_ALERTS_FILE, 'utf8');
    } catch {
      return '';
    }
  })();
  if (values.check || values.apply) {
    if (committed !== rendered) return fail(`${relative} is stale: run \`npm run ${NAME}\` and commit it`, 1);
    if (values.check) return 0;
  } else {
    writeFileSync(CORALOGIX_ALERTS_FILE, rendered);
    process.stdout.write(`${NAME}: wrote ${relative}\n`);
    return 0;
  }

  const domain = process.env.CORALOGIX_DOMAIN?.trim() ?? '';
  const key = process.env.CORALOGIX_API_KEY?.trim() ?? '';
  const missing = [!domain && !process.env.CORALOGIX_API_URL && 'CORALOGIX_DOMAIN', !key && 'CORALOGIX_API_KEY'].filter(Boolean);
  if (missing.length)
    return fail(`--apply needs ${missing.join(' and ')} (a management API key with the Alerts permissions; see the README)`);
  if (key === process.env.CORALOGIX_PRIVATE_KEY?.trim())
    return fail(
      'CORALOGIX_API_KEY is the Send-Your-Data key (CORALOGIX_PRIVATE_KEY): --apply needs a management API key with the Alerts permissions',
    );
  if (domain && !/^[a-z0-9.-]+\.[a-z]{2,}$/i.test(domain))
    return fail(`CORALOGIX_DOMAIN "${domain}" is not a domain (e.g. eu2.coralogix.com)`);
  // CORALOGIX_API_URL: another base for the same API (a proxy, or the tests' stand-in).
  const base = process.env.CORALOGIX_API_URL?.trim() || alertsApiBase(domain);
  const { alertDefs } = readCommittedAlerts();
  try {
    for (const result of await applyAlerts(base, key, alertDefs))
      process.stdout.write(`${NAME}: ${result.name}: ${result.action}${result.id ? ` (id ${result.id})` : ''}\n`);
  } catch (error) {
    return fail((error as Error).message, 1);
  }
  return 0;
}

main().then((code) => {
  process.exitCode = code;
});
