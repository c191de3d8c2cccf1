/**
 * The lab's alerts in Coralogix, rendered from the same source as Prometheus's:
 * observability/alerts/black-friday.rules.yaml, rendered for real (60 s) minutes, turned
 * into Coralogix alert definitions (Alerts API v3, metric threshold alerts on PromQL).
 *
 * Which form: Coralogix's docs present the Alerts API v3 ("alert definitions") as the
 * current alerts API, with v1/v2 as the older one
 * (https://coralogix.com/docs/developer-portal/apis/data-management/alerts-api/alerts-grpc-api/);
 * its Kubernetes operator's `coralogix.com/v1beta1` Alert is built on the same v3 model. The
 * lab renders the API's JSON (what `npm run coralogix:alerts -- --apply` sends) and keeps it
 * out of k8s/generated/: the alerts live in a Coralogix account, not in the cluster.
 *
 * From a Prometheus rule to a Coralogix definition:
 *   - the metrics are renamed to the Coralogix span-metric family the overlay ships
 *     (otel-collector/coralogix.yaml: the local traces_span_metrics_* stay local);
 *   - `expr: Q > T` becomes `metricFilter.promql: Q` with `threshold: T` (MORE_THAN; `>=`
 *     is MORE_THAN_OR_EQUALS). A burn-rate rule (`A > T and B > T`: two windows) keeps
 *     both comparisons in its query, which then returns the long window's burn only while
 *     both burn, and the threshold repeats T; an empty result counts as zero;
 *   - no range is shorter than 2 minutes (MIN_RANGE_MS: the metrics arrive every 30 s),
 *     so in Coralogix an alert fires and resolves a minute or two later than locally;
 *   - `for:` becomes "for 100 % of the last N minutes" with the shortest window Coralogix
 *     offers that covers it (1 minute); `keep_firing_for` has no counterpart;
 *   - `severity: page` is priority P1, `ticket` P3; the labels become entity labels; the
 *     description and runbook become the description.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { promDuration, REPO_ROOT, renderRules, SHIPPED_MINUTE_MS } from '@bfl/lab/alert-rules';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { renameMetrics } from './promql.js';

/** Where the rendered definitions are committed (`npm run coralogix:alerts` writes it). */
export const CORALOGIX_ALERTS_FILE = path.join(REPO_ROOT, 'observability/coralogix/alerts.json');

/**
 * Local name -> the name Coralogix gives the same signal. The span metrics are the overlay's
 * full family (`spanmetrics/cx`, namespace ""), whose OTLP `calls` and `duration` (unit ms)
 * Coralogix's PromQL calls `calls_total` and `duration_ms_*`; the services' own pool
 * gauges keep their names, and their waiting-time counter (unit s) gets Coralogix's unit
 * suffix `_s` where Prometheus writes `_seconds`.
 */
const METRIC_NAMES: Readonly<Record<string, string>> = {
  traces_span_metrics_calls_total: 'calls_total',
  traces_span_metrics_duration_milliseconds_bucket: 'duration_ms_bucket',
  traces_span_metrics_duration_milliseconds_count: 'duration_ms_count',
  db_client_connection_pending_requests: 'db_client_connection_pending_requests',
  db_client_connection_max: 'db_client_connection_max',
  lab_db_client_connection_waiting_time_seconds_total: 'lab_db_client_connection_waiting_time_s_total',
};

/**
 * The shortest range a Coralogix query uses. The overlay sends the span metrics every 30 s
 * (CORALOGIX_SPANMETRICS_FLUSH_INTERVAL), and a rate needs several points in its window:
 * four flushes. Locally the collector flushes every second and the rules' half-minute
 * windows work; in Coralogix they would hold a single point and return nothing.
 */
const MIN_RANGE_MS = 120_000;

/** Every definition carries this entity label: what `--apply` manages. */
const MANAGED_BY = { key: 'managed_by', value: 'black-friday-lab' } as const;

const PRIORITY: Record<string, string> = { page: 'ALERT_DEF_PRIORITY_P1', ticket: 'ALERT_DEF_PRIORITY_P3' };

/** Coralogix's metric windows, shortest first (MetricTimeWindowValue). */
const WINDOWS: [number, string][] = [
  [60_000, 'METRIC_TIME_WINDOW_VALUE_MINUTES_1_OR_UNSPECIFIED'],
  [300_000, 'METRIC_TIME_WINDOW_VALUE_MINUTES_5'],
  [600_000, 'METRIC_TIME_WINDOW_VALUE_MINUTES_10'],
  [900_000, 'METRIC_TIME_WINDOW_VALUE_MINUTES_15'],
  [1_200_000, 'METRIC_TIME_WINDOW_VALUE_MINUTES_20'],
  [1_800_000, 'METRIC_TIME_WINDOW_VALUE_MINUTES_30'],
  [3_600_000, 'METRIC_TIME_WINDOW_VALUE_HOUR_1'],
];

/** One definition, as the API's create call takes it (the AlertDefProperties message). */
export const AlertDef = z.strictObject({
  name: z.string().min(1),
  description: z.string(),
  enabled: z.boolean(),
  priority: z.string(),
  type: z.literal('ALERT_DEF_TYPE_METRIC_THRESHOLD'),
  groupByKeys: z.array(z.string()),
  entityLabels: z.record(z.string(), z.string()),
  incidentsSettings: z.strictObject({ minutes: z.number().int().positive(), notifyOn: z.string() }),
  metricThreshold: z.strictObject({
    metricFilter: z.strictObject({ promql: z.string().min(1) }),
    rules: z
      .array(
        z.strictObject({
          condition: z.strictObject({
            threshold: z.number(),
            forOverPct: z.number().int().min(0).max(100),
            ofTheLast: z.strictObject({ metricTimeWindowSpecificValue: z.string() }),
            conditionType: z.string(),
          }),
          override: z.strictObject({ priority: z.string() }),
        }),
      )
      .min(1),
    missingValues: z.strictObject({ replaceWithZero: z.boolean() }),
  }),
});
export type AlertDef = z.infer<typeof AlertDef>;

