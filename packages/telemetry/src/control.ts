/**
 * The handle between the preloaded telemetry boot (telemetry.ts) and the service:
 * kept on globalThis so it is found whichever copy of the kit was loaded first.
 */
const SHUTDOWN = Symbol.for('bfl.telemetry.shutdown');
type Holder = { [SHUTDOWN]?: () => Promise<void> };

export function registerTelemetryShutdown(shutdown: () => Promise<void>): void {
  (globalThis as Holder)[SHUTDOWN] = shutdown;
}

export function telemetryStarted(): boolean {
  return Boolean((globalThis as Holder)[SHUTDOWN]);
}

/** Flushes and stops telemetry; a no-op when it was never started. */
export async function shutdownTelemetry(): Promise<void> {
  const holder = globalThis as Holder;
  const shutdown = holder[SHUTDOWN];
  if (!shutdown) return;
  holder[SHUTDOWN] = undefined;
  await shutdown();
}

/** True when the environment asks for telemetry to be exported. */
export function telemetryWanted(env: NodeJS.ProcessEnv = process.env): boolean {
  if ((env.OTEL_SDK_DISABLED ?? '').toLowerCase() === 'true') return false;
  const endpoint =
    env.OTEL_EXPORTER_OTLP_ENDPOINT ||
    env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT ||
    env.OTEL_EXPORTER_OTLP_METRICS_ENDPOINT ||
    env.OTEL_EXPORTER_OTLP_LOGS_ENDPOINT;
  const exporters = [env.OTEL_TRACES_EXPORTER, env.OTEL_METRICS_EXPORTER, env.OTEL_LOGS_EXPORTER];
  const explicit = exporters.some((e) => e !== undefined && e !== '' && e !== 'none' && e !== 'otlp');
  return Boolean(endpoint) || explicit;
}
