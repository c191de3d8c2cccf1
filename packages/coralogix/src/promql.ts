/**
 * Just enough PromQL reading for the alert renderer and its contract test: which metric
 * names and which label names a query uses, and renaming metrics. Not a parser: the
 * lab's rules are written in a plain style (selectors with braces, `by (...)`), and
 * anything this cannot read is an error rather than a guess.
 */

// Functions and keywords that stand before `(` and are never metric names.
const NOT_METRICS = new Set(['and', 'or', 'unless', 'by', 'without', 'on', 'ignoring', 'group_left', 'group_right', 'bool', 'offset']);

const strip = (promql: string) => promql.replace(/"(?:[^"\\]|\\.)*"/g, '""');

export interface QueryNames {
  metrics: string[];
  labels: string[];
}

/** The metric names (selectors) and label names (matchers, `by`/`without`/`on` lists) of a query. */
export function queryNames(promql: string): QueryNames {
  const text = strip(promql);
  const metrics = new Set<string>();
  const labels = new Set<string>();
  // A name followed by `{` or `[`, or standing alone (not followed by `(`), is a metric.
  for (const match of text.matchAll(/([a-zA-Z_:][a-zA-Z0-9_:]*)\s*(\{[^}]*\})?\s*(\()?/g)) {
    const [, name = '', braces, call] = match;
    const before = text.slice(0, match.index).trimEnd();
    if (call || NOT_METRICS.has(name)) continue;
    // An aggregation with its grouping first: `sum by (le) (...)`.
    if (!braces && /^\s*(?:by|without)\s*\(/.test(text.slice((match.index ?? 0) + name.length))) continue;
    // Inside a by/without/on list, or a duration unit ([2m]) or a number's exponent.
    if (/(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*$/.test(before)) continue;
    if (/\[[^\]]*$/.test(before) || /\d$/.test(before)) continue;
    if (/\{[^}]*$/.test(before)) continue;
    metrics.add(name);
    for (const m of (braces ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)\s*(?:=~|!=|!~|=)/g)) labels.add(m[1] ?? '');
  }
  for (const list of text.matchAll(/\b(?:by|without|on|ignoring)\s*\(([^)]*)\)/g))
    for (const name of (list[1] ?? '').split(',').map((s) => s.trim())) if (name) labels.add(name);
  return { metrics: [...metrics].sort(), labels: [...labels].sort() };
}

/** Renames every selector's metric; a metric `rename` has no entry for is an error. */
export function renameMetrics(promql: string, rename: Readonly<Record<string, string>>): string {
  const { metrics } = queryNames(promql);
  const missing = metrics.filter((m) => !(m in rename));
  if (missing.length) throw new Error(`no Coralogix name for ${missing.join(', ')}: add it to the renderer's METRIC_NAMES`);
  let out = promql;
  for (const [from, to] of Object.entries(rename)) out = out.replace(new RegExp(`(?<![a-zA-Z0-9_:"])${from}(?=\\s*[{[)\\s]|$)`, 'g'), to);
  return out;
}
