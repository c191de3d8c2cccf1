/**
 * Span kinds come in two numberings: @opentelemetry/api's SpanKind (the SDK's, from 0)
 * and OTLP's (the wire's, from 1 with 0 unspecified). Spans of every kind, exported by
 * the real SDK exporters (protobuf and JSON), arrive in the receiver as OTLP_SPAN_KIND
 * names them, and the story attributes' client check uses the API's SpanKind.CLIENT.
 */
import { SpanKind } from '@opentelemetry/api';
import { OTLPTraceExporter as JsonExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { OTLPTraceExporter as ProtoExporter } from '@opentelemetry/exporter-trace-otlp-proto';
import { SimpleSpanProcessor, TracerProvider } from '@opentelemetry/sdk-trace';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { OTLP_SPAN_KIND, OtlpReceiver } from '../src/otlp-receiver.js';

const receiver = new OtlpReceiver();
beforeAll(() => receiver.start());
afterAll(() => receiver.stop());

const KINDS = [
  [SpanKind.INTERNAL, OTLP_SPAN_KIND.internal],
  [SpanKind.SERVER, OTLP_SPAN_KIND.server],
  [SpanKind.CLIENT, OTLP_SPAN_KIND.client],
  [SpanKind.PRODUCER, OTLP_SPAN_KIND.producer],
  [SpanKind.CONSUMER, OTLP_SPAN_KIND.consumer],
] as const;

describe('span kinds, API and OTLP', () => {
  for (const [encoding, Exporter] of [
    ['protobuf', ProtoExporter],
    ['JSON', JsonExporter],
  ] as const) {
    it(`arrive over OTLP/${encoding} in OTLP's numbering`, async () => {
      const provider = new TracerProvider({
        spanProcessors: [new SimpleSpanProcessor({ exporter: new Exporter({ url: `${receiver.url}/v1/traces` }) })],
      });
      const tracer = provider.getTracer('span-kind-test');
      for (const [api] of KINDS) tracer.startSpan(`${encoding} ${SpanKind[api]}`, { kind: api }).end();
      await provider.shutdown();
      for (const [api, otlp] of KINDS) {
        const span = receiver.spans.find((s) => s.name === `${encoding} ${SpanKind[api]}`);
        expect(span?.kind, `${SpanKind[api]} (API ${api})`).toBe(otlp);
        expect(otlp).toBe(api + 1);
      }
    });
  }
});
