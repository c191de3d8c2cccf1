/**
 * The lab's OpenTelemetry Collector configuration (otel-collector/), checked with the real
 * collector: the custom `otelcol-lab` binary that scripts/build-collector.sh builds with the
 * OpenTelemetry Collector Builder from otel-collector/builder-config.yaml.
 *
 * The binary is not built here (the first build takes minutes): `npm run test-tools` does
 * it. Without it every test fails and says so.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { OtlpReceiver } from '@bfl/traces/otlp-receiver';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-proto';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { SimpleSpanProcessor, TracerProvider } from '@opentelemetry/sdk-trace';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { COLLECTOR_CONFIG, CORALOGIX_OVERLAY, cleanEnv, collector, startCollector } from './collector-support.js';

const CONFIG = COLLECTOR_CONFIG;
const CORALOGIX = CORALOGIX_OVERLAY;

interface Run {
  code: number | null;
  output: string;
}

/** Runs the collector to completion (e.g. `validate`); never throws on a non-zero exit. */
function run(args: string[], env: NodeJS.ProcessEnv = cleanEnv()): Promise<Run> {
  return new Promise((done) => {
    execFile(collector(), args, { env, timeout: 15_000 }, (error, stdout, stderr) => {
      const code = error ? (typeof error.code === 'number' ? error.code : null) : 0;
      done({ code, output: `${stdout}${stderr}` });
    });
  });
}

const DUMMY_CORALOGIX = {
  CORALOGIX_DOMAIN: 'eu2.coralogix.com',
  CORALOGIX_PRIVATE_KEY: 'dummy-not-a-secret',
  CORALOGIX_APPLICATION_NAME: 'black-friday-lab',
  CORALOGIX_SUBSYSTEM_NAME: 'collector-test',
};

describe('otelcol-lab validate', () => {
  it('accepts otel-collector/config.yaml as it is, with no Coralogix settings', async () => {
    const result = await run(['validate', `--config=${CONFIG}`]);
    expect(result.output).not.toMatch(/error/i);
    expect(result.code, result.output).toBe(0);
  });

  it('accepts config.yaml merged with the coralogix.yaml overlay, configured from CORALOGIX_* only', async () => {
    const result = await run(['validate', `--config=${CONFIG}`, `--config=${CORALOGIX}`], cleanEnv(DUMMY_CORALOGIX));
    expect(result.code, result.output).toBe(0);
  });

  it('rejects the Coralogix overlay without its CORALOGIX_* environment', async () => {
    const result = await run(['validate', `--config=${CONFIG}`, `--config=${CORALOGIX}`]);
    expect(result.code).not.toBe(0);
    expect(result.output).toMatch(/coralogix.*(domain|private_key)/s);
  });

  describe('a broken configuration', () => {
    let dir: string;
    beforeAll(async () => {
      dir = await mkdtemp(join(tmpdir(), 'bfl-collector-'));
    });
    afterAll(() => rm(dir, { recursive: true, force: true }));

    it.each([
      [
        'a pipeline naming an exporter that is not configured',
        'receivers: { otlp: { protocols: { http: {} } } }\nexporters: { debug: {} }\n' +
          'service: { pipelines: { traces: { receivers: [otlp], exporters: [debug, otlphttp/nowhere] } } }\n',
        /otlphttp\/nowhere/,
      ],
      [
        'an unknown setting',
        'receivers: { otlp: { protocols: { http: {} } } }\nexporters: { debug: { verbosity: basic, colour: red } }\n' +
          'service: { pipelines: { traces: { receivers: [otlp], exporters: [debug] } } }\n',
        /colour/,
      ],
      ['YAML that does not parse', 'receivers:\n  otlp: [\n', /yaml/i],
    ])('fails with a message: %s', async (_name, text, message) => {
      const file = join(dir, `${Math.random().toString(36).slice(2)}.yaml`);
      await writeFile(file, text);
      const result = await run(['validate', `--config=${file}`]);
      expect(result.code).not.toBe(0);
      expect(result.output).toMatch(message);
    });
  });
});

describe('otelcol-lab running config.yaml', () => {
  const traceUi = new OtlpReceiver();
  let stop: () => Promise<void> = async () => {};
  let output: () => string = () => '';
  let httpEndpoint = '';

  // A failure to start is reported by the test itself (a failed hook would only skip it).
  let startError: unknown;
  beforeAll(() => start().catch((error: unknown) => (startError = error)));

  async function start(): Promise<void> {
    await traceUi.start();
    const running = await startCollector({ TRACE_UI_OTLP_ENDPOINT: traceUi.url, DEPLOYMENT_ENVIRONMENT: 'collector-test' });
    httpEndpoint = running.httpEndpoint;
    stop = running.stop;
    output = running.output;
  }

  afterAll(async () => {
    await stop();
    await traceUi.stop();
  });

  it('forwards an OTLP/HTTP protobuf trace export to the trace UI with the resource enriched', async () => {
    if (startError) throw startError;
    // Two real SDK exports: one from a service that sets nothing but its name, one from a
    // service that already has a namespace (the collector's `insert` must keep it).
    const send = async (attributes: Record<string, string>) => {
      const provider = new TracerProvider({
        resource: resourceFromAttributes(attributes),
        spanProcessors: [new SimpleSpanProcessor({ exporter: new OTLPTraceExporter({ url: `${httpEndpoint}/v1/traces` }) })],
      });
      const span = provider.getTracer('collector-test').startSpan('POST /api/checkout', { attributes: { 'traffic.type': 'demo' } });
      span.end();
      await provider.forceFlush();
      await provider.shutdown();
      return span.spanContext();
    };
    const plain = await send({ 'service.name': 'frontend' });
    const namespaced = await send({ 'service.name': 'payment', 'service.namespace': 'kept-by-the-service' });

    await traceUi
      .waitFor((spans) => [plain, namespaced].every((sent) => spans.some((s) => s.spanId === sent.spanId)), 10_000)
      .catch((error: Error) => {
        throw new Error(`${error.message}\ncollector output:\n${output()}`);
      });
    const received = (spanId: string) => traceUi.spans.find((s) => s.spanId === spanId)!;

    const frontend = received(plain.spanId);
    expect(frontend).toMatchObject({ traceId: plain.traceId, name: 'POST /api/checkout', service: 'frontend' });
    expect(frontend.attributes).toMatchObject({ 'traffic.type': 'demo' });
    expect(frontend.resource).toMatchObject({
      'service.name': 'frontend',
      'service.namespace': 'black-friday-lab',
      'deployment.environment.name': 'collector-test',
    });

    const payment = received(namespaced.spanId);
    expect(payment.resource).toMatchObject({
      'service.name': 'payment',
      'service.namespace': 'kept-by-the-service',
      'deployment.environment.name': 'collector-test',
    });
    expect(traceUi.counts.rejected).toBe(0);
  });
});
