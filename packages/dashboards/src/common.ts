/**
 * What both dashboards share: the datasources (by fixed uid, as provisioned in
 * observability/grafana/provisioning/datasources), the span-metric names, query and
 * panel helpers, and the last step of every dashboard (panel ids).
 */
import {
  LegendDisplayMode,
  LegendPlacement,
  SortOrder,
  TooltipDisplayMode,
  VizLegendOptionsBuilder,
  VizTooltipOptionsBuilder,
} from '@grafana/grafana-foundation-sdk/common';
import type { Dashboard, DashboardBuilder, Panel, RowPanel } from '@grafana/grafana-foundation-sdk/dashboard';
import { DataqueryBuilder, QueryEditorMode } from '@grafana/grafana-foundation-sdk/prometheus';

export const PROMETHEUS = { type: 'prometheus', uid: 'prometheus' } as const;
export const JAEGER = { type: 'jaeger', uid: 'jaeger' } as const;

/** The spanmetrics connector's metrics as Prometheus's OTLP receiver names them. */
export const CALLS = 'traces_span_metrics_calls_total';
const DURATION_BUCKET = 'traces_span_metrics_duration_milliseconds_bucket';

/** The frontend's 5 s timeout on recommendations: where the incident's p95 ends up. */
export const RECOMMENDATIONS_TIMEOUT_MS = 5000;

/** A series selector from label matchers written as PromQL: `{a="x", b=~"y"}`. */
const selector = (...matchers: string[]): string => `{${matchers.join(', ')}}`;

/** `sum by (labels) (rate(metric{...}[$__rate_interval]))`. */
export const rateBy = (metric: string, labels: string[], matchers: string[]): string =>
  `sum by (${labels.join(', ')}) (rate(${metric}${selector(...matchers)}[$__rate_interval]))`;

/**
 * Errors over all calls, per the given labels (a ratio 0..1: unit percentunit). A class
 * without a single error yet has no error series: `or 0 * all` makes it a 0, not a gap.
 */
export function errorRatioBy(labels: string[], matchers: string[]): string {
  const all = rateBy(CALLS, labels, matchers);
  const errors = rateBy(CALLS, labels, [...matchers, 'status_code="STATUS_CODE_ERROR"']);
  return `(\n  ${errors}\nor\n  0 * ${all}\n)\n/\n${all}`;
}

/** A quantile of the span duration histogram (milliseconds) per the given labels. */
export const quantileBy = (q: number, labels: string[], matchers: string[]): string =>
  `histogram_quantile(${q}, ${rateBy(DURATION_BUCKET, ['le', ...labels], matchers)})`;

/** A Prometheus query on the provisioned Prometheus, opened in the code editor. */
export function promQuery(refId: string, expr: string, legend?: string): DataqueryBuilder {
  const query = new DataqueryBuilder().datasource(PROMETHEUS).refId(refId).expr(expr).editorMode(QueryEditorMode.Code);
  return legend === undefined ? query : query.legendFormat(legend);
}

/** Latency queries carry exemplars: a point links to its trace in Jaeger (datasource setting). */
export const latencyQuery = (refId: string, expr: string, legend: string): DataqueryBuilder =>
  promQuery(refId, expr, legend).exemplar(true).range();

export const legend = (): VizLegendOptionsBuilder =>
  new VizLegendOptionsBuilder().showLegend(true).displayMode(LegendDisplayMode.List).placement(LegendPlacement.Bottom);

export const tooltip = (): VizTooltipOptionsBuilder =>
  new VizTooltipOptionsBuilder().mode(TooltipDisplayMode.Multi).sort(SortOrder.Descending);

/** A fixed series colour (override properties for `overrideByName`). */
export const fixedColor = (color: string) => [{ id: 'color', value: { mode: 'fixed', fixedColor: color } }];

/**
 * Builds the dashboard and numbers its panels 1..n in layout order (rows included),
 * so the ids are unique and stable from one generation to the next.
 */
export function finish(builder: DashboardBuilder): Dashboard {
  const built = builder.build();
  let id = 0;
  const number = (panels: (Panel | RowPanel)[] | undefined) => {
    for (const panel of panels ?? []) {
      panel.id = ++id;
      if (panel.type === 'row') number((panel as RowPanel).panels);
    }
  };
  number(built.panels);
  return built;
}
