/**
 * The alert rules (observability/alerts/black-friday.rules.yaml), checked with the real
 * promtool (built from the Go module proxy by scripts/build-go-tools.sh): the shipped 60 s
 * rendering is current, every rendering is valid, and the unit tests of every alert
 * (observability/alerts/black-friday.rules.test.yaml) pass against the shipped one.
 */
import { execFile, execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { minuteLabel, parsePromDuration, promDuration, renderRules, SHIPPED_RULES } from '@bfl/lab/alert-rules';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';

const root = path.resolve(__dirname, '..');
const run = promisify(execFile);
const PROMTOOL = execFileSync('bash', [path.join(root, 'scripts/build-go-tools.sh'), '--print-path', 'promtool'], {
  encoding: 'utf8',
}).trim();

function promtool(): string {
  if (!existsSync(PROMTOOL)) throw new Error(`promtool is not built (${PROMTOOL} is missing): run npm run test-tools`);
  return PROMTOOL;
}

async function promtoolRun(args: string[]): Promise<{ code: number; output: string }> {
  try {
    const { stdout, stderr } = await run(promtool(), args, { cwd: root });
    return { code: 0, output: `${stdout}${stderr}` };
  } catch (error) {
    const e = error as { code?: number; stdout?: string; stderr?: string };
    return { code: typeof e.code === 'number' ? e.code : 1, output: `${e.stdout ?? ''}${e.stderr ?? ''}` };
  }
}

// biome-ignore lint/suspicious/noExplicitAny: rule files are checked field by field
type Doc = any;

describe('alert rule rendering', () => {
  it('writes demo minutes as Prometheus durations', () => {
    expect(promDuration(120_000)).toBe('2m');
    expect(promDuration(2_500)).toBe('2s500ms');
    expect(promDuration(3_600_000 + 1_000)).toBe('1h1s');
    expect(parsePromDuration('2s500ms')).toBe(2_500);
    expect(parsePromDuration('1m')).toBe(60_000);
    expect(() => parsePromDuration('1x')).toThrow(/not a Prometheus duration/);
    expect(minuteLabel(60_000)).toBe('60s');
    expect(minuteLabel(2_500)).toBe('2500ms');
    expect(() => renderRules(500)).toThrow(/at least 1 s/);
  });

  it('ships the 60 s rendering, current with its source (npm run alerts:render)', () => {
    expect(readFileSync(SHIPPED_RULES, 'utf8'), 'stale: run `npm run alerts:render` and commit it').toBe(renderRules(60_000));
  });

  it('renders every window and `for` from demo minutes, and labels every group with the minute length', () => {
    const at60 = parse(renderRules(60_000)) as Doc;
    const at5 = parse(renderRules(5_000)) as Doc;
    const rules = (doc: Doc) => doc.groups.flatMap((g: Doc) => g.rules);
    for (const [doc, minute, burnLong, burnShort, forBurn] of [
      [at60, '60s', '2m', '30s', '15s'],
      [at5, '5s', '10s', '2s500ms', '1s250ms'],
    ] as const) {
      for (const group of doc.groups) {
        expect(group.name).toMatch(new RegExp(`@${minute}$`));
        expect(group.labels).toEqual({ rendered_for_minute: minute });
        expect(parsePromDuration(group.interval)).toBeGreaterThanOrEqual(1_000);
      }
      const burn = rules(doc).find((r: Doc) => r.alert === 'CheckoutErrorBudgetBurn');
      expect(burn.expr).toContain(`[${burnLong}]`);
      expect(burn.expr).toContain(`[${burnShort}]`);
      expect(burn.for).toBe(forBurn);
      expect(JSON.stringify(doc)).not.toMatch(/\d+(\.\d+)?dm\b|\{\{minute\}\}/);
    }
  });

  it('gives every alert a summary, a description and a runbook', () => {
    const doc = parse(renderRules(60_000)) as Doc;
    const alerts = doc.groups.flatMap((g: Doc) => g.rules).filter((r: Doc) => r.alert);
    expect(alerts.map((a: Doc) => a.alert).sort()).toEqual([
      'BrowseSloBurn',
      'CheckoutDbPoolExhausted',
      'CheckoutErrorBudgetBurn',
      'CheckoutLatencyHigh',
      'RecommendationsTimingOut',
    ]);
    for (const alert of alerts) {
      for (const key of ['summary', 'description', 'runbook'])
        expect(alert.annotations?.[key]?.length, `${alert.alert} ${key}`).toBeGreaterThan(20);
    }
  });
});

describe('promtool', () => {
  it.each([60_000, 5_000, 2_500])('accepts the rules rendered for %i ms demo minutes (promtool check rules)', async (minuteMs) => {
    const file = path.join(mkdtempSync(path.join(tmpdir(), 'rules-')), 'rules.yaml');
    writeFileSync(file, renderRules(minuteMs));
    const result = await promtoolRun(['check', 'rules', file]);
    expect(result.output).toMatch(/SUCCESS: 5 rules found/);
    expect(result.code, result.output).toBe(0);
  });

  it('passes the unit tests of every alert (promtool test rules)', async () => {
    const result = await promtoolRun(['test', 'rules', 'observability/alerts/black-friday.rules.test.yaml']);
    expect(result.output).toMatch(/SUCCESS/);
    expect(result.code, result.output).toBe(0);
  });

  it('fails the unit tests when an alert is broken (the tests can fail)', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'rules-broken-'));
    mkdirSync(path.join(dir, 'prometheus'));
    mkdirSync(path.join(dir, 'alerts'));
    // The latency threshold moved past what the incident reaches.
    writeFileSync(path.join(dir, 'prometheus/black-friday.rules.yaml'), renderRules(60_000).replace('> 4000', '> 6000'));
    writeFileSync(
      path.join(dir, 'alerts/black-friday.rules.test.yaml'),
      readFileSync(path.join(root, 'observability/alerts/black-friday.rules.test.yaml'), 'utf8'),
    );
    const result = await promtoolRun(['test', 'rules', path.join(dir, 'alerts/black-friday.rules.test.yaml')]);
    expect(result.code).not.toBe(0);
    expect(result.output).toMatch(/FAILED/);
  });
});
