/**
 * @bfl/telemetry: the services' OpenTelemetry set-up.
 *
 * Belongs here: starting the SDK (boot.ts; the preload entry `--require
 * @bfl/telemetry/preload` is preload.ts), its exporters and instrumentations (sdk.ts),
 * the sampler that records the story's baggage and the peer service on every span
 * (story-attributes.ts), the lab's own metrics (metrics.ts), shutdown (control.ts) and
 * running work untraced (untraced.ts). The SDK and the instrumentations are loaded only
 * when telemetry is wanted: this entry point loads neither.
 *
 * Does not belong here: serving requests (@bfl/kit), reading or analysing telemetry
 * (the developer tool @bfl/traces).
 */
export { labResourceAttributes, type StartOptions, serviceFromEntry, startTelemetry } from './boot.js';
export { registerTelemetryShutdown, shutdownTelemetry, telemetryStarted, telemetryWanted } from './control.js';
export { labMeter, observePool, POOL_SAMPLE_MS, type PoolLike } from './metrics.js';
export { untraced } from './untraced.js';
