/**
 * The OpenTelemetry SDK set up from the standard environment, for what the lab uses:
 * the same steps and defaults as `@opentelemetry/sdk-node`'s `startNodeSdk`, without
 * loading the exporters, propagators and configuration-file support the lab never
 * uses (gRPC, Zipkin, Prometheus, B3, YAML: about 12 MiB per process).
 *
 * Read from the environment, as the specification names them: OTEL_TRACES_EXPORTER,
 * OTEL_METRICS_EXPORTER, OTEL_LOGS_EXPORTER (`otlp` by default, `console`, `none`);
 * OTEL_EXPORTER_OTLP_[SIGNAL_]PROTOCOL (`http/protobuf` by default, `http/json`);
 * the exporters' own OTEL_EXPORTER_OTLP_* endpoint, headers and timeout variables;
 * OTEL_BSP_*, OTEL_BLRP_*, OTEL_METRIC_EXPORT_INTERVAL/TIMEOUT; OTEL_SERVICE_NAME and
 * OTEL_RESOURCE_ATTRIBUTES; OTEL_LOG_LEVEL. gRPC and Prometheus are not bundled: they
 * are reported and OTLP/HTTP (protobuf) is used instead.
 */
import type { Instrumentation } from '@opentelemetry/instrumentation';
import type { Sampler } from '@opentelemetry/sdk-trace';

export interface LabSdkOptions {
  resourceAttributes: Record<string, string>;
  sampler: Sampler;
  instrumentations: Instrumentation[];
}

type Signal = 'traces' | 'metrics' | 'logs';

interface Shutdownable {
  shutdown(): Promise<void>;
}

/** The exporters OTEL_<SIGNAL>_EXPORTER names (default otlp); none when it says `none`. */
export function exporterNames(signal: Signal, env: NodeJS.ProcessEnv = process.env): string[] {
  const names = (env[`OTEL_${signal.toUpperCase()}_EXPORTER`] ?? '')
    .split(',')
    .map((name) => name.trim())
    .filter(Boolean);
  if (names.includes('none')) return [];
  return names.length ? [...new Set(names)] : ['otlp'];
}

/** The OTLP protocol of a signal: `http/protobuf` or `http/json`. */
export function otlpProtocol(signal: Signal, env: NodeJS.ProcessEnv = process.env): 'http/protobuf' | 'http/json' {
  const variable = `OTEL_EXPORTER_OTLP_${signal.toUpperCase()}_PROTOCOL`;
  const given = (env[variable] ?? env.OTEL_EXPORTER_OTLP_PROTOCOL ?? '').trim();
  if (given === '' || given === 'http/protobuf' || given === 'http/json') return given || 'http/protobuf';
  warn(
    `OTLP protocol "${given}" (${env[variable] ? variable : 'OTEL_EXPORTER_OTLP_PROTOCOL'}) is not bundled with the lab: exporting ${signal} over http/protobuf (port 4318)`,
  );
  return 'http/protobuf';
}

/** The part of a DiagLogger the lab uses: one method per level. */
export type DiagSink = Record<'error' | 'warn' | 'info' | 'debug' | 'verbose', (message: string, ...args: unknown[]) => void>;

/**
 * A diag logger that says each error or warning once per `windowMs`, then how many like
 * it it held back. Without a collector (Kubernetes: its pod not ready yet, or down) every
 * exporter fails every export interval, each service logging the same DNS failure and
 * timeout every few seconds; this keeps the first, and a count. Lower levels pass as
 * they are. Messages are alike when they match with their digits taken out.
 */
export function quietDiagLogger(sink: DiagSink, windowMs = 300_000, now: () => number = Date.now): DiagSink {
  const seen = new Map<string, { since: number; heldBack: number }>();
  const keyOf = (level: string, message: string, args: unknown[]) => {
    const first = args[0] instanceof Error ? args[0].message : typeof args[0] === 'string' ? args[0] : JSON.stringify(args[0] ?? '');
    return `${level} ${message} ${first ?? ''}`.replace(/\d+/g, '#').slice(0, 300);
  };
  const quiet =
    (level: 'error' | 'warn') =>
    (message: string, ...args: unknown[]) => {
      const key = keyOf(level, message, args);
      const entry = seen.get(key);
      const t = now();
      if (entry && t - entry.since < windowMs) {
        entry.heldBack++;
        return;
      }
      const held = entry?.heldBack ?? 0;
      seen.set(key, { since: t, heldBack: 0 });
      if (seen.size > 200) seen.delete(seen.keys().next().value as string);
      const note = held > 0 ? ` (and ${held} more like it in the last ${Math.round(windowMs / 1000)} s)` : '';
      sink[level](`${message}${note}`, ...args);
    };
  return { error: quiet('error'), warn: quiet('warn'), info: sink.info, debug: sink.debug, verbose: sink.verbose };
}

