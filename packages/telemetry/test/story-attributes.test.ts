/** The span attributes from baggage: the story's values only, anything else dropped and counted. */
import { metrics, ROOT_CONTEXT, SpanKind } from '@opentelemetry/api';
import { W3CBaggagePropagator } from '@opentelemetry/core';
import { AggregationTemporality, InMemoryMetricExporter, MeterProvider, PeriodicExportingMetricReader } from '@opentelemetry/sdk-metrics';
import { afterAll, describe, expect, it } from 'vitest';
import { StoryAttributesSampler } from '../src/story-attributes.js';

const exporter = new InMemoryMetricExporter(AggregationTemporality.CUMULATIVE);
const reader = new PeriodicExportingMetricReader({ exporter, exportIntervalMillis: 60_000 });
const provider = new MeterProvider({ readers: [reader] });
metrics.setGlobalMeterProvider(provider);
afterAll(() => provider.shutdown());

const sampler = new StoryAttributesSampler(new Map());
const propagator = new W3CBaggagePropagator();
/** The attributes a server span gets for a request carrying this baggage header. */
function attributesFor(header: string) {
  const context = propagator.extract(ROOT_CONTEXT, { baggage: header }, { get: (c, k) => c[k], keys: (c) => Object.keys(c) });
  return sampler.shouldSample(context, '0af7651916cd43dd8448eb211c80319c', 'POST /api/browse', SpanKind.SERVER, {}, []).attributes ?? {};
}

async function rejectedByKey(): Promise<Record<string, number>> {
  await reader.forceFlush();
  const points = exporter
    .getMetrics()
    .flatMap((r) => r.scopeMetrics.flatMap((s) => s.metrics))
    .filter((m) => m.descriptor.name === 'lab.baggage.rejected')
    .flatMap((m) => m.dataPoints as { attributes: Record<string, unknown>; value: unknown }[]);
  exporter.reset();
  return Object.fromEntries(points.map((p) => [String(p.attributes['baggage.key']), Number(p.value)]));
}

describe('StoryAttributesSampler and the story baggage', () => {
  it('records the values the story sends', () => {
    expect(attributesFor('traffic.type=demo,demo.minute=11')).toMatchObject({ 'traffic.type': 'demo', 'demo.minute': 11 });
    expect(attributesFor('traffic.type=baseline,demo.minute=0')).toMatchObject({ 'traffic.type': 'baseline', 'demo.minute': 0 });
    expect(attributesFor('traffic.type=demo,demo.minute=59')).toMatchObject({ 'demo.minute': 59 });
  });

  it('drops any other value and counts it by key in lab.baggage.rejected', async () => {
    await rejectedByKey();
    for (const header of [
      'traffic.type=evil,demo.minute=60',
      'traffic.type=Demo,demo.minute=-1',
      'traffic.type=baseline%20,demo.minute=1e3',
      `traffic.type=${'x'.repeat(200)},demo.minute=007`,
    ]) {
      const attributes = attributesFor(header);
      expect(attributes['traffic.type'], header).toBeUndefined();
      expect(attributes['demo.minute'], header).toBeUndefined();
    }
    expect(await rejectedByKey()).toEqual({ 'traffic.type': 4, 'demo.minute': 4 });
    // No baggage at all is not a rejection.
    expect(attributesFor('other=1')).toEqual({});
    expect(await rejectedByKey()).toEqual({ 'traffic.type': 4, 'demo.minute': 4 });
  });

  it("names the peer service of client spans only (the API's SpanKind.CLIENT)", () => {
    const peers = new Map([['cart:8013', 'cart']]);
    const attributes = { 'server.address': 'cart', 'server.port': 8013 };
    const peerOf = (kind: SpanKind) =>
      new StoryAttributesSampler(peers).shouldSample(ROOT_CONTEXT, '0af7651916cd43dd8448eb211c80319c', 'GET', kind, attributes, [])
        .attributes?.['peer.service'];
    expect(peerOf(SpanKind.CLIENT)).toBe('cart');
    for (const kind of [SpanKind.INTERNAL, SpanKind.SERVER, SpanKind.PRODUCER, SpanKind.CONSUMER])
      expect(peerOf(kind), SpanKind[kind]).toBeUndefined();
  });
});
