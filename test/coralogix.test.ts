/**
 * The contract test of the Coralogix path: the lab's real collector, with the Coralogix
 * overlay (otel-collector/coralogix.yaml) exactly as it ships, sends to a LOCAL STAND-IN
 * for Coralogix's ingress (test/coralogix-ingress.ts: TLS gRPC OTLP with a throwaway CA).
 * Only the endpoint and the trust differ, through the test-only overlay
 * test/fixtures/coralogix-standin.yaml. The lab's nine services on real PostgreSQL and
 * Redis, with Jaeger and Prometheus (the `--observe` stack), get a short story
 * (test/fixtures/coralogix-short.yaml: both classes, a healthy, an erroring and a
 * recovery minute of 5 s).
 *
 * With the ingress up: traces, logs and the four span-metric families arrive with the
 * names and dimensions Coralogix APM reads; every export carries the key as a bearer
 * token; application and subsystem (each service its own, the fallback where there is no
 * service.name) are the resource attributes Coralogix reads; the key is in no log line;
 * every metric and label the rendered Coralogix alerts query is among what arrived.
 *
 * With the ingress down, answering UNAVAILABLE, or accepting and never answering: Jaeger
 * and Prometheus get every span and metric point the collector took in (the same as with
 * the ingress up, within 2 %), the collector stays under the memory limit it has in
 * Compose, and once the ingress is back its queue drains: the outage's spans arrive.
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { SHOP_SERVICES } from '@bfl/contract';
import { cpuSeconds, type Lab, rssMiB, startLab } from '@bfl/lab';
import { type ObservePorts, type ObserveStack, startObserveStack } from '@bfl/lab/observe';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readCommittedAlerts } from '../packages/coralogix/src/alerts.js';
import { queryNames } from '../packages/coralogix/src/promql.js';
import {
  coralogixLabel,
  coralogixNames,
  type IngressMode,
  logsOf,
  pointsOf,
  StandInIngress,
  spansOf,
  type ThrowawayCa,
  throwawayCa,
} from './coralogix-ingress.js';

const root = path.resolve(__dirname, '..');
// Beside a developer's lab and stack and the story test's, and below the ephemeral port range
// (32768-60999 on Linux), where an outgoing connection's local port can take a listener's.
const ports = Object.fromEntries(SHOP_SERVICES.map((name, i) => [name, 25011 + i]));
const stackPorts: ObservePorts = {
  collectorGrpc: 25317,
  collectorHttp: 25318,
  collectorHealth: 25133,
  jaegerQuery: 25686,
  jaegerQueryGrpc: 25685,
  jaegerOtlpGrpc: 25327,
  jaegerOtlpHttp: 25328,
  jaegerHealth: 25134,
  prometheus: 25090,
  verify: 25319,
};
const TELEMETRY_PORT = 25888;
// A throwaway key, known only to this test and its stand-in.
const KEY = `cxtest-${randomBytes(16).toString('hex')}`;
const APPLICATION = 'black-friday-lab-test';
const FALLBACK_SUBSYSTEM = 'lab-test';
// The memory limit the collector has in Compose (compose.yaml: 256M), of which its
// memory_limiter lets it use 80 %.
const COMPOSE_LIMIT_MIB = 256;

let ca: ThrowawayCa;
let ingress: StandInIngress;
let stack: ObserveStack;
let lab: Lab;
const serviceLines: string[] = [];
const runnerOutput: string[] = [];
let collectorPid = 0;

beforeAll(async () => {
  ca = throwawayCa();
  ingress = new StandInIngress(ca, KEY);
  await ingress.start();
  stack = await startObserveStack({
    minuteMs: 5_000,
    ports: stackPorts,
    collectorConfigs: [path.join(root, 'otel-collector/coralogix.yaml'), path.join(root, 'test/fixtures/coralogix-standin.yaml')],
    collectorEnv: {
      // Unused with the stand-in's endpoints, but as in production: all four are set.
      CORALOGIX_DOMAIN: 'eu2.coralogix.com',
      CORALOGIX_PRIVATE_KEY: KEY,
      CORALOGIX_APPLICATION_NAME: APPLICATION,
      CORALOGIX_SUBSYSTEM_NAME: FALLBACK_SUBSYSTEM,
      // The APM families every 2 s instead of 30 s, so that a 15 s story has several flushes.
      CORALOGIX_SPANMETRICS_FLUSH_INTERVAL: '2s',
      CX_STANDIN_ENDPOINT: ingress.endpoint,
      CX_STANDIN_CA_FILE: ca.caFile,
      CX_TEST_TELEMETRY_PORT: String(TELEMETRY_PORT),
    },
  });
  collectorPid = stack.processes.find((p) => p.name === 'otel-collector')?.pid ?? 0;
  lab = await startLab({
    services: SHOP_SERVICES,
    ports,
    env: { ...stack.serviceEnv, LOG_LEVEL: 'info' },
    onLine: (_service, line) => serviceLines.push(line),
  });
}, 180_000);

afterAll(async () => {
  await lab?.stop();
  await stack?.stop();
  await ingress?.stop();
});

/** The collector's own counters (Prometheus text format), summed per name over the label filter. */
async function telemetry(): Promise<(name: string, labels?: Record<string, string>) => number> {
  const text = await (await fetch(`http://127.0.0.1:${TELEMETRY_PORT}/metrics`)).text();
  const rows = text
    .split('\n')
    .filter((l) => l && !l.startsWith('#'))
    .map((l) => {
      const match = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})?\s+(\S+)/.exec(l);
      const labels = Object.fromEntries([...(match?.[2] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)].map((m) => [m[1], m[2]]));
      return { name: match?.[1] ?? '', labels, value: Number(match?.[3]) };
    });
  return (name, labels = {}) =>
    rows.filter((r) => r.name === name && Object.entries(labels).every(([k, v]) => r.labels[k] === v)).reduce((sum, r) => sum + r.value, 0);
}