function warn(message: string): void {
  (require('@opentelemetry/api') as typeof import('@opentelemetry/api')).diag.warn(message);
}

/** The OTLP/HTTP exporter module of a signal: JSON or protobuf, as its protocol says. */
function otlpModule<J, P>(signal: Signal, json: () => J, protobuf: () => P): J | P {
  return otlpProtocol(signal) === 'http/json' ? json() : protobuf();
}

function unsupported(signal: Signal, name: string): [] {
  warn(`unsupported OTEL_${signal.toUpperCase()}_EXPORTER value "${name}" (supported: otlp, console, none)`);
  return [];
}

function positive(name: string): number | undefined {
  const value = Number(process.env[name]);
  return process.env[name]?.trim() && Number.isFinite(value) && value > 0 ? value : undefined;
}

function spanProcessors(): import('@opentelemetry/sdk-trace').SpanProcessor[] {
  const sdk = require('@opentelemetry/sdk-trace') as typeof import('@opentelemetry/sdk-trace');
  return exporterNames('traces').flatMap((name): import('@opentelemetry/sdk-trace').SpanProcessor[] => {
    if (name === 'console') return [new sdk.SimpleSpanProcessor({ exporter: new sdk.ConsoleSpanExporter() })];
    if (name !== 'otlp') return unsupported('traces', name);
    const { OTLPTraceExporter } = otlpModule(
      'traces',
      () => require('@opentelemetry/exporter-trace-otlp-http') as typeof import('@opentelemetry/exporter-trace-otlp-http'),
      () => require('@opentelemetry/exporter-trace-otlp-proto') as typeof import('@opentelemetry/exporter-trace-otlp-proto'),
    );
    return [
      new sdk.BatchSpanProcessor({
        exporter: new OTLPTraceExporter(),
        maxQueueSize: positive('OTEL_BSP_MAX_QUEUE_SIZE'),
        scheduledDelayMillis: positive('OTEL_BSP_SCHEDULE_DELAY'),
        exportTimeoutMillis: positive('OTEL_BSP_EXPORT_TIMEOUT'),
        maxExportBatchSize: positive('OTEL_BSP_MAX_EXPORT_BATCH_SIZE'),
      }),
    ];
  });
}

function metricReaders() {
  const sdk = require('@opentelemetry/sdk-metrics') as typeof import('@opentelemetry/sdk-metrics');
  return exporterNames('metrics').flatMap((name) => {
    if (name === 'console') return [new sdk.PeriodicExportingMetricReader({ exporter: new sdk.ConsoleMetricExporter() })];
    if (name !== 'otlp') return unsupported('metrics', name);
    const { OTLPMetricExporter } = otlpModule(
      'metrics',
      () => require('@opentelemetry/exporter-metrics-otlp-http') as typeof import('@opentelemetry/exporter-metrics-otlp-http'),
      () => require('@opentelemetry/exporter-metrics-otlp-proto') as typeof import('@opentelemetry/exporter-metrics-otlp-proto'),
    );
    const exportIntervalMillis = positive('OTEL_METRIC_EXPORT_INTERVAL') ?? 60_000;
    const exportTimeoutMillis = Math.min(positive('OTEL_METRIC_EXPORT_TIMEOUT') ?? 30_000, exportIntervalMillis);
    return [new sdk.PeriodicExportingMetricReader({ exporter: new OTLPMetricExporter(), exportIntervalMillis, exportTimeoutMillis })];
  });
}

function logProcessors(): import('@opentelemetry/sdk-logs').LogRecordProcessor[] {
  const sdk = require('@opentelemetry/sdk-logs') as typeof import('@opentelemetry/sdk-logs');
  return exporterNames('logs').flatMap((name): import('@opentelemetry/sdk-logs').LogRecordProcessor[] => {
    if (name === 'console') return [new sdk.SimpleLogRecordProcessor({ exporter: new sdk.ConsoleLogRecordExporter() })];
    if (name !== 'otlp') return unsupported('logs', name);
    const { OTLPLogExporter } = otlpModule(
      'logs',
      () => require('@opentelemetry/exporter-logs-otlp-http') as typeof import('@opentelemetry/exporter-logs-otlp-http'),
      () => require('@opentelemetry/exporter-logs-otlp-proto') as typeof import('@opentelemetry/exporter-logs-otlp-proto'),
    );
    return [
      new sdk.BatchLogRecordProcessor({
        exporter: new OTLPLogExporter(),
        maxQueueSize: positive('OTEL_BLRP_MAX_QUEUE_SIZE'),
        scheduledDelayMillis: positive('OTEL_BLRP_SCHEDULE_DELAY'),
        exportTimeoutMillis: positive('OTEL_BLRP_EXPORT_TIMEOUT'),
        maxExportBatchSize: positive('OTEL_BLRP_MAX_EXPORT_BATCH_SIZE'),
      }),
    ];
  });
}

