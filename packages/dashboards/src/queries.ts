/**
 * The Prometheus queries of a dashboard's JSON, ready to run: template variables
 * replaced by their defaults and Grafana's interval variables by a given duration.
 */

/** The parts of a dashboard's JSON this module reads (generated or committed). */
export interface DashboardJson {
  uid?: string;
  panels?: PanelJson[];
  templating?: { list?: VariableJson[] };
  annotations?: { list?: AnnotationJson[] };
}
export interface PanelJson {
  type?: string;
  title?: string;
  datasource?: DatasourceJson | null;
  targets?: { refId?: string; expr?: unknown; datasource?: DatasourceJson | null }[];
  panels?: PanelJson[];
}
interface DatasourceJson {
  type?: string;
  uid?: string;
}
interface VariableJson {
  name: string;
  type?: string;
  query?: unknown;
  current?: { value?: string | string[] };
  multi?: boolean;
  includeAll?: boolean;
  allValue?: string;
}
interface AnnotationJson {
  name?: string;
  datasource?: DatasourceJson | null;
  expr?: unknown;
}

/** One query of one panel: `dashboard` is the dashboard's uid, `panel` the panel's title. */
export interface PanelQuery {
  dashboard: string;
  panel: string;
  refId: string;
  expr: string;
}

/** Grafana's interval variables; each becomes the caller's duration. */
const INTERVALS = new Set(['__rate_interval', '__interval', '__range']);
const VARIABLE = /\$\{(\w+)(?::[^}]*)?\}|\[\[(\w+)(?::[^\]]*)?\]\]|\$(\w+)/g;

const escapeRegex = (value: string) => value.replace(/[\\^$*+?.()|[\]{}]/g, '\\$&');

/** What Grafana puts into a Prometheus query for a variable at its default, if known. */
function defaultValue(variable: VariableJson): string | undefined {
  const current = variable.current?.value;
  const values = current === undefined ? [] : Array.isArray(current) ? current : [current];
  const regexFormatted = variable.multi || variable.includeAll;
  if (values.includes('$__all')) {
    if (variable.allValue !== undefined) return variable.allValue;
    if (variable.type === 'custom' && typeof variable.query === 'string') {
      const options = variable.query.split(',').map((o) => escapeRegex(o.trim()));
      return options.length === 1 ? options[0] : `(${options.join('|')})`;
    }
    return undefined;
  }
  if (values.length === 0) return undefined;
  if (!regexFormatted) return values[0];
  const escaped = values.map(escapeRegex);
  return escaped.length === 1 ? escaped[0] : `(${escaped.join('|')})`;
}

/**
 * Replaces `$var`, `${var}`, `${var:format}` and `[[var]]` by the variable's default
 * and `$__rate_interval`, `$__interval` and `$__range` by `duration` (e.g. "1m").
 * A variable it cannot resolve stays as it is (and makes the query invalid PromQL).
 */
export function substitute(expr: string, dashboard: DashboardJson, duration: string): string {
  const variables = new Map((dashboard.templating?.list ?? []).map((v) => [v.name, v]));
  return expr.replace(VARIABLE, (match, braced?: string, bracketed?: string, plain?: string) => {
    const name = braced ?? bracketed ?? plain ?? '';
    if (INTERVALS.has(name)) return duration;
    const variable = variables.get(name);
    return (variable && defaultValue(variable)) ?? match;
  });
}

const isPrometheus = (ds: DatasourceJson | null | undefined) => !ds || ds.type === 'prometheus' || ds.uid === 'prometheus';

function* allPanels(panels: PanelJson[] | undefined): Generator<PanelJson> {
  for (const panel of panels ?? []) {
    yield panel;
    if (panel.type === 'row') yield* allPanels(panel.panels);
  }
}

/**
 * Every Prometheus query of every panel of the dashboard (rows' nested panels included),
 * with the template variables at their defaults and `$__rate_interval`, `$__interval`
 * and `$__range` replaced by `duration` (a PromQL duration such as "30s" or "5m").
 */
export function panelQueries(dashboard: DashboardJson, duration: string): PanelQuery[] {
  const queries: PanelQuery[] = [];
  for (const panel of allPanels(dashboard.panels)) {
    for (const target of panel.targets ?? []) {
      if (typeof target.expr !== 'string' || !isPrometheus(target.datasource ?? panel.datasource)) continue;
      queries.push({
        dashboard: dashboard.uid ?? '',
        panel: panel.title ?? '',
        refId: target.refId ?? '',
        expr: substitute(target.expr, dashboard, duration),
      });
    }
  }
  return queries;
}

/** The dashboard's Prometheus annotation queries, substituted like panelQueries (panel: `annotation: <name>`). */
export function annotationQueries(dashboard: DashboardJson, duration: string): PanelQuery[] {
  return (dashboard.annotations?.list ?? [])
    .filter((a) => typeof a.expr === 'string' && isPrometheus(a.datasource))
    .map((a) => ({
      dashboard: dashboard.uid ?? '',
      panel: `annotation: ${a.name ?? ''}`,
      refId: 'Anno',
      expr: substitute(a.expr as string, dashboard, duration),
    }));
}
