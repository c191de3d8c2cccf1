/**
 * OpenTelemetry boot. Preloaded with `node --require @bfl/kit/telemetry` before the
 * service's own code, so that the auto-instrumentations can patch http, undici, koa,
 * pg, knex and ioredis as they are first required.
 *
 * Configured only through the standard OTEL_* variables. When no OTLP endpoint and no
 * exporter is configured (or OTEL_SDK_DISABLED=true), nothing is started: no
 * instrumentation, no cost.
 */
import { registerTelemetryShutdown, telemetryStarted, telemetryWanted } from './telemetry-control.js';

function start(): void {
  if (telemetryStarted() || !telemetryWanted()) return;
  // Loaded only when wanted: the SDK and the instrumentations cost memory and start-up time.
  const { getNodeAutoInstrumentations } =
    require('@opentelemetry/auto-instrumentations-node') as typeof import('@opentelemetry/auto-instrumentations-node');
  const { startNodeSdk } = require('@opentelemetry/sdk-node') as typeof import('@opentelemetry/sdk-node');
  const sdk = startNodeSdk({
    instrumentations: [
      getNodeAutoInstrumentations({
        // Noise that tells no part of the story.
        '@opentelemetry/instrumentation-fs': { enabled: false },
        '@opentelemetry/instrumentation-dns': { enabled: false },
        '@opentelemetry/instrumentation-net': { enabled: false },
        // Health and readiness probes are not traffic.
        '@opentelemetry/instrumentation-http': {
          ignoreIncomingRequestHook: (req) => req.url === '/health' || req.url === '/ready',
        },
        // The kit's logger adds trace_id/span_id itself.
        '@opentelemetry/instrumentation-pino': { disableLogCorrelation: true },
      }),
    ],
  });
  registerTelemetryShutdown(() => sdk.shutdown());
}

start();