/** The resource as sdk-node builds it: defaults, service/host/process detectors, OTEL_RESOURCE_ATTRIBUTES, then ours. */
function labResource(attributes: Record<string, string>) {
  const r = require('@opentelemetry/resources') as typeof import('@opentelemetry/resources');
  return r
    .defaultResource()
    .merge(
      r.detectResources({
        detectors: [r.serviceInstanceIdDetector, r.serviceNameEnvDetector, r.hostDetector, r.osDetector, r.processDetector],
      }),
    )
    .merge(r.detectResources({ detectors: [r.resourceAttributesEnvDetector] }))
    .merge(r.resourceFromAttributes(attributes));
}

/** Starts tracing, metrics and logs as the environment asks; resolves nothing, returns the shutdown. */
export function startLabSdk(options: LabSdkOptions): () => Promise<void> {
  const api = require('@opentelemetry/api') as typeof import('@opentelemetry/api');
  const core = require('@opentelemetry/core') as typeof import('@opentelemetry/core');
  const { registerInstrumentations } = require('@opentelemetry/instrumentation') as typeof import('@opentelemetry/instrumentation');
  const { AsyncLocalStorageContextManager } =
    require('@opentelemetry/context-async-hooks') as typeof import('@opentelemetry/context-async-hooks');

  const consoleLogger = new api.DiagConsoleLogger();
  const sink: DiagSink = {
    error: (m, ...a) => consoleLogger.error(m, ...a),
    warn: (m, ...a) => consoleLogger.warn(m, ...a),
    info: (m, ...a) => consoleLogger.info(m, ...a),
    debug: (m, ...a) => consoleLogger.debug(m, ...a),
    verbose: (m, ...a) => consoleLogger.verbose(m, ...a),
  };
  api.diag.setLogger(quietDiagLogger(sink), { logLevel: core.diagLogLevelFromString(process.env.OTEL_LOG_LEVEL ?? 'info') });
  // Patch the libraries before anything else loads them.
  if (options.instrumentations.length) registerInstrumentations({ instrumentations: options.instrumentations });

  const resource = labResource(options.resourceAttributes);
  const toShutdown: Shutdownable[] = [];
  const readers = metricReaders();
  if (readers.length) {
    const { MeterProvider } = require('@opentelemetry/sdk-metrics') as typeof import('@opentelemetry/sdk-metrics');
    const meterProvider = new MeterProvider({ resource, readers });
    toShutdown.push(meterProvider);
    api.metrics.setGlobalMeterProvider(meterProvider);
    for (const instrumentation of options.instrumentations) instrumentation.setMeterProvider(api.metrics.getMeterProvider());
  }
  const processors = spanProcessors();
  if (processors.length) {
    const { TracerProvider } = require('@opentelemetry/sdk-trace') as typeof import('@opentelemetry/sdk-trace');
    const tracerProvider = new TracerProvider({ resource, sampler: options.sampler, spanProcessors: processors });
    toShutdown.push(tracerProvider);
    api.trace.setGlobalTracerProvider(tracerProvider);
  }
  const logs = logProcessors();
  if (logs.length) {
    const { LoggerProvider } = require('@opentelemetry/sdk-logs') as typeof import('@opentelemetry/sdk-logs');
    const loggerProvider = new LoggerProvider({ resource, processors: logs });
    toShutdown.push(loggerProvider);
    api.logs.setGlobalLoggerProvider(loggerProvider);
  }
  api.context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
  registerW3cPropagation();
  return async () => {
    await Promise.all(toShutdown.map((provider) => provider.shutdown()));
  };
}

/**
 * W3C trace context and baggage as the global propagator: what carries the story's
 * `traffic.type` and `demo.minute` from the runner to every service. It needs no SDK, so
 * the runner registers it even when it exports no telemetry of its own.
 */
export function registerW3cPropagation(): void {
  const api = require('@opentelemetry/api') as typeof import('@opentelemetry/api');
  const core = require('@opentelemetry/core') as typeof import('@opentelemetry/core');
  api.propagation.setGlobalPropagator(
    new core.CompositePropagator({ propagators: [new core.W3CTraceContextPropagator(), new core.W3CBaggagePropagator()] }),
  );
}
