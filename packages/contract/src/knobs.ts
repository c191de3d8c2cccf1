import { z } from 'zod';

/**
 * The scenario's knobs: the only names a scenario, the control API's relay or a service
 * reading `lab:scenario` accepts, each with the range it is documented to take. The
 * story's largest values are 255 ms (query cost) and 270 ms (write delay); the ranges
 * leave room to write a harsher scenario, not to hold a connection for days.
 */
const KNOBS = {
  recommendation_query_cost_ms: {
    min: 0,
    max: 1_000,
    what: 'server-side time added to the recommendation query (a pg_sleep inside the statement)',
  },
  checkout_write_delay_ms: {
    min: 0,
    max: 1_000,
    what: 'time added to the order transaction (a pg_sleep statement inside it)',
  },
} as const;

export type KnobName = keyof typeof KNOBS;

/** `name (min-max ms)`, for messages. */
function knobRange(name: KnobName): string {
  return `${name} takes ${KNOBS[name].min}-${KNOBS[name].max} ms`;
}

const KNOB_LIST = Object.keys(KNOBS).join(', ');

/**
 * A knob set: known names only, each value a finite number within its range. Errors name
 * the knob and its range (`knobs.recommendation_query_cost_ms: ... takes 0-1000 ms`).
 */
export const KnobValues = z
  .record(z.string(), z.unknown())
  .superRefine((knobs, ctx) => {
    for (const [name, value] of Object.entries(knobs)) {
      if (!Object.hasOwn(KNOBS, name)) {
        ctx.addIssue({ code: 'custom', path: [name], message: `unknown knob ${name} (known: ${KNOB_LIST})` });
        continue;
      }
      const { min, max } = KNOBS[name as KnobName];
      if (typeof value !== 'number' || !Number.isFinite(value) || value < min || value > max)
        ctx.addIssue({ code: 'custom', path: [name], message: `${knobRange(name as KnobName)}, got ${JSON.stringify(value)}` });
    }
  })
  .transform((knobs) => knobs as Partial<Record<KnobName, number>>);

/** The first problem with a knob set, or undefined when every knob is known and in range. */
export function knobProblem(knobs: unknown): string | undefined {
  const result = KnobValues.safeParse(knobs);
  if (result.success) return undefined;
  const issue = result.error.issues[0]!;
  return issue.message;
}

/**
 * The statement_timeout of a pool whose queries a knob slows: above the largest cost the
 * range allows plus the query's own cost (a few ms; a second of margin). A statement past
 * it is cancelled by PostgreSQL and answered 503 `statement-timeout`.
 */
export function statementTimeoutFor(knob?: KnobName): number {
  return (knob ? KNOBS[knob].max : 0) + 1_000;
}
