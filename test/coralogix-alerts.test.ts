/**
 * The lab's alerts in Coralogix: the committed definitions (observability/coralogix/alerts.json)
 * are the rendering of the one rule source, every definition is valid against Coralogix's own
 * published types (the `cx-api` crate from crates.io, fetched at test time), and
 * `npm run coralogix:alerts -- --apply` creates, replaces and leaves alone by name against a
 * LOCAL STAND-IN for the Alerts API v3 that checks each request against the API reference
 * (paths, methods, the bearer key, the body shapes and their fields).
 */
import { execFile } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { alertsFileText, CORALOGIX_ALERTS_FILE, readCommittedAlerts } from '../packages/coralogix/src/alerts.js';
import { coralogixAlertsSource, type ProtoModel, parseProstModule, validateProto3Json } from '../packages/coralogix/src/cx-schema.js';
import { queryNames, renameMetrics } from '../packages/coralogix/src/promql.js';

const root = path.resolve(__dirname, '..');
const run = promisify(execFile);
const BASE_PATH = '/mgmt/openapi/latest/alerts/alerts-general/v3';

let model: ProtoModel;
beforeAll(async () => {
  model = parseProstModule(await coralogixAlertsSource());
}, 120_000);

describe('the rendered Coralogix alert definitions', () => {
  it('are committed fresh: the rendering of observability/alerts/black-friday.rules.yaml', () => {
    expect(readFileSync(CORALOGIX_ALERTS_FILE, 'utf8'), 'run `npm run coralogix:alerts` and commit it').toBe(alertsFileText());
  });

  it('hold every alert of the rules, each valid against Coralogix’s published AlertDefProperties', () => {
    const { alertDefs, renderedForMinute } = readCommittedAlerts();
    expect(renderedForMinute).toBe('60s');
    expect(alertDefs.map((d) => d.name)).toEqual([
      'CheckoutErrorBudgetBurn',
      'CheckoutLatencyHigh',
      'RecommendationsTimingOut',
      'CheckoutDbPoolExhausted',
      'BrowseSloBurn',
    ]);
    for (const def of alertDefs) expect(validateProto3Json(model, 'AlertDefProperties', def), def.name).toEqual([]);
    // The schema check is real: a definition with a misspelt enum is refused.
    const bad = structuredClone(alertDefs[0]!) as unknown as { metricThreshold: { rules: { condition: { conditionType: string } }[] } };
    bad.metricThreshold.rules[0]!.condition.conditionType = 'METRIC_THRESHOLD_CONDITION_TYPE_ABOVE';
    expect(validateProto3Json(model, 'AlertDefProperties', bad).join('\n')).toContain('conditionType');
  });

  it('query the Coralogix span-metric family, never the local traces_span_metrics_*, with ranges of at least 2 m', () => {
    for (const def of readCommittedAlerts().alertDefs) {
      const promql = def.metricThreshold.metricFilter.promql;
      const { metrics } = queryNames(promql);
      expect(metrics.length, def.name).toBeGreaterThan(0);
      for (const m of metrics)
        expect([
          'calls_total',
          'duration_ms_bucket',
          'duration_ms_count',
          'db_client_connection_pending_requests',
          'db_client_connection_max',
          'lab_db_client_connection_waiting_time_s_total',
        ]).toContain(m);
      for (const range of promql.matchAll(/\[([^\]]+)\]/g)) expect(['2m'], `${def.name}: [${range[1]}]`).toContain(range[1]);
      expect(def.entityLabels.managed_by).toBe('black-friday-lab');
    }
    expect(() => renameMetrics('rate(unknown_metric_total[5m])', {})).toThrow(/no Coralogix name for unknown_metric_total/);
  });

  it('--check fails on a stale file', async () => {
    await expect(run('node', ['packages/coralogix/dist/alerts-cli.js', '--check'], { cwd: root })).resolves.toBeDefined();
  });
});

// ---- the stand-in Alerts API -------------------------------------------------------------------

interface Stored {
  id: string;
  alertVersionId: string;
  alertDefProperties: Record<string, unknown>;
}

