import { z } from '@bfl/kit';

/** The JSON report's contract (DESIGN.md): what `--json FILE` writes and the checks read. */

/** One alert's verdict (`--verify-alerts`): filled in by the scenario CLI, read back by the checks. */
const AlertResultSchema = z.object({
  name: z.string(),
  expected: z.object({ firingBy: z.number().int().nullable(), resolvedBy: z.number().int().nullable() }),
  /** The first demo minute in which the alert was `firing`; null: it never fired. */
  firstFiringMinute: z.number().int().nullable(),
  /** The first minute from which it stayed inactive after firing; null: never fired, or still firing at the end. */
  resolvedMinute: z.number().int().nullable(),
  /** Each stretch of `firing`, in demo minutes since the start (fractions: where in the minute). */
  firing: z.array(z.object({ from: z.number(), to: z.number() })),
  /** Why the alert failed its expectation (empty when ok). */
  problems: z.array(z.string()),
  ok: z.boolean(),
});
export type AlertResult = z.infer<typeof AlertResultSchema>;

/** The row of one traffic class in one demo minute. */
const ClassRowSchema = z.object({
  targetRps: z.number().min(0),
  achievedRps: z.number().min(0),
  requests: z.number().int().min(0),
  errors: z.number().int().min(0),
  errorRate: z.number().min(0).max(1),
  errorsByKind: z.object({
    http4xx: z.number().int().min(0),
    http5xx: z.number().int().min(0),
    timeout: z.number().int().min(0),
    connection: z.number().int().min(0),
  }),
  /** Error answers by the `reason` in their body (`unknown` when there was none). */
  errorsByReason: z.record(z.string(), z.number().int().min(0)),
  /**
   * Error answers by the `service` in their body, the one that failed (the frontend's
   * errors name it: cart, checkout, ...); `frontend` when the body names none.
   */
  errorsByService: z.record(z.string(), z.number().int().min(0)),
  p50Ms: z.number().min(0),
  p95Ms: z.number().min(0),
  p99Ms: z.number().min(0),
  maxMs: z.number().min(0),
  /** How late the runner sent requests after their scheduled time (p99, ms). */
  sendLagP99Ms: z.number().min(0),
});
export type ClassRow = z.infer<typeof ClassRowSchema>;

const ExpectationResultSchema = z.object({
  name: z.string(),
  ok: z.boolean(),
  /** The measured value that decides: the worst one over the selected minutes. */
  actual: z.number().nullable(),
  /** The minute the actual value comes from. */
  minute: z.number().int().nullable(),
  expected: z.string(),
  /** The measured value in every selected minute. */
  values: z.array(z.object({ minute: z.number().int(), value: z.number() })),
});
export type ExpectationResult = z.infer<typeof ExpectationResultSchema>;

/** A span of the example waterfall (`traces.example`). */
const WaterfallRowSchema = z.object({
  service: z.string(),
  name: z.string(),
  depth: z.number().int().min(0),
  startMs: z.number(),
  durationMs: z.number(),
  error: z.boolean(),
  detail: z.string().optional(),
});
export type WaterfallRow = z.infer<typeof WaterfallRowSchema>;

/** What the spans of a run show (the trace analysis's summary). */
const TraceSummarySchema = z.object({
  services: z.array(z.string()),
  edges: z.array(z.tuple([z.string(), z.string()])),
  maxDepth: z.number().int().min(0),
  spans: z.number().int().min(0),
  traces: z.number().int().min(0),
  /** Share of spans that carry each story attribute (0-1). */
  attributeCoverage: z.record(z.string(), z.number().min(0).max(1)),
  /** Error rate per traffic class, computed from the frontend's server spans. */
  frontendErrorRate: z.record(z.string(), z.number().min(0).max(1)),
});
export type TraceSummary = z.infer<typeof TraceSummarySchema>;

/** With --verify-traces: the summary, where the spans were received, and a failed checkout's waterfall. */
const TracesSectionSchema = TraceSummarySchema.extend({
  receiver: z.string(),
  example: z.object({ traceId: z.string(), rows: z.array(WaterfallRowSchema) }).optional(),
});
export type TracesSection = z.infer<typeof TracesSectionSchema>;

export const ReportSchema = z.object({
  scenario: z.string(),
  minuteMs: z.number().int().positive(),
  rateScale: z.number().positive(),
  target: z.string(),
  startedAt: z.iso.datetime(),
  finishedAt: z.iso.datetime(),
  stopped: z.boolean(),
  ok: z.boolean(),
  minutes: z.array(
    z.object({
      minute: z.number().int().min(0),
      label: z.string(),
      phase: z.enum(['ramp', 'recovery']),
      knobs: z.record(z.string(), z.number()),
      traffic: z.object({ baseline: ClassRowSchema, demo: ClassRowSchema }),
    }),
  ),
  expectations: z.array(ExpectationResultSchema),
  /** With --verify-traces. */
  traces: TracesSectionSchema.optional(),
  /** With --verify-alerts: what each alert of the scenario did. */
  alerts: z.array(AlertResultSchema).optional(),
});
export type Report = z.infer<typeof ReportSchema>;
