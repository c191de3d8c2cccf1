import type { TraceSummary, WaterfallRow } from '@bfl/load-generator/report-schema';
import { byTrace, OTLP_SPAN_KIND, type ReceivedSpan, traceDepth } from './otlp-receiver.js';

const ms = (ns: bigint) => Number(ns / 1000n) / 1000;

/** Who calls whom: each client span's service → its peer.service, and cross-service parent links. */
function callEdges(spans: ReceivedSpan[]): [string, string][] {
  const byId = new Map(spans.map((s) => [s.spanId, s]));
  const edges = new Set<string>();
  for (const span of spans) {
    const peer = span.attributes['peer.service'];
    if (span.kind === OTLP_SPAN_KIND.client && typeof peer === 'string' && peer !== span.service) edges.add(`${span.service}\u0000${peer}`);
    const parent = span.parentSpanId ? byId.get(span.parentSpanId) : undefined;
    if (parent && parent.service !== span.service) edges.add(`${parent.service}\u0000${span.service}`);
  }
  return [...edges].map((e) => e.split('\u0000') as [string, string]).sort((a, b) => a.join('>').localeCompare(b.join('>')));
}

export function summarizeTraces(spans: ReceivedSpan[], attributes: readonly string[] = ['traffic.type', 'demo.minute']): TraceSummary {
  const services = new Set(spans.map((s) => s.service));
  for (const span of spans) {
    const peer = span.attributes['peer.service'];
    if (peer === 'postgresql' || peer === 'redis') services.add(peer);
  }
  const traces = byTrace(spans);
  let maxDepth = 0;
  for (const list of traces.values()) maxDepth = Math.max(maxDepth, traceDepth(list));
  const attributeCoverage = Object.fromEntries(
    attributes.map((name) => [
      name,
      spans.length ? Number((spans.filter((s) => s.attributes[name] !== undefined).length / spans.length).toFixed(4)) : 0,
    ]),
  );
  const frontend = spans.filter((s) => s.service === 'frontend' && s.kind === OTLP_SPAN_KIND.server);
  const classes = new Set(frontend.map((s) => String(s.attributes['traffic.type'] ?? 'none')));
  const frontendErrorRate = Object.fromEntries(
    [...classes].map((cls) => {
      const mine = frontend.filter((s) => String(s.attributes['traffic.type'] ?? 'none') === cls);
      const failed = mine.filter((s) => s.statusCode === 2 || Number(s.attributes['http.response.status_code'] ?? 0) >= 400);
      return [cls, Number((failed.length / mine.length).toFixed(4))];
    }),
  );
  return {
    services: [...services].sort(),
    edges: callEdges(spans),
    maxDepth,
    spans: spans.length,
    traces: traces.size,
    attributeCoverage,
    frontendErrorRate,
  };
}

/** One trace as waterfall rows, in start order, each with its depth. */
export function waterfall(trace: ReceivedSpan[]): WaterfallRow[] {
  const ids = new Set(trace.map((s) => s.spanId));
  const children = new Map<string, ReceivedSpan[]>();
  for (const span of trace) {
    const parent = span.parentSpanId && ids.has(span.parentSpanId) ? span.parentSpanId : '';
    children.set(parent, [...(children.get(parent) ?? []), span]);
  }
  // biome-ignore lint/complexity/useMathMinMax: nanosecond times are bigints
  const t0 = trace.reduce((min, s) => (s.startNs < min ? s.startNs : min), trace[0]?.startNs ?? 0n);
  const rows: WaterfallRow[] = [];
  const walk = (parent: string, depth: number) => {
    for (const span of [...(children.get(parent) ?? [])].sort((a, b) => (a.startNs < b.startNs ? -1 : 1))) {
      const reason = span.attributes['failure.reason'];
      rows.push({
        service: span.service,
        name: span.name,
        depth,
        startMs: ms(span.startNs - t0),
        durationMs: ms(span.endNs - span.startNs),
        error: span.statusCode === 2,
        detail: typeof reason === 'string' ? reason : undefined,
      });
      walk(span.spanId, depth + 1);
    }
  };
  walk('', 0);
  return rows;
}

/** A failed demo checkout trace (the frontend says checkout.failed), preferring one that timed out on recommendations. */
export function exampleFailedCheckout(spans: ReceivedSpan[]): ReceivedSpan[] | undefined {
  const failed = spans.filter(
    (s) => s.service === 'frontend' && s.kind === OTLP_SPAN_KIND.server && s.attributes['checkout.failed'] === true,
  );
  const pick = failed.find((s) => s.attributes['failure.reason'] === 'recommendations-timeout') ?? failed[0];
  return pick ? byTrace(spans).get(pick.traceId) : undefined;
}