/** A LOCAL STAND-IN for Coralogix's Alerts API v3 (REST), checking requests against the reference. */
class StandInAlertsApi {
  readonly stored: Stored[] = [];
  readonly calls: { method: string; path: string }[] = [];
  /** Requests that broke the API's contract (the test asserts there are none). */
  readonly violations: string[] = [];
  private server?: Server;
  constructor(
    private readonly key: string,
    private readonly model: () => ProtoModel,
  ) {}

  get url() {
    return `http://127.0.0.1:${(this.server?.address() as AddressInfo | undefined)?.port ?? 0}${BASE_PATH}`;
  }

  async start() {
    this.server = createServer((req, res) => {
      this.handle(req).then(
        ([status, body]) => {
          res.writeHead(status, { 'content-type': 'application/json' });
          res.end(JSON.stringify(body));
        },
        (error: Error) => {
          res.writeHead(500, { 'content-type': 'application/json' });
          res.end(JSON.stringify({ message: error.message }));
        },
      );
    });
    this.server.listen(0, '127.0.0.1');
    await once(this.server, 'listening');
  }

  async stop() {
    this.server?.close();
  }

  private async handle(req: IncomingMessage): Promise<[number, unknown]> {
    const url = new URL(req.url ?? '/', 'http://x');
    this.calls.push({ method: req.method ?? '', path: url.pathname });
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const text = Buffer.concat(chunks).toString('utf8');
    if (url.pathname !== BASE_PATH) return this.violation(404, `${req.method} ${url.pathname}: not an alert-definitions path`);
    if (req.headers.authorization !== `Bearer ${this.key}`) return [401, { code: 16, message: 'unauthenticated' }];
    const json = () => {
      if (!/^application\/json/.test(req.headers['content-type'] ?? '')) throw new Error('content-type is not application/json');
      return JSON.parse(text) as Record<string, unknown>;
    };
    const checked = (props: unknown, where: string): string[] =>
      validateProto3Json(this.model(), 'AlertDefProperties', props).map((p) => `${where}: ${p}`);
    switch (req.method) {
      case 'GET': {
        // Pages of two, to make the client follow nextPageToken.
        const start = Number(url.searchParams.get('pagination.pageToken') || 0);
        const page = this.stored.slice(start, start + 2).map((s) => ({ ...s, createdTime: '2026-12-01T00:00:00Z' }));
        const next = start + 2 < this.stored.length ? String(start + 2) : '';
        return [200, { alertDefs: page, pagination: next ? { nextPageToken: next } : {} }];
      }
      case 'POST': {
        // CreateAlertDef maps its body to alert_def_properties: the properties themselves.
        const props = json();
        if ('alertDefProperties' in props)
          return this.violation(400, 'POST: the body is the properties, not wrapped in alertDefProperties');
        const problems = checked(props, 'POST');
        if (problems.length) return this.violation(400, problems.join('; '));
        const stored = { id: randomUUID(), alertVersionId: randomUUID(), alertDefProperties: this.withDefaults(props) };
        this.stored.push(stored);
        return [200, { alertDef: stored }];
      }
      case 'PUT': {
        // ReplaceAlertDef: `{ id, alertDefProperties }` in the body, the id unchanged.
        const body = json();
        const target = this.stored.find((s) => s.id === body.id);
        if (!target) return this.violation(404, `PUT: no alert definition ${String(body.id)}`);
        const problems = checked(body.alertDefProperties, 'PUT');
        if (problems.length) return this.violation(400, problems.join('; '));
        target.alertDefProperties = this.withDefaults(body.alertDefProperties as Record<string, unknown>);
        target.alertVersionId = randomUUID();
        return [200, { alertDef: target }];
      }
      default:
        return this.violation(405, `${req.method} ${url.pathname}: not an operation of the alert-definitions service`);
    }
  }

  /** The API answers with fields a client did not send (defaults); a client must not mind. */
  private withDefaults(props: Record<string, unknown>) {
    return { phantomMode: false, deleted: false, ...props };
  }

  private violation(status: number, message: string): [number, unknown] {
    this.violations.push(message);
    return [status, { code: 3, message }];
  }
}

