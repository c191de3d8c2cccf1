/**
 * observability/grafana/dashboards/: the committed JSON must be exactly what the dashboards
 * as code (packages/dashboards, Grafana Foundation SDK) make today, and fit for Grafana:
 * provisioned datasources only, units everywhere, queries that are PromQL once Grafana's
 * variables are filled in.
 */
import { execFile } from 'node:child_process';
import { cpSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import {
  annotationQueries,
  type DashboardJson,
  type PanelJson,
  panelQueries,
  renderAll,
  substitute,
} from '../packages/dashboards/src/index.js';

const root = path.resolve(__dirname, '..');
const committed = path.join(root, 'observability/grafana/dashboards');
const run = promisify(execFile);
const stale = 'observability/grafana/dashboards is stale: run `npm run dashboards:generate` and commit the result';

const jsonFiles = (dir: string) =>
  readdirSync(dir)
    .filter((f) => f.endsWith('.json'))
    .sort();
// biome-ignore lint/suspicious/noExplicitAny: dashboards are checked field by field
type Json = any;
const dashboards: Json[] = jsonFiles(committed).map((f) => JSON.parse(readFileSync(path.join(committed, f), 'utf8')));
const byUid = (uid: string) => dashboards.find((d) => d.uid === uid);
const panels = (d: DashboardJson): PanelJson[] => (d.panels ?? []).flatMap((p) => (p.type === 'row' ? (p.panels ?? []) : [p]));
const titled = (d: Json, title: string) => panels(d).find((p) => p.title === title) as Json;

describe('observability/grafana/dashboards', () => {
  const scratch = mkdtempSync(path.join(tmpdir(), 'dashboards-'));
  afterAll(() => rmSync(scratch, { recursive: true, force: true }));

  it('is what the dashboards as code make today, byte for byte', () => {
    const fresh = renderAll();
    expect(jsonFiles(committed), stale).toEqual([...fresh.keys()].sort());
    for (const [file, content] of fresh) {
      expect(readFileSync(path.join(committed, file), 'utf8'), `${file}: ${stale}`).toBe(content);
    }
  });

  it('`npm run dashboards:generate -- --check` passes on them and names stale files and the fix otherwise', async () => {
    const check = (dir: string) =>
      run('npm', ['run', '--silent', 'dashboards:generate', '--', '--check', '--out', dir], { cwd: root, timeout: 120_000 });
    await expect(check(committed)).resolves.toMatchObject({ stdout: expect.stringMatching(/fresh/) });

    const copy = path.join(scratch, 'copy');
    cpSync(committed, copy, { recursive: true });
    const file = path.join(copy, 'black-friday.json');
    writeFileSync(file, readFileSync(file, 'utf8').replace('"refresh": "5s"', '"refresh": "1m"'));
    writeFileSync(path.join(copy, 'hand-made.json'), '{}\n');
    const failed = await check(copy).then(
      () => undefined,
      (error: { code: number; stderr: string }) => error,
    );
    expect(failed?.code).toBe(1);
    expect(failed?.stderr).toMatch(/black-friday\.json \(differs\)/);
    expect(failed?.stderr).toMatch(/hand-made\.json/);
    expect(failed?.stderr).toContain('npm run dashboards:generate');
    expect(failed?.stderr).not.toMatch(/service-red\.json/);

    // Writing repairs it (and removes what no dashboard makes).
    await run('node', [path.join(root, 'packages/dashboards/dist/generate.js'), '--out', copy], { cwd: root });
    expect(jsonFiles(copy)).toEqual(jsonFiles(committed));
    await expect(check(copy)).resolves.toBeTruthy();
  }, 180_000);

  it('holds the two dashboards, read-only, 30 minutes, refreshed every 5 s', () => {
    expect(dashboards.map((d) => d.uid).sort()).toEqual(['black-friday', 'service-red']);
    for (const d of dashboards) {
      expect(d.editable, d.uid).toBe(false);
      expect(d.time, d.uid).toEqual({ from: 'now-30m', to: 'now' });
      expect(d.refresh, d.uid).toBe('5s');
      const ids = (d.panels as Json[]).flatMap((p) => [p.id, ...(p.panels ?? []).map((c: Json) => c.id)]);
      expect(new Set(ids).size, `${d.uid}: unique panel ids`).toBe(ids.length);
      for (const p of d.panels as Json[]) expect(p.gridPos.x + p.gridPos.w, `${d.uid}/${p.title}`).toBeLessThanOrEqual(24);
    }
  });

  it('queries only the provisioned datasources (uid prometheus or jaeger), on every panel and target', () => {
    for (const d of dashboards) {
      for (const p of panels(d)) {
        const where = `${d.uid}/${p.title}`;
        expect(['prometheus', 'jaeger'], where).toContain(p.datasource?.uid);
        expect(p.targets?.length, `${where}: queries`).toBeGreaterThan(0);
        for (const t of p.targets ?? []) expect(['prometheus', 'jaeger'], `${where}/${t.refId}`).toContain(t.datasource?.uid);
      }
      for (const a of d.annotations?.list ?? []) expect(['prometheus', 'jaeger'], `${d.uid}/${a.name}`).toContain(a.datasource?.uid);
    }
  });

  it('sets a unit on every panel, and shows exemplars (links to traces) on every latency panel', () => {
    for (const d of dashboards) {
      for (const p of panels(d) as Json[]) {
        const where = `${d.uid}/${p.title}`;
        expect(p.fieldConfig?.defaults?.unit, `${where}: unit`).toMatch(/\S/);
        expect(p.description, `${where}: description`).toMatch(/\S{10}/);
        if (p.type === 'timeseries' && p.fieldConfig.defaults.unit === 'ms') {
          for (const t of p.targets) expect(t.exemplar, `${where}/${t.refId}: exemplar`).toBe(true);
        }
      }
    }
  });

  it('has queries that are complete PromQL once the variables are filled in', () => {
    for (const d of dashboards) {
      const queries = [...panelQueries(d, '1m'), ...annotationQueries(d, '1m')];
      expect(queries.length, d.uid).toBeGreaterThan(0);
      // Every target with an expr is one of them.
      const targets = panels(d).flatMap((p) => p.targets ?? []);
      expect(panelQueries(d, '1m')).toHaveLength(targets.length);
      for (const q of queries) {
        const where = `${q.dashboard}/${q.panel}/${q.refId}`;
        expect(q.dashboard, where).toBe(d.uid);
        expect(q.refId, where).toMatch(/\S/);
        expect(q.expr.trim(), where).not.toBe('');
        expect(q.expr, `${where}: leftover variable`).not.toMatch(/\$|\[\[/);
        for (const [open, close] of ['()', '{}', '[]']) {
          expect(q.expr.split(open!).length, `${where}: balanced ${open}${close}`).toBe(q.expr.split(close!).length);
        }
        if (q.expr.includes('traces_span_metrics')) {
          // demo_minute changes every demo minute: every series is aggregated across it.
          expect(q.expr, `${where}: aggregated`).toMatch(/^\(?\s*(histogram_quantile\(|sum by \()/);
          expect(q.expr, where).not.toMatch(/demo_minute/);
        }
      }
    }
  });

  it('fills in defaults and Grafana interval variables like Grafana does', () => {
    const d: DashboardJson = {
      templating: {
        list: [
          { name: 'service', type: 'query', current: { value: 'frontend' } },
          { name: 'traffic_type', type: 'custom', query: 'baseline,demo', multi: true, includeAll: true, current: { value: ['$__all'] } },
          { name: 'pick', type: 'custom', query: 'a.b,c', multi: true, current: { value: ['a.b', 'c'] } },
        ],
      },
    };
    // biome-ignore lint/suspicious/noTemplateCurlyInString: Grafana's ${var} syntax, not a template literal
    expect(substitute('rate(x{s="$service", t=~"${traffic_type}"}[$__rate_interval])', d, '30s')).toBe(
      'rate(x{s="frontend", t=~"(baseline|demo)"}[30s])',
    );
    expect(substitute('x{p=~"[[pick]]"}[$__interval] offset $__range $unknown', d, '2m')).toBe('x{p=~"(a\\.b|c)"}[2m] offset 2m $unknown');
  });

  it('tells the Black Friday story: traffic classes, failure reasons, the database, the demo minute and the alerts', () => {
    const bf = byUid('black-friday');
    expect(bf.title).toBe('Black Friday');
    const exprs = (title: string) => (titled(bf, title)?.targets ?? []).map((t: Json) => t.expr).join('\n');
    expect(exprs('Request rate by traffic class')).toMatch(/sum by \(traffic_type\).*span_kind="SPAN_KIND_SERVER"/);
    expect(exprs('Error rate by traffic class')).toContain('status_code="STATUS_CODE_ERROR"');
    expect(exprs('p95 latency by traffic class')).toMatch(/histogram_quantile\(0\.95, sum by \(le, traffic_type\)/);
    expect(exprs('Recommendation query duration (p95)')).toMatch(/service_name="recommendation".*db_system_name="postgresql"/);
    expect(exprs('DB pool wait (p95 of pg.pool.acquire)')).toContain('span_name="pg.pool.acquire"');
    expect(exprs('DB pools: connections in use / requests waiting')).toMatch(
      /db_client_connection_count[\s\S]*db_client_connection_pending_requests/,
    );
    expect(exprs('Failure reasons over time')).toMatch(/failure_reason/);
    expect(exprs('Demo minute')).toContain('lab_demo_minute');
    expect(bf.annotations.list.map((a: Json) => a.expr)).toContain('ALERTS{alertstate="firing"}');
    expect(bf.templating.list.map((v: Json) => v.name)).toEqual(['traffic_type']);
  });

  it('shows RED per route and per dependency of the chosen service (default frontend)', () => {
    const red = byUid('service-red');
    const service = red.templating.list.find((v: Json) => v.name === 'service');
    expect(service).toMatchObject({
      type: 'query',
      query: 'label_values(traces_span_metrics_calls_total, service_name)',
      current: { value: 'frontend' },
      datasource: { uid: 'prometheus' },
    });
    const exprs = panels(red).flatMap((p) => (p.targets ?? []).map((t) => String(t.expr)));
    for (const q of [0.5, 0.95, 0.99]) expect(exprs.join('\n')).toContain(`histogram_quantile(${q}, sum by (le, http_route)`);
    expect(exprs.filter((e) => e.includes('SPAN_KIND_SERVER')).every((e) => e.includes('service_name="$service"'))).toBe(true);
    expect(exprs.some((e) => /sum by \(peer_service, span_name\).*SPAN_KIND_CLIENT/.test(e))).toBe(true);
  });
});
