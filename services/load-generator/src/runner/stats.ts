import * as hdr from 'hdr-histogram-js';
import type { ClassRow } from '../report/schema.js';
import type { OutcomeKind } from './engine.js';

/** The report row of one traffic class in one demo minute (DESIGN.md's fields and more). */
export type { ClassRow } from '../report/schema.js';

const round = (value: number, digits = 2) => Number(value.toFixed(digits));

/**
 * Measurements of one class in one minute. Latency is recorded from each request's
 * scheduled send time, in microseconds, in an HDR histogram.
 */
export class ClassStats {
  private readonly latency = hdr.build({
    lowestDiscernibleValue: 1,
    highestTrackableValue: 3_600_000_000,
    numberOfSignificantValueDigits: 3,
  });
  private readonly lag = hdr.build({ lowestDiscernibleValue: 1, highestTrackableValue: 3_600_000_000, numberOfSignificantValueDigits: 2 });
  private readonly errors: ClassRow['errorsByKind'] = { http4xx: 0, http5xx: 0, timeout: 0, connection: 0 };
  private readonly reasons: Record<string, number> = {};
  private readonly services: Record<string, number> = {};
  private firstSend = Number.POSITIVE_INFINITY;
  private lastSend = Number.NEGATIVE_INFINITY;
  /** Requests scheduled in this minute. */
  scheduled = 0;
  /** Requests sent so far. */
  sent = 0;
  /** Requests that have ended (answered, failed or timed out). */
  completed = 0;

  constructor(readonly targetRps: number) {}

  recordSend(scheduledAt: number, sentAt: number): void {
    this.sent++;
    this.firstSend = Math.min(this.firstSend, sentAt);
    this.lastSend = Math.max(this.lastSend, sentAt);
    this.lag.recordValue(Math.max(1, Math.round((sentAt - scheduledAt) * 1000)));
  }

  /**
   * One request ended. An error answer counts under the `reason` and the `service` its
   * body names (`unknown` for either when the body has none).
   */
  recordOutcome(kind: OutcomeKind, latencyMs: number, reason?: string, service?: string): void {
    this.completed++;
    if (kind !== 'ok') this.errors[kind]++;
    if (kind === 'http4xx' || kind === 'http5xx') {
      const key = reason ?? 'unknown';
      this.reasons[key] = (this.reasons[key] ?? 0) + 1;
      const by = service ?? 'unknown';
      this.services[by] = (this.services[by] ?? 0) + 1;
    }
    this.latency.recordValue(Math.max(1, Math.round(latencyMs * 1000)));
  }

  get done(): boolean {
    return this.completed >= this.scheduled;
  }

  /**
   * The achieved rate is one over the mean interval between actual send times: exact
   * when every request left on schedule, lower when sending fell behind.
   */
  achievedRps(): number {
    if (this.sent === 0) return 0;
    if (this.sent === 1 || this.lastSend <= this.firstSend) return this.targetRps;
    return (this.sent - 1) / ((this.lastSend - this.firstSend) / 1000);
  }

  row(): ClassRow {
    const errors = Object.values(this.errors).reduce((a, b) => a + b, 0);
    const ms = (q: number) => (this.completed ? round(this.latency.getValueAtPercentile(q) / 1000, 1) : 0);
    return {
      targetRps: round(this.targetRps),
      achievedRps: round(this.achievedRps()),
      requests: this.completed,
      errors,
      errorRate: this.completed ? round(errors / this.completed, 4) : 0,
      errorsByKind: { ...this.errors },
      errorsByReason: { ...this.reasons },
      errorsByService: { ...this.services },
      p50Ms: ms(50),
      p95Ms: ms(95),
      p99Ms: ms(99),
      maxMs: this.completed ? round(this.latency.maxValue / 1000, 1) : 0,
      sendLagP99Ms: this.sent ? round(this.lag.getValueAtPercentile(99) / 1000, 1) : 0,
    };
  }

  destroy(): void {
    this.latency.destroy();
    this.lag.destroy();
  }
}