describe('npm run coralogix:alerts -- --apply, against the stand-in Alerts API', () => {
  // Throwaway keys for the stand-in only.
  const apiKey = `cxmgmt-${randomBytes(12).toString('hex')}`;
  const sendKey = `cxsend-${randomBytes(12).toString('hex')}`;
  const api = new StandInAlertsApi(apiKey, () => model);
  beforeAll(() => api.start());
  afterAll(() => api.stop());

  const apply = async (env: Record<string, string>) => {
    try {
      const { stdout, stderr } = await run('node', ['packages/coralogix/dist/alerts-cli.js', '--apply'], {
        cwd: root,
        env: { PATH: process.env.PATH ?? '', CORALOGIX_API_URL: api.url, ...env },
      });
      return { code: 0, output: stdout + stderr };
    } catch (error) {
      const e = error as { code: number; stdout: string; stderr: string };
      return { code: e.code, output: e.stdout + e.stderr };
    }
  };

  it('creates what is missing, replaces what differs, leaves the rest, and a second run changes nothing', async () => {
    const defs = readCommittedAlerts().alertDefs;
    // The account already has someone else's alert, and an older version of one of the lab's.
    const older = structuredClone(defs[1]!);
    older.metricThreshold.rules[0]!.condition.threshold = 3000;
    api.stored.push(
      { id: 'other-team', alertVersionId: 'v1', alertDefProperties: { ...defs[0]!, name: 'Somebody else’s alert' } },
      { id: 'lab-latency', alertVersionId: 'v1', alertDefProperties: older as unknown as Record<string, unknown> },
    );

    const first = await apply({ CORALOGIX_API_KEY: apiKey, CORALOGIX_PRIVATE_KEY: sendKey });
    expect(first.code, first.output).toBe(0);
    expect(first.output).toContain('CheckoutLatencyHigh: replaced (id lab-latency)');
    for (const name of ['CheckoutErrorBudgetBurn', 'RecommendationsTimingOut', 'CheckoutDbPoolExhausted', 'BrowseSloBurn'])
      expect(first.output).toContain(`${name}: created`);
    expect(api.stored).toHaveLength(6);
    expect(api.stored.find((s) => s.id === 'other-team')?.alertDefProperties.name).toBe('Somebody else’s alert');

    const writes = () => api.calls.filter((c) => c.method !== 'GET').length;
    const before = writes();
    const second = await apply({ CORALOGIX_API_KEY: apiKey });
    expect(second.code, second.output).toBe(0);
    expect(second.output.match(/: unchanged/g)).toHaveLength(5);
    expect(writes()).toBe(before);
    expect(api.violations).toEqual([]);
    for (const output of [first.output, second.output]) expect(output).not.toContain(apiKey);
  });

  it('refuses the Send-Your-Data key, a missing key and a refused key with a clear message', async () => {
    const calls = api.calls.length;
    const same = await apply({ CORALOGIX_API_KEY: sendKey, CORALOGIX_PRIVATE_KEY: sendKey });
    expect(same.code).toBe(2);
    expect(same.output).toContain('is the Send-Your-Data key');
    const none = await apply({});
    expect(none.code).toBe(2);
    expect(none.output).toContain('--apply needs CORALOGIX_API_KEY');
    expect(api.calls.length).toBe(calls);

    const refused = await apply({ CORALOGIX_API_KEY: `${apiKey}x` });
    expect(refused.code).toBe(1);
    expect(refused.output).toContain('401: the key was refused');
    expect(refused.output).not.toContain(apiKey);
  });

  it('stops at two definitions with the same name instead of guessing', async () => {
    const twin = api.stored.find((s) => s.alertDefProperties.name === 'BrowseSloBurn')!;
    api.stored.push({ ...structuredClone(twin), id: 'twin' });
    const result = await apply({ CORALOGIX_API_KEY: apiKey });
    expect(result.code).toBe(1);
    expect(result.output).toMatch(/2 alert definitions are named "BrowseSloBurn" \(ids .*twin\)/);
  });
});