interface Counts {
  accepted: number;
  jaeger: number;
  jaegerFailed: number;
  prometheus: number;
  prometheusFailed: number;
  metricsOut: number;
  coralogixSent: number;
  coralogixFailed: number;
  queue: number;
}
async function counts(): Promise<Counts> {
  const t = await telemetry();
  return {
    accepted: t('otelcol_receiver_accepted_spans'),
    jaeger: t('otelcol_exporter_sent_spans', { exporter: 'otlphttp/traceui' }),
    jaegerFailed: t('otelcol_exporter_send_failed_spans', { exporter: 'otlphttp/traceui' }),
    prometheus: t('otelcol_exporter_sent_metric_points', { exporter: 'otlphttp/prometheus' }),
    prometheusFailed: t('otelcol_exporter_send_failed_metric_points', { exporter: 'otlphttp/prometheus' }),
    // What the local metrics pipeline handed its exporters: its debug exporter sees every point.
    metricsOut: t('otelcol_exporter_sent_metric_points', { exporter: 'debug' }),
    coralogixSent: t('otelcol_exporter_sent_spans', { exporter: 'coralogix' }),
    coralogixFailed: t('otelcol_exporter_send_failed_spans', { exporter: 'coralogix' }),
    queue: t('otelcol_exporter_queue_size', { exporter: 'coralogix' }),
  };
}
const delta = (a: Counts, b: Counts) =>
  Object.fromEntries(Object.keys(a).map((k) => [k, b[k as keyof Counts] - a[k as keyof Counts]])) as unknown as Counts;

/** Waits until the collector has passed on everything it took in (nothing in flight locally). */
async function settled(): Promise<Counts> {
  let last = await counts();
  for (let i = 0; i < 40; i++) {
    await sleep(500);
    const now = await counts();
    if (now.accepted === last.accepted && now.jaeger === last.jaeger && now.prometheus === last.prometheus && now.jaeger >= now.accepted)
      return now;
    last = now;
  }
  return last;
}

