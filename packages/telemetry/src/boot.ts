/**
 * OpenTelemetry boot, configured only through the standard OTEL_* variables (exporters,
 * protocol, endpoint, OTEL_RESOURCE_ATTRIBUTES, ...). When no OTLP endpoint and no
 * exporter is configured (or OTEL_SDK_DISABLED=true), nothing is started: no
 * instrumentation, no cost. Services preload it (telemetry.ts); the scenario CLI starts
 * it itself, without auto-instrumentation.
 */
import { registerTelemetryShutdown, telemetryStarted, telemetryWanted } from './control.js';

/** `services/<name>/dist/...` → `<name>`: the service.name when OTEL_SERVICE_NAME is unset. */
export function serviceFromEntry(entry: string | undefined): string | undefined {
  return /services[\\/]([a-z-]+)[\\/]dist[\\/]/.exec(entry ?? '')?.[1];
}

/** The lab's resource attributes, unless OTEL_RESOURCE_ATTRIBUTES already sets them. */
export function labResourceAttributes(env: NodeJS.ProcessEnv = process.env): Record<string, string> {
  const given = new Set((env.OTEL_RESOURCE_ATTRIBUTES ?? '').split(',').map((pair) => pair.split('=')[0]?.trim()));
  const attributes: Record<string, string> = {
    'service.namespace': 'black-friday-lab',
    'service.version': env.SERVICE_VERSION || env.IMAGE_TAG || '0.1.0',
    'deployment.environment.name': env.DEPLOYMENT_ENVIRONMENT || 'local',
  };
  for (const key of Object.keys(attributes)) if (given.has(key)) delete attributes[key];
  return attributes;
}

export interface StartOptions {
  /** Patch http, undici, koa, pg, knex, ioredis and pino (services); off for the runner's manual spans. */
  autoInstrument?: boolean;
  /** Register the W3C trace-context and baggage propagators even when no telemetry is wanted. */
  propagateAlways?: boolean;
}

/**
 * Starts the SDK if the environment asks for telemetry; true when it runs. Without it,
 * `propagateAlways` still registers the W3C propagators (the runner: its requests carry
 * the story's baggage whether or not it exports spans of its own).
 */
export function startTelemetry(options: StartOptions = {}): boolean {
  if (telemetryStarted()) return true;
  if (!telemetryWanted()) {
    if (options.propagateAlways) (require('./sdk.js') as typeof import('./sdk.js')).registerW3cPropagation();
    return false;
  }
  process.env.OTEL_SERVICE_NAME ||= serviceFromEntry(process.argv[1]) ?? '';
  // Stable semantic-convention names for HTTP and database spans and metrics.
  process.env.OTEL_SEMCONV_STABILITY_OPT_IN ||= 'http,database';
  // Loaded only when wanted: the SDK and the instrumentations cost memory and start-up
  // time. Only the libraries the lab uses are patched (http, undici, koa, pg, knex,
  // ioredis, pino): the auto-instrumentation bundle would load some forty packages.
  const { startLabSdk } = require('./sdk.js') as typeof import('./sdk.js');
  const { StoryAttributesSampler } = require('./story-attributes.js') as typeof import('./story-attributes.js');
  const shutdown = startLabSdk({
    resourceAttributes: labResourceAttributes(),
    sampler: new StoryAttributesSampler(),
    instrumentations: options.autoInstrument === false ? [] : labInstrumentations(),
  });
  registerTelemetryShutdown(shutdown);
  return true;
}

/** The instrumentations of the libraries the services use, configured for the story. */
function labInstrumentations() {
  const { HttpInstrumentation } = require('@opentelemetry/instrumentation-http') as typeof import('@opentelemetry/instrumentation-http');
  const { UndiciInstrumentation } =
    require('@opentelemetry/instrumentation-undici') as typeof import('@opentelemetry/instrumentation-undici');
  const { KoaInstrumentation } = require('@opentelemetry/instrumentation-koa') as typeof import('@opentelemetry/instrumentation-koa');
  const { PgInstrumentation } = require('@opentelemetry/instrumentation-pg') as typeof import('@opentelemetry/instrumentation-pg');
  const { KnexInstrumentation } = require('@opentelemetry/instrumentation-knex') as typeof import('@opentelemetry/instrumentation-knex');
  const { IORedisInstrumentation } =
    require('@opentelemetry/instrumentation-ioredis') as typeof import('@opentelemetry/instrumentation-ioredis');
  const { PinoInstrumentation } = require('@opentelemetry/instrumentation-pino') as typeof import('@opentelemetry/instrumentation-pino');
  return [
    // Health and readiness probes are not traffic.
    new HttpInstrumentation({ ignoreIncomingRequestHook: (req) => req.url === '/health' || req.url === '/ready' }),
    new UndiciInstrumentation(),
    // Route spans only: a span per Koa middleware would bury the story.
    new KoaInstrumentation({ ignoreLayersType: ['middleware' as never] }),
    new PgInstrumentation(),
    new KnexInstrumentation(),
    new IORedisInstrumentation(),
    // The kit's logger adds trace_id/span_id itself; the instrumentation sends the
    // records over OTLP as well (OTEL_LOGS_EXPORTER).
    new PinoInstrumentation({ disableLogCorrelation: true }),
  ];
}
