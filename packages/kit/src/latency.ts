import { setTimeout as sleep } from 'node:timers/promises';
import { trace } from '@opentelemetry/api';

/** A delay distribution: log-normal, given by its median and 95th percentile. */
export interface DelayProfile {
  medianMs: number;
  p95Ms: number;
}

const Z95 = 1.6448536269514722;

/** One standard normal sample (Box–Muller). */
function gaussian(random: () => number): number {
  const u = 1 - random();
  const v = random();
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
}

/** Draws one delay in milliseconds from a log-normal profile. */
export function sampleDelay(profile: DelayProfile, random: () => number = Math.random): number {
  if (profile.medianMs <= 0) return 0;
  const sigma = Math.log(Math.max(profile.p95Ms, profile.medianMs) / profile.medianMs) / Z95;
  return profile.medianMs * Math.exp(sigma * gaussian(random));
}

/**
 * Parses overrides such as `convert=15/40,ads=30/90` (name=median/p95, in ms).
 * Throws with the offending entry when one is malformed.
 */
export function parseProfiles(spec: string | undefined): Record<string, DelayProfile> {
  const profiles: Record<string, DelayProfile> = {};
  for (const entry of (spec ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean)) {
    const match = /^([\w.-]+)=(\d+(?:\.\d+)?)\/(\d+(?:\.\d+)?)$/.exec(entry);
    if (!match) throw new Error(`bad latency profile "${entry}": expected name=median/p95 in ms`);
    const [, name, median, p95] = match as unknown as [string, string, string, string];
    profiles[name] = { medianMs: Number(median), p95Ms: Number(p95) };
  }
  return profiles;
}

/**
 * The simulated work of a service: each named step sleeps for a delay drawn from its
 * profile, scaled by `scale` (0 turns it off). The active span records the step and
 * the delay (`lab.simulated.step`, `lab.simulated.delay_ms`).
 */
export class LatencyModel {
  private readonly profiles: Record<string, DelayProfile>;

  readonly scale: number;

  /** `settings` are the service's LATENCY_SCALE and parsed LATENCY_PROFILES. */
  constructor(
    defaults: Record<string, DelayProfile>,
    settings: { LATENCY_SCALE?: number; LATENCY_PROFILES?: Record<string, DelayProfile> } = {},
  ) {
    this.scale = settings.LATENCY_SCALE ?? 1;
    this.profiles = { ...defaults, ...settings.LATENCY_PROFILES };
  }

  profile(step: string): DelayProfile | undefined {
    return this.profiles[step];
  }

  async work(step: string): Promise<void> {
    const profile = this.profiles[step];
    if (!profile || this.scale <= 0) return;
    const delay = sampleDelay(profile) * this.scale;
    // Recorded on the span of the work it stands for, so a trace never passes synthetic
    // time off as real work (a span of its own would double the span count).
    trace.getActiveSpan()?.setAttributes({ 'lab.simulated.step': step, 'lab.simulated.delay_ms': Math.round(delay) });
    await sleep(delay);
  }
}
