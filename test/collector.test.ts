/**
 * The lab's OpenTelemetry Collector configuration (otel-collector/), checked with the real
 * collector: the custom `otelcol-lab` binary that scripts/build-collector.sh builds with the
 * OpenTelemetry Collector Builder from otel-collector/builder-config.yaml.
 *
 * The binary is not built here (the first build takes minutes): `npm run test-tools` does
 * it. Without it every test fails and says so.
 */
import { execFile, execFileSync, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { OtlpReceiver } from '@bfl/kit/otlp-receiver';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-proto';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { SimpleSpanProcessor, TracerProvider } from '@opentelemetry/sdk-trace';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const ROOT = resolve(__dirname, '..');
const CONFIG = join(ROOT, 'otel-collector/config.yaml');
const CORALOGIX = join(ROOT, 'otel-collector/coralogix.yaml');
const BINARY = execFileSync('bash', [join(ROOT, 'scripts/build-collector.sh'), '--print-path'], { encoding: 'utf8' }).trim();

/** The collector binary; a missing one fails the test (never skips it). */
function collector(): string {
  if (!existsSync(BINARY)) {
    throw new Error(`The lab's collector is not built (${BINARY} is missing): run npm run test-tools (or bash scripts/build-collector.sh)`);
  }
  return BINARY;
}

/** The environment without any CORALOGIX_* or collector endpoint override of the caller's. */
function cleanEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env = Object.fromEntries(
    Object.entries(process.env).filter(
      ([name]) =>
        !name.startsWith('CORALOGIX_') &&
        !['OTLP_GRPC_ENDPOINT', 'OTLP_HTTP_ENDPOINT', 'HEALTH_ENDPOINT', 'TRACE_UI_OTLP_ENDPOINT', 'DEPLOYMENT_ENVIRONMENT'].includes(name),
    ),
  );
  return { ...env, ...extra };
}

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

/** A TCP port free right now on 127.0.0.1. */
function freePort(): Promise<number> {
  return new Promise((done, fail) => {
    const server = createServer().listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => (typeof address === 'object' && address ? done(address.port) : fail(new Error('no port'))));
    });
  });
}

describe('otelcol-lab running config.yaml', () => {
  const traceUi = new OtlpReceiver();
  let stop: () => Promise<void> = async () => {};
  let output = '';
  let httpEndpoint = '';

  // A failure to start is reported by the test itself (a failed hook would only skip it).
  let startError: unknown;
  beforeAll(() => start().catch((error: unknown) => (startError = error)));

  async function start(): Promise<void> {
    const binary = collector();
    await traceUi.start();
    const [grpc, http, health] = [await freePort(), await freePort(), await freePort()];
    httpEndpoint = `http://127.0.0.1:${http}`;
    const child = spawn(binary, [`--config=${CONFIG}`], {
      env: cleanEnv({
        OTLP_GRPC_ENDPOINT: `127.0.0.1:${grpc}`,
        OTLP_HTTP_ENDPOINT: `127.0.0.1:${http}`,
        HEALTH_ENDPOINT: `127.0.0.1:${health}`,
        TRACE_UI_OTLP_ENDPOINT: traceUi.url,
        DEPLOYMENT_ENVIRONMENT: 'collector-test',
      }),
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    child.stdout.on('data', (chunk) => (output += chunk));
    child.stderr.on('data', (chunk) => (output += chunk));
    const exited = new Promise<void>((done) => {
      child.once('exit', () => done());
      child.once('error', (error) => {
        output += `${error}\n`;
        done();
      });
    });
    stop = async () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 5_000);
      await exited;
      clearTimeout(timer);
    };

    // Ready when the health_check extension answers 200 (it does once the pipelines run).
    const deadline = Date.now() + 15_000;
    for (;;) {
      if (child.exitCode !== null || child.signalCode !== null)
        throw new Error(`otelcol-lab exited (${child.exitCode ?? child.signalCode}):\n${output}`);
      const status = await fetch(`http://127.0.0.1:${health}/`).then(
        (response) => response.status,
        () => 0,
      );
      if (status === 200) break;
      if (Date.now() > deadline) throw new Error(`otelcol-lab is not healthy after 15 s (last status ${status}):\n${output}`);
      await new Promise((done) => setTimeout(done, 100));
    }
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
        throw new Error(`${error.message}\ncollector output:\n${output}`);
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
