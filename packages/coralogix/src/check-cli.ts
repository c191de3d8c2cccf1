/**
 * `npm run coralogix:check`: before a demo, send one span, one metric point and one log
 * record to Coralogix with the lab's settings and say what the ingress answered.
 *
 *   CORALOGIX_DOMAIN, CORALOGIX_PRIVATE_KEY, CORALOGIX_APPLICATION_NAME and
 *   CORALOGIX_SUBSYSTEM_NAME as for the collector (the environment, else .env.local, else .env);
 *   CORALOGIX_INGRESS_ENDPOINT=host:port overrides ingress.<domain>:443.
 *   Exit 0: all three accepted; 1: the ingress refused or could not be reached; 2: settings missing.
 */
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { REPO_ROOT } from '@bfl/lab/alert-rules';
import { headerHelp } from '@bfl/lab/cli-help';
import { CHECK_SERVICE, checkIngress, ingressEndpoint } from './check.js';

const NAME = 'coralogix:check';

/** KEY=value lines of an env file (as Compose reads .env and .env.local). */
function dotenv(file: string): Record<string, string> {
  if (!existsSync(file)) return {};
  const out: Record<string, string> = {};
  for (const line of readFileSync(file, 'utf8').split('\n')) {
    const match = /^\s*([A-Z_][A-Z0-9_]*)\s*=\s*(.*?)\s*$/.exec(line);
    if (match?.[1]) out[match[1]] = (match[2] ?? '').replace(/^(['"])(.*)\1$/, '$2');
  }
  return out;
}

async function main(): Promise<number> {
  if (process.argv.slice(2).some((a) => a === '--help' || a === '-h')) {
    process.stdout.write(headerHelp(__filename, 9));
    return 0;
  }
  const unknown = process.argv.slice(2).filter((a) => a !== '--help' && a !== '-h');
  if (unknown.length) {
    process.stderr.write(`${NAME}: unknown arguments: ${unknown.join(' ')} (see --help)\n`);
    return 2;
  }
  const env = { ...dotenv(path.join(REPO_ROOT, '.env')), ...dotenv(path.join(REPO_ROOT, '.env.local')), ...process.env };
  const get = (name: string) => env[name]?.trim() ?? '';
  const required = ['CORALOGIX_DOMAIN', 'CORALOGIX_PRIVATE_KEY', 'CORALOGIX_APPLICATION_NAME', 'CORALOGIX_SUBSYSTEM_NAME'];
  const missing = required.filter((name) => !get(name));
  if (missing.length) {
    process.stderr.write(`${NAME}: set ${missing.join(', ')} (in the environment or .env.local; see .env.example)\n`);
    return 2;
  }
  const domain = get('CORALOGIX_DOMAIN');
  if (!/^[a-z0-9.-]+\.[a-z]{2,}$/i.test(domain)) {
    process.stderr.write(`${NAME}: CORALOGIX_DOMAIN "${domain}" is not a domain (e.g. eu2.coralogix.com)\n`);
    return 2;
  }
  const settings = {
    domain,
    privateKey: get('CORALOGIX_PRIVATE_KEY'),
    application: get('CORALOGIX_APPLICATION_NAME'),
    subsystem: get('CORALOGIX_SUBSYSTEM_NAME'),
    endpoint: get('CORALOGIX_INGRESS_ENDPOINT') || undefined,
  };
  process.stdout.write(
    `${NAME}: sending one span, one metric point and one log record to ${ingressEndpoint(settings)} ` +
      `(application ${settings.application}, subsystem ${settings.subsystem}, service.name ${CHECK_SERVICE})\n`,
  );
  const results = await checkIngress(settings);
  for (const r of results) process.stdout.write(`${NAME}: ${r.signal.padEnd(7)} ${r.verdict}: ${r.detail} (${r.ms} ms)\n`);
  const ok = results.every((r) => r.verdict === 'ok');
  process.stdout.write(`${NAME}: ${ok ? 'ok: Coralogix accepted all three' : 'FAILED: see above'}\n`);
  return ok ? 0 : 1;
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  (error: Error) => {
    process.stderr.write(`${NAME}: ${error.message}\n`);
    process.exitCode = 1;
  },
);
