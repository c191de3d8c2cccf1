/**
 * The story regression test, where people look: the default black-friday scenario at
 * `--minute 5s --verify-traces --verify-alerts` against the lab with its observability
 * stack (`npm run lab -- --observe --minute 5s`: nine real service processes on real
 * PostgreSQL and Redis, the lab's real collector with its span metrics, a real Prometheus
 * evaluating the alert rules rendered for 5 s minutes, and a real Jaeger v2).
 *
 * It holds the whole story at once:
 *   - the scenario's verdict: baseline green, demo failing more every minute up to ~78 %
 *     at the peak with p95 near the 5 s timeout, rates held, the fix healing it;
 *   - the alerts: the checkout alerts fire during the ramp and resolve after the fix, the
 *     browse SLO alert never fires (the scenario's `alerts:` section);
 *   - the traces: every service, every span tagged with the story's baggage;
 *   - the span metrics tell the runner's story: per minute and class, the p95 from the
 *     buckets of the frontend's server spans within 10 % of the runner's, the error rate
 *     within 5 points;
 *   - every dashboard panel's query returns data from that Prometheus;
 *   - Jaeger's Monitor tab (the API it calls) answers with data for `frontend`.
 *
 * At half scale: `--rate-scale 0.5` against the lab at `--scale 0.5` (the story's pools
 * of 4 halved to 2), so every queue is as full as at full scale. At full scale the
 * story's peak (70 checkouts/s, some 60 spans each) needs more CPU than two shared
 * cores give once the observability stack and the trace check run beside it: on a
 * slow day the lab saturated from minute 3 (demo p95 2.1 s in minute 0 instead of
 * 0.4-0.7, browse 7 s at the fix) and the alerts followed the lab, not the script.
 * At half scale the same host told the story in its bands (minute 0 p95 554 ms,
 * 79 % errors and p95 5.0 s at the peak, browse at most 453 ms, every alert on cue).
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { mkdtempSync, readFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { SHOP_SERVICES, scaledPoolEnv } from '@bfl/contract';
import { busyProcesses, cpuSeconds, type Lab, rssMiB, startLab } from '@bfl/lab';
import { type ObservePorts, type ObserveStack, startObserveStack } from '@bfl/lab/observe';
import { afterAll, beforeAll, describe, expect, it, onTestFailed } from 'vitest';
import { annotationQueries, type DashboardJson, panelQueries } from '../packages/dashboards/src/index.js';
import { firstLine } from './support';

const root = path.resolve(__dirname, '..');
const MINUTE_MS = 5_000;
/** The story at half its load (see above): the runner's --rate-scale, the lab's --scale. */
const SCALE = 0.5;
// Beside a developer's lab and stack (DESIGN.md's ports + 20000).
const ports = Object.fromEntries(SHOP_SERVICES.map((name, i) => [name, 29011 + i]));
const stackPorts: ObservePorts = {
  collectorGrpc: 24317,
  collectorHttp: 24318,
  collectorHealth: 23133,
  jaegerQuery: 26686,
  jaegerQueryGrpc: 26685,
  jaegerOtlpGrpc: 24327,
  jaegerOtlpHttp: 24328,
  jaegerHealth: 23134,
  prometheus: 29090,
  verify: 29319,
};
const PROMETHEUS = `http://127.0.0.1:${stackPorts.prometheus}`;
const JAEGER = `http://127.0.0.1:${stackPorts.jaegerQuery}`;

let stack: ObserveStack;
let lab: Lab;

beforeAll(async () => {
  // What else used the CPU as this started: the first thing to read when the story missed a band.
  const busy = await busyProcesses();
  process.stdout.write(
    `story: load average ${loadavg()
      .map((l) => l.toFixed(2))
      .join(' ')}; other processes using CPU: ${busy.join('; ') || 'none'}\n`,
  );
  stack = await startObserveStack({ minuteMs: MINUTE_MS, ports: stackPorts });
  lab = await startLab({ services: SHOP_SERVICES, ports, env: { ...stack.serviceEnv, ...scaledPoolEnv(SCALE), LOG_LEVEL: 'error' } });
}, 120_000);

afterAll(async () => {
  await lab?.stop();
  await stack?.stop();
});

/** The report's type, derived from its zod schema (the JSON the runner writes). */
type Report = import('../services/load-generator/src/report/schema.js').Report;