/** The short story through the lab; returns the runner's requests and the collector's peak memory. */
async function story(label: string): Promise<{ requests: number; peakRssMiB: number; cpuSeconds: number }> {
  const cpuBefore = cpuSeconds(collectorPid);
  const dir = mkdtempSync(path.join(tmpdir(), `cx-${label}-`));
  const json = path.join(dir, 'r.json');
  let peak = 0;
  const sampler = setInterval(() => {
    peak = Math.max(peak, rssMiB(collectorPid) ?? 0);
  }, 250);
  const child = spawn(
    process.execPath,
    [
      'packages/scenario-cli/dist/cli/cli.js',
      ...['--scenario', 'test/fixtures/coralogix-short.yaml', '--minute', '5s'],
      ...['--target', lab.url('frontend'), '--json', json],
    ],
    { cwd: root, env: { ...process.env, CI: 'true' }, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let output = '';
  child.stdout.on('data', (d) => (output += d));
  child.stderr.on('data', (d) => (output += d));
  const [code] = await once(child, 'exit');
  clearInterval(sampler);
  runnerOutput.push(output);
  expect(code, output).toBe(0);
  const report = JSON.parse(readFileSync(json, 'utf8')) as { minutes: { traffic: Record<string, { requests: number }> }[] };
  const requests = report.minutes.reduce((sum, m) => sum + Object.values(m.traffic).reduce((s, t) => s + t.requests, 0), 0);
  return { requests, peakRssMiB: peak, cpuSeconds: cpuSeconds(collectorPid) - cpuBefore };
}

interface Run {
  mode: IngressMode | 'down';
  requests: number;
  counts: Counts;
  peakRssMiB: number;
}
const runs: Run[] = [];

describe('the collector with the Coralogix overlay, against the stand-in ingress', () => {
  it('delivers traces, logs and the four span-metric families in the form Coralogix reads', { timeout: 120_000 }, async () => {
    const before = await counts();
    const firstRequest = ingress.requests.length;
    const { requests, peakRssMiB, cpuSeconds: cpu } = await story('up');
    // A log record without a service.name: its subsystem is the fallback.
    const orphan = await fetch(`http://127.0.0.1:${stackPorts.collectorHttp}/v1/logs`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        resourceLogs: [
          { resource: { attributes: [] }, scopeLogs: [{ logRecords: [{ body: { stringValue: 'a log without a service' } }] }] },
        ],
      }),
    });
    expect(orphan.status).toBe(200);
    const after = await settled();
    // The APM families flush every 2 s; wait for a flush that comes after the last span.
    await sleep(5_000);
    runs.push({ mode: 'ok', requests, counts: delta(before, after), peakRssMiB });

    const requestsOfRun = ingress.requests.slice(firstRequest);
    expect(requestsOfRun.filter((r) => r.answer !== 'ok').map((r) => `${r.signal}: ${r.answer}`)).toEqual([]);
    const signals = new Set(requestsOfRun.map((r) => r.signal));
    expect([...signals].sort()).toEqual(['logs', 'metrics', 'traces']);
    // The key as a bearer token on every export (the stand-in refuses any other).
    for (const r of requestsOfRun) expect(r.metadata.authorization).toBe(`Bearer ${KEY}`);

    const spans = spansOf(ingress.accepted('traces').slice(0));
    const points = pointsOf(ingress.accepted('metrics'));
    const logs = logsOf(ingress.accepted('logs'));
    // Every span the collector took in went to Coralogix too.
    expect(spans.length).toBeGreaterThanOrEqual(runs[0]!.counts.accepted);
    for (const item of [...spans, ...points, ...logs]) {
      expect(item.resource['cx.application.name']).toBe(APPLICATION);
      expect(item.resource['cx.subsystem.name']).toBe(item.resource['service.name'] || FALLBACK_SUBSYSTEM);
    }
    const services = new Set(spans.map((s) => s.resource['service.name']));
    for (const service of SHOP_SERVICES) expect(services, service).toContain(service);
    expect(logs.some((l) => l.body === 'a log without a service' && l.resource['cx.subsystem.name'] === FALLBACK_SUBSYSTEM)).toBe(true);
    expect(logs.filter((l) => l.resource['service.name']).length).toBeGreaterThan(0);

    // The span-metric families, by OTLP name (Coralogix's PromQL: calls_total, duration_ms_*, ...).
    const family = (prefix: string) => points.filter((p) => p.name === `${prefix}calls` || p.name === `${prefix}duration`);
    const families = { full: family(''), compact: family('compact.'), db: family('db.'), db_compact: family('db_compact.') };
    for (const [name, fam] of Object.entries(families)) {
      expect(fam.length, name).toBeGreaterThan(0);
      for (const p of fam) {
        if (p.name.endsWith('duration')) expect([p.kind, p.unit], `${name} ${p.name}`).toEqual(['histogram', 'ms']);
        else expect([p.kind, p.monotonic], `${name} ${p.name}`).toEqual(['sum', true]);
        expect(p.attributes, `${name}: no demo.minute in Coralogix`).not.toHaveProperty('demo.minute');
      }
    }
    const frontendCheckout = families.full.filter(
      (p) =>
        p.resource['service.name'] === 'frontend' &&
        p.attributes['http.route'] === '/api/checkout' &&
        p.attributes['span.kind'] === 'SPAN_KIND_SERVER',
    );
    expect(new Set(frontendCheckout.map((p) => p.attributes['traffic.type']))).toEqual(new Set(['demo']));
    expect(frontendCheckout.some((p) => p.attributes['status.code'] === 'STATUS_CODE_ERROR' && p.attributes['failure.reason'])).toBe(true);
    expect(new Set(families.full.map((p) => p.attributes['traffic.type']).filter(Boolean))).toEqual(new Set(['baseline', 'demo']));
    for (const p of families.compact) {
      expect(p.attributes).not.toHaveProperty('span.name');
      // Only the resource attributes the catalog groups by (and the exporter's cx.*).
      const kept = [
        'service.name',
        'k8s.cluster.name',
        'host.name',
        'deployment.environment.name',
        'cx.application.name',
        'cx.subsystem.name',
      ];
      for (const key of Object.keys(p.resource)) expect(kept, `compact resource attribute ${key}`).toContain(key);
    }
    expect(new Set(families.db.map((p) => p.attributes['db.system']))).toEqual(new Set(['postgresql', 'redis']));
    for (const p of families.db_compact) {
      // Per calling service and status (the connector's own two), per database and namespace.
      expect(Object.keys(p.attributes).sort()).toEqual(['db.namespace', 'db.system', 'service.name', 'status.code']);
    }
    expect(new Set(families.db_compact.map((p) => p.attributes['db.system']))).toEqual(new Set(['postgresql', 'redis']));
    // The local per-minute span metrics stay local.
    expect(points.filter((p) => p.name.startsWith('traces.span.metrics'))).toEqual([]);

    // Every metric and label the rendered Coralogix alerts query arrived.
    const names = new Set(points.flatMap((p) => coralogixNames(p)));
    const labels = new Set([
      'le',
      ...points.flatMap((p) => [...Object.keys(p.attributes), ...Object.keys(p.resource)].map(coralogixLabel)),
    ]);
    for (const def of readCommittedAlerts().alertDefs) {
      const used = queryNames(def.metricThreshold.metricFilter.promql);
      for (const m of used.metrics) expect(names, `${def.name}: metric ${m}`).toContain(m);
      for (const l of used.labels) expect(labels, `${def.name}: label ${l}`).toContain(l);
    }

    // The key is in no log line: the collector's, Prometheus's, Jaeger's, the services', the runner's.
    const logText = [...stack.processes.map((p) => readFileSync(p.log, 'utf8')), serviceLines.join('\n'), runnerOutput.join('\n')].join(
      '\n',
    );
    expect(logText.length).toBeGreaterThan(1000);
    expect(logText.includes(KEY), 'the Send-Your-Data key appears in a log').toBe(false);

    // What a user's quota sees: per signal, the bytes of the requests (protobuf, before
    // gzip) and, per family, the series (each flush sends every series once).
    const bytes = (signal: 'traces' | 'metrics' | 'logs') =>
      requestsOfRun.filter((r) => r.signal === signal && r.answer === 'ok').reduce((sum, r) => sum + r.bytes, 0);
    const series = (fam: typeof points) =>
      new Set(fam.map((p) => `${p.name} ${JSON.stringify(p.attributes)} ${p.resource['service.name']}`)).size;
    const perFamily = Object.entries(families).map(([n, f]) => `${n} ${f.length} (${series(f)} series)`);
    process.stdout.write(
      `coralogix stand-in, short story (${requests} requests): ${spans.length} spans (${bytes('traces')} B), ` +
        `${logs.length} log records (${bytes('logs')} B), metric points ${perFamily.join(', ')}, ` +
        `all metric points ${points.length} (${bytes('metrics')} B); collector ${cpu.toFixed(1)} s CPU, peak ${peakRssMiB.toFixed(0)} MiB\n`,
    );
  });

  for (const mode of ['down', 'unavailable', 'hang'] as const) {
    it(`loses nothing locally while the ingress is ${mode}, and drains its queue when it is back`, { timeout: 180_000 }, async () => {
      const up = runs.find((r) => r.mode === 'ok');
      expect(up, 'the first test measures the lab with the ingress up').toBeDefined();
      if (mode === 'down') await ingress.down();
      else ingress.mode = mode;
      const before = await counts();
      const { requests, peakRssMiB } = await story(mode);
      const after = await settled();
      const d = delta(before, after);
      runs.push({ mode, requests, counts: d, peakRssMiB });

      // Jaeger and Prometheus got everything the collector took in, as with the ingress up.
      expect(d.jaegerFailed + d.prometheusFailed).toBe(0);
      const ratio = (c: Counts) => c.jaeger / c.accepted;
      expect(Math.abs(ratio(d) - ratio(up!.counts)), `Jaeger got ${d.jaeger} of ${d.accepted} spans`).toBeLessThanOrEqual(0.02);
      const metricRatio = (c: Counts) => c.prometheus / c.metricsOut;
      expect(
        Math.abs(metricRatio(d) - metricRatio(up!.counts)),
        `Prometheus got ${d.prometheus} of ${d.metricsOut} points`,
      ).toBeLessThanOrEqual(0.02);
      // Spans per request as with the ingress up (the same story).
      expect(
        Math.abs(d.accepted / requests - up!.counts.accepted / up!.requests) / (up!.counts.accepted / up!.requests),
      ).toBeLessThanOrEqual(0.1);
      expect(peakRssMiB, 'collector memory').toBeLessThan(COMPOSE_LIMIT_MIB * 0.8);

      // Back up: the queue drains (the outage's spans reach Coralogix, none dropped).
      await ingress.up();
      const deadline = Date.now() + 120_000;
      let now = await counts();
      while (Date.now() < deadline && (now.queue > 0 || now.coralogixSent + now.coralogixFailed < now.accepted)) {
        await sleep(1_000);
        now = await counts();
      }
      expect(now.queue, 'coralogix queue').toBe(0);
      expect(now.coralogixFailed, 'spans the coralogix exporter gave up on').toBe(0);
      expect(now.coralogixSent).toBeGreaterThanOrEqual(now.accepted);
      process.stdout.write(
        `ingress ${mode}: ${requests} requests, ${d.accepted} spans in, Jaeger ${d.jaeger}, Prometheus ${d.prometheus} of ${d.metricsOut} points; ` +
          `collector peak ${peakRssMiB.toFixed(0)} MiB; queue drained ${((Date.now() - (deadline - 120_000)) / 1000).toFixed(0)} s after the ingress came back\n`,
      );
    });
  }
});