const AlertsFile = z.strictObject({
  generatedFrom: z.string(),
  command: z.string(),
  renderedForMinute: z.string(),
  alertDefs: z.array(AlertDef),
});
export type AlertsFile = z.infer<typeof AlertsFile>;

const Rule = z.object({
  alert: z.string(),
  expr: z.string(),
  for: z.string().optional(),
  labels: z.record(z.string(), z.string()).default({}),
  annotations: z.record(z.string(), z.string()).default({}),
});
const Rules = z.object({
  groups: z.array(z.object({ name: z.string(), labels: z.record(z.string(), z.string()).default({}), rules: z.array(Rule) })),
});

const durationMs = (text: string): number => {
  const match = /^(?:(\d+)h)?(?:(\d+)m(?!s))?(?:(\d+)s)?(?:(\d+)ms)?$/.exec(text);
  if (!text || !match) throw new Error(`"${text}" is not a duration`);
  const [, h = '0', m = '0', s = '0', ms = '0'] = match;
  return Number(h) * 3_600_000 + Number(m) * 60_000 + Number(s) * 1_000 + Number(ms);
};

/** The threshold in `expr` and the query Coralogix evaluates against it. */
function splitThreshold(expr: string): { promql: string; threshold: number; conditionType: string } {
  const text = expr.trim();
  // The last comparison: `> 14.4 * 0.01`, `>= 2`, `> 4000` (a number, or a product of two).
  const match = /(>=|>)\s*(\d+(?:\.\d+)?)(?:\s*\*\s*(\d+(?:\.\d+)?))?\s*$/.exec(text);
  if (!match) throw new Error(`cannot find the threshold in: ${text}`);
  const [all, op = '>', a = '0', b] = match;
  const threshold = Number((Number(a) * (b === undefined ? 1 : Number(b))).toPrecision(12));
  const conditionType =
    op === '>=' ? 'METRIC_THRESHOLD_CONDITION_TYPE_MORE_THAN_OR_EQUALS' : 'METRIC_THRESHOLD_CONDITION_TYPE_MORE_THAN_OR_UNSPECIFIED';
  // Two windows joined by `and`: the query keeps its comparisons (see the header).
  if (/\band\b/.test(text)) return { promql: text, threshold, conditionType };
  return { promql: text.slice(0, text.length - all.length).trim(), threshold, conditionType };
}

const oneLine = (s: string | undefined) => (s ?? '').replace(/\s+/g, ' ').trim();

/** The Coralogix definitions of the lab's alert rules (the 60 s rendering). */
function renderCoralogixAlerts(rulesYaml = renderRules(SHIPPED_MINUTE_MS)): AlertsFile {
  const rules = Rules.parse(parseYaml(rulesYaml));
  const alertDefs: AlertDef[] = [];
  let minute = '';
  for (const group of rules.groups) {
    minute = group.labels.rendered_for_minute ?? minute;
    for (const rule of group.rules) {
      const { promql, threshold, conditionType } = splitThreshold(rule.expr);
      const forMs = rule.for ? durationMs(rule.for) : 0;
      const window = WINDOWS.find(([ms]) => ms >= forMs);
      if (!window) throw new Error(`${rule.alert}: for ${rule.for} is longer than the longest window the renderer maps`);
      const severity = rule.labels.severity ?? '';
      const priority = PRIORITY[severity] ?? 'ALERT_DEF_PRIORITY_P5_OR_UNSPECIFIED';
      const description = [
        oneLine(rule.annotations.description),
        rule.annotations.runbook && `Runbook: ${oneLine(rule.annotations.runbook)}`,
      ]
        .filter(Boolean)
        .join('\n\n');
      alertDefs.push(
        AlertDef.parse({
          name: rule.alert,
          description,
          enabled: true,
          priority,
          type: 'ALERT_DEF_TYPE_METRIC_THRESHOLD',
          groupByKeys: [],
          entityLabels: { ...group.labels, ...rule.labels, [MANAGED_BY.key]: MANAGED_BY.value },
          incidentsSettings: { minutes: 10, notifyOn: 'NOTIFY_ON_TRIGGERED_AND_RESOLVED' },
          metricThreshold: {
            metricFilter: {
              promql: renameMetrics(promql, METRIC_NAMES)
                .replace(/\[([0-9a-z]+)\]/g, (_all, range: string) => `[${promDuration(Math.max(MIN_RANGE_MS, durationMs(range)))}]`)
                .replace(/\s+/g, ' ')
                .trim(),
            },
            rules: [
              {
                condition: { threshold, forOverPct: 100, ofTheLast: { metricTimeWindowSpecificValue: window[1] }, conditionType },
                override: { priority },
              },
            ],
            // No data is no breach: a window without checkouts does not keep an alert open.
            missingValues: { replaceWithZero: true },
          },
        }),
      );
    }
  }
  return {
    generatedFrom: 'observability/alerts/black-friday.rules.yaml',
    command: 'npm run coralogix:alerts',
    renderedForMinute: minute,
    alertDefs,
  };
}

/** The file as committed: two-space JSON and a final newline. */
export const alertsFileText = (file: AlertsFile = renderCoralogixAlerts()) => `${JSON.stringify(file, null, 2)}\n`;

export function readCommittedAlerts(file = CORALOGIX_ALERTS_FILE): AlertsFile {
  return AlertsFile.parse(JSON.parse(readFileSync(file, 'utf8')));
}