interface PromVector {
  metric: Record<string, string>;
  value: [number, string];
}
async function promQuery(expr: string, time?: number): Promise<PromVector[]> {
  const params = new URLSearchParams({ query: expr, ...(time ? { time: String(time) } : {}) });
  const response = await fetch(`${PROMETHEUS}/api/v1/query?${params}`);
  const body = (await response.json()) as { status: string; error?: string; data: { result: PromVector[] } };
  if (body.status !== 'success') throw new Error(`${expr}: ${body.error}`);
  return body.data.result;
}
async function promRange(expr: string, start: number, end: number, step: number): Promise<unknown[]> {
  const params = new URLSearchParams({ query: expr, start: String(start), end: String(end), step: String(step) });
  const response = await fetch(`${PROMETHEUS}/api/v1/query_range?${params}`);
  const body = (await response.json()) as { status: string; error?: string; data: { result: unknown[] } };
  if (body.status !== 'success') throw new Error(`${expr}: ${body.error}`);
  return body.data.result;
}

/**
 * The scenario's expectations that time the host more than the story: on two shared
 * cores the p95 of browsing in a 5 s minute is the slowest of 4 requests and the p95 of
 * minute 0 is the second slowest of 33 checkouts on services just started (JIT-cold,
 * pools still connecting), and a busy event loop moves either by 100-300 ms from one run
 * to the next. The test prints them and `npm run scenario` keeps them in its verdict;
 * what browsing staying green means here is asserted where it is measured well: no
 * browse errors, and the browse SLO alert (99 % of browses within 500 ms, over burn-rate
 * windows) never firing.
 */
/** Fewer requests than this in a minute, and its p95 is their maximum (see below). */
const P95_MIN_REQUESTS = 20;
const HOST_TIMED = new Set(['baseline p95 250-500 ms every minute', 'demo minute 0 p95 400-700 ms']);

/** The frontend's server spans of one class: the route the runner calls for it. */
const ROUTE = { baseline: '/api/browse', demo: '/api/checkout' } as const;
const frontendSpans = (cls: 'baseline' | 'demo') =>
  `service_name="frontend", span_kind="SPAN_KIND_SERVER", http_route="${ROUTE[cls]}", traffic_type="${cls}"`;

/** Per demo minute, what the span metrics say about one class: calls, errors, p95. */
async function spanMetricsByMinute(cls: 'baseline' | 'demo') {
  // The series of a demo minute are cumulative and stop growing once its requests are
  // answered: the last value is the whole minute.
  const sel = frontendSpans(cls);
  const [calls, errors, p95] = await Promise.all([
    promQuery(`sum by (demo_minute) (traces_span_metrics_calls_total{${sel}})`),
    promQuery(`sum by (demo_minute) (traces_span_metrics_calls_total{${sel}, status_code="STATUS_CODE_ERROR"})`),
    promQuery(`histogram_quantile(0.95, sum by (demo_minute, le) (traces_span_metrics_duration_milliseconds_bucket{${sel}}))`),
  ]);
  const byMinute = (v: PromVector[]) => new Map(v.map((s) => [Number(s.metric.demo_minute), Number(s.value[1])]));
  return { calls: byMinute(calls), errors: byMinute(errors), p95: byMinute(p95) };
}

describe('the black-friday story on the lab with its observability stack', () => {
  // One retry: on two shared cores a noisy neighbour moves a band about one run in five
  // (the first errors a minute early, a 3.4-point dip at minute 3); two misses in a row fail.
  // Each attempt prints its number, and vitest's report counts the retry.
  let attempt = 0;
  it('meets every expectation, alerts included, and the span metrics, dashboards and Jaeger tell it too', {
    timeout: 240_000,
    retry: 1,
  }, async () => {
    const thisAttempt = ++attempt;
    process.stdout.write(`story: attempt ${thisAttempt} of 2 (load average ${loadavg()[0]?.toFixed(2)})\n`);
    // A retry that passes hides the first attempt's failure from vitest's report: printed here.
    onTestFailed(({ task }) => {
      process.stdout.write(`story: attempt ${thisAttempt} failed: ${firstLine(task.result?.errors?.at(-1)?.message)}\n`);
    });
    const dir = mkdtempSync(path.join(tmpdir(), 'story-'));
    const json = path.join(dir, 'r.json');
    const cpuBefore = new Map(stack.processes.map((p) => [p.name, cpuSeconds(p.pid)]));
    const startedAt = Date.now() / 1000;
    const child = spawn(
      process.execPath,
      [
        'packages/scenario-cli/dist/cli/cli.js',
        ...['--minute', '5s', '--rate-scale', String(SCALE), '--verify-traces', '--otlp-port', String(stackPorts.verify)],
        ...['--verify-alerts', PROMETHEUS, '--target', lab.url('frontend'), '--json', json, '--out', path.join(dir, 'report')],
      ],
      { cwd: root, env: { ...process.env, CI: 'true' }, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let output = '';
    child.stdout.on('data', (d) => (output += d));
    child.stderr.on('data', (d) => (output += d));
    const [code] = await once(child, 'exit');
    const endedAt = Date.now() / 1000;
    const report = JSON.parse(readFileSync(json, 'utf8')) as Report;
    const cost = stack.processes
      .map((p) => `${p.name} ${(cpuSeconds(p.pid) - cpuBefore.get(p.name)!).toFixed(1)} s CPU, ${rssMiB(p.pid)?.toFixed(0)} MiB`)
      .join('; ');
    process.stdout.write(`story on the observe stack: ${(endedAt - startedAt).toFixed(0)} s; ${cost}\n`);

    // The verdict: every expectation of the scenario, the alerts' among them, except the
    // two that time the host (reported, not asserted; see HOST_TIMED).
    const timed = report.expectations.filter((e) => HOST_TIMED.has(e.name));
    expect(
      timed.map((e) => e.name),
      'a HOST_TIMED expectation is no longer in the scenario',
    ).toEqual([...HOST_TIMED]);
    for (const e of timed)
      process.stdout.write(`story, host-timed (not asserted): ${e.ok ? 'PASS' : 'MISS'} ${e.name}: ${e.actual} (minute ${e.minute})\n`);
    // Every other miss too: with a retry, vitest reports only the last attempt's failure.
    for (const e of report.expectations.filter((x) => !x.ok && !HOST_TIMED.has(x.name)))
      process.stdout.write(`story, expectation MISS: ${e.name}: ${e.actual} (minute ${e.minute})\n`);
    for (const alert of report.alerts ?? [])
      process.stdout.write(`story, alert ${alert.name}: firing ${JSON.stringify(alert.firing)} ${alert.problems.join('; ')}\n`);
    if (report.alerts?.some((a) => !a.ok)) {
      // What the pool alert saw, per reading: the first thing to read when an alert missed its cue.
      const series = (await promRange(
        'sum(db_client_connection_pending_requests{db_client_connection_pool_name="checkout"})',
        startedAt,
        endedAt,
        0.5,
      )) as { values: [number, string][] }[];
      const points = (series[0]?.values ?? []).map(([t, v]) => `${((t - startedAt) / (MINUTE_MS / 1000)).toFixed(1)}:${v}`);
      process.stdout.write(`story, checkout pool waiting (demo minute:requests): ${points.join(' ')}\n`);
    }
    expect(
      report.expectations.filter((e) => !e.ok && !HOST_TIMED.has(e.name)),
      output,
    ).toEqual([]);
    expect(report.alerts?.every((a) => a.ok)).toBe(true);
    // The runner's exit code is its verdict: 0 when every expectation holds, 1 otherwise.
    expect(code, output).toBe(report.ok ? 0 : 1);
    for (const m of report.minutes) expect(m.traffic.baseline.errorRate, `baseline errors in minute ${m.minute}`).toBeLessThanOrEqual(0.02);
    // The failures are the story's: recommendations timing out, and the checkout pool running dry.
    const peak = report.minutes.at(-3)!.traffic.demo;
    expect(Object.keys(peak.errorsByReason)).toContain('recommendations-timeout');
    const reasons = new Set(report.minutes.flatMap((m) => Object.keys(m.traffic.demo.errorsByReason)));
    for (const reason of reasons) expect(['recommendations-timeout', 'pool-exhausted']).toContain(reason);

    // The alerts: the checkout ones fire during the ramp and resolve after the fix (minute
    // 12), the browse SLO alert never fires.
    const alerts = new Map((report.alerts ?? []).map((a) => [a.name, a]));
    expect([...alerts.keys()].sort()).toEqual(
      ['BrowseSloBurn', 'CheckoutDbPoolExhausted', 'CheckoutErrorBudgetBurn', 'CheckoutLatencyHigh', 'RecommendationsTimingOut'].sort(),
    );
    const fix = report.minutes.findIndex((m) => m.phase === 'recovery');
    for (const name of ['CheckoutErrorBudgetBurn', 'CheckoutLatencyHigh', 'RecommendationsTimingOut', 'CheckoutDbPoolExhausted']) {
      const alert = alerts.get(name)!;
      expect(alert.firstFiringMinute, name).not.toBeNull();
      expect(alert.firstFiringMinute!, name).toBeLessThan(fix);
      expect(alert.resolvedMinute!, name).toBeGreaterThanOrEqual(fix);
      expect(alert.firing, name).toHaveLength(1);
    }
    expect(alerts.get('BrowseSloBurn')!.firing).toEqual([]);
    // The HTML report draws when each fired.
    const html = readFileSync(path.join(dir, 'report', 'index.html'), 'utf8');
    for (const name of alerts.keys()) expect(html).toContain(name);

    // The traces.
    expect(report.traces?.services).toHaveLength(12);
    expect(report.traces?.attributeCoverage).toEqual({ 'traffic.type': 1, 'demo.minute': 1 });
    expect(report.traces?.example?.rows.length).toBeGreaterThan(7);

    // The span metrics: wait until the last minute's spans are counted (export every
    // 0.5 s, the collector's batch and its 1 s connector flush), then compare per minute.
    const wanted = (cls: 'baseline' | 'demo') => report.minutes.reduce((sum, m) => sum + m.traffic[cls].requests, 0);
    const counted = async (cls: 'baseline' | 'demo') =>
      Number((await promQuery(`sum(traces_span_metrics_calls_total{${frontendSpans(cls)}})`))[0]?.value[1] ?? 0);
    for (let i = 0; i < 30 && ((await counted('demo')) < wanted('demo') || (await counted('baseline')) < wanted('baseline')); i++)
      await sleep(500);
    // Within 10 % of the runner's p95 wherever a minute's p95 is a percentile: with fewer
    // than P95_MIN_REQUESTS requests it is their maximum (browsing: 4 a minute here), and
    // one request that waited outside the frontend's server span (its event loop busy when
    // the request arrived: up to 120 ms measured) moves it; there the span p95 must lie
    // between the runner's p50 and p95 (each within 10 %).
    const problems: string[] = [];
    for (const cls of ['baseline', 'demo'] as const) {
      const spans = await spanMetricsByMinute(cls);
      for (const m of report.minutes) {
        const runner = m.traffic[cls];
        const calls = spans.calls.get(m.minute) ?? 0;
        const errorRate = (spans.errors.get(m.minute) ?? 0) / (calls || 1);
        const p95 = spans.p95.get(m.minute) ?? Number.NaN;
        const where = `${cls} minute ${m.minute}`;
        if (Math.abs(calls - runner.requests) > Math.max(1, 0.02 * runner.requests))
          problems.push(`${where}: ${calls} frontend spans for ${runner.requests} requests`);
        if (Math.abs(errorRate - runner.errorRate) > 0.05)
          problems.push(`${where}: span error rate ${errorRate.toFixed(3)}, runner ${runner.errorRate.toFixed(3)}`);
        if (runner.requests >= P95_MIN_REQUESTS) {
          if (!(Math.abs(p95 - runner.p95Ms) <= 0.1 * runner.p95Ms))
            problems.push(`${where}: span p95 ${p95.toFixed(0)} ms, runner ${runner.p95Ms.toFixed(0)} ms`);
        } else if (!(p95 >= 0.9 * runner.p50Ms && p95 <= 1.1 * runner.p95Ms)) {
          problems.push(`${where}: span p95 ${p95.toFixed(0)} ms outside the runner's p50-p95 ${runner.p50Ms}-${runner.p95Ms} ms`);
        }
      }
    }
    expect(problems).toEqual([]);

    // Every dashboard panel's query (and annotation) returns data over the run.
    const dashboards = ['black-friday', 'service-red'].map(
      (name) => JSON.parse(readFileSync(path.join(root, 'observability/grafana/dashboards', `${name}.json`), 'utf8')) as DashboardJson,
    );
    const queries = dashboards.flatMap((d) => [...panelQueries(d, '30s'), ...annotationQueries(d, '30s')]);
    expect(queries.length).toBeGreaterThan(10);
    const empty: string[] = [];
    for (const q of queries) {
      const result = await promRange(q.expr, startedAt, endedAt + 5, 2.5);
      if (!result.length) empty.push(`${q.dashboard} / ${q.panel} / ${q.refId}: ${q.expr}`);
    }
    expect(empty).toEqual([]);

    // Jaeger's Monitor tab: the metrics endpoints it calls answer with data for frontend.
    const params = new URLSearchParams({
      service: 'frontend',
      spanKind: 'server',
      endTs: String(Date.now()),
      lookback: String(Math.ceil(endedAt - startedAt + 30) * 1000),
      step: '5000',
      ratePer: '60000',
    });
    for (const [endpoint, extra] of [
      ['calls', ''],
      ['errors', ''],
      ['latencies', '&quantile=0.95'],
    ] as const) {
      const response = await fetch(`${JAEGER}/api/metrics/${endpoint}?${params}${extra}`);
      const text = await response.text();
      expect(response.status, `${endpoint}: ${text}`).toBe(200);
      const body = JSON.parse(text) as { metrics?: { metricPoints?: unknown[] }[] };
      const points = (body.metrics ?? []).reduce((sum, m) => sum + (m.metricPoints?.length ?? 0), 0);
      expect(points, `Jaeger /api/metrics/${endpoint} for frontend: ${text.slice(0, 300)}`).toBeGreaterThan(0);
    }
  });

  it('takes no story class or minute from outside: baggage traffic.type=evil leaves no span attribute and no series', async () => {
    const rejectedCount = async () =>
      Number((await promQuery('sum(lab_baggage_rejected_total{baggage_key="traffic.type"})'))[0]?.value[1] ?? 0);
    const before = await rejectedCount();
    const traceId = randomBytes(16).toString('hex');
    for (const route of ['/api/browse', '/api/checkout']) {
      const response = await fetch(`${lab.url('frontend')}${route}`, {
        method: route === '/api/checkout' ? 'POST' : 'GET',
        headers: {
          traceparent: `00-${traceId}-${randomBytes(8).toString('hex')}-01`,
          baggage: 'traffic.type=evil,demo.minute=77',
          ...(route === '/api/checkout' ? { 'content-type': 'application/json' } : {}),
        },
        body: route === '/api/checkout' ? '{}' : undefined,
      });
      await response.arrayBuffer();
      expect(response.status, route).toBeLessThan(500);
    }
    // The requests did reach the stack: their trace is in Jaeger and the rejections are
    // counted in Prometheus (so "no series" below is not "nothing arrived yet").
    interface JaegerTrace {
      spans: { operationName: string; tags: { key: string; value: unknown }[]; processID: string }[];
    }
    let trace: JaegerTrace | undefined;
    let after = before;
    for (let i = 0; i < 40 && (!trace || after < before + 2); i++) {
      await sleep(500);
      const response = await fetch(`${JAEGER}/api/traces/${traceId}`);
      if (response.ok) trace = ((await response.json()) as { data: JaegerTrace[] }).data[0];
      after = await rejectedCount();
    }
    expect(trace?.spans.length ?? 0, 'spans of the request in Jaeger').toBeGreaterThan(1);
    expect(after - before, 'lab.baggage.rejected for traffic.type').toBeGreaterThanOrEqual(2);
    const tagged = trace!.spans.flatMap((s) =>
      s.tags.filter((t) => t.key === 'traffic.type' || t.key === 'demo.minute').map((t) => `${s.operationName} ${t.key}=${t.value}`),
    );
    expect(tagged).toEqual([]);
    // One more span-metrics flush, then no series anywhere carries the values.
    await sleep(2_000);
    for (const matcher of ['{traffic_type="evil"}', '{demo_minute="77"}']) {
      const response = await fetch(
        `${PROMETHEUS}/api/v1/series?${new URLSearchParams({ 'match[]': matcher, start: String(Date.now() / 1000 - 600) })}`,
      );
      const body = (await response.json()) as { status: string; data: unknown[] };
      expect(body.status).toBe('success');
      expect(body.data, matcher).toEqual([]);
    }
    const search = new URLSearchParams({
      service: 'frontend',
      tags: JSON.stringify({ 'traffic.type': 'evil' }),
      lookback: '1h',
      limit: '5',
    });
    const found = (await (await fetch(`${JAEGER}/api/traces?${search}`)).json()) as { data: unknown[] };
    expect(found.data).toEqual([]);
  }, 60_000);
});
