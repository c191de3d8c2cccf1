import { readFileSync } from 'node:fs';
import path from 'node:path';
import { KnobValues } from '@bfl/contract';
import { z } from '@bfl/kit';
import { parse as parseYaml } from 'yaml';

/** Where the bundled scenarios live (services/load-generator/scenarios). */
const SCENARIO_DIR = path.resolve(__dirname, '../../scenarios');

export const TRAFFIC_CLASSES = ['baseline', 'demo'] as const;
export type TrafficClass = (typeof TRAFFIC_CLASSES)[number];

/** Known knobs only, each within its documented range (KNOBS in the kit). */
const Knobs = KnobValues;

const Request = z.object({
  method: z.enum(['GET', 'POST', 'PUT', 'DELETE']).default('POST'),
  path: z.string().startsWith('/', 'path must start with /'),
  /** JSON body; strings may hold {{seq}}, {{uuid}} and {{pick:a,b,c}} placeholders. */
  body: z.record(z.string(), z.unknown()).optional(),
});

const Metric = z.enum(['errorRate', 'p50Ms', 'p95Ms', 'p99Ms', 'achievedOverTarget', 'requests']);
export type Metric = z.infer<typeof Metric>;

/** `all`, `first`, `last`, `0-3`, `last-1` (counted from the end), or a list of minute numbers. */
const MinuteSelector = z.union([
  z.enum(['all', 'first', 'last']),
  z.string().regex(/^(\d+|last(-\d+)?)(\.\.(\d+|last(-\d+)?))?$/, 'minutes: all | first | last | N | last-K | A..B'),
  z.array(z.number().int().min(0)).min(1),
  z.number().int().min(0),
]);

const Expectation = z.discriminatedUnion('kind', [
  z.object({
    kind: z.literal('range'),
    name: z.string().min(1),
    class: z.enum(TRAFFIC_CLASSES),
    metric: Metric,
    minutes: MinuteSelector.default('all'),
    min: z.number().optional(),
    max: z.number().optional(),
  }),
  z.object({
    /** The metric never falls by more than `tolerance` from one selected minute to the next. */
    kind: z.literal('rising'),
    name: z.string().min(1),
    class: z.enum(TRAFFIC_CLASSES),
    metric: Metric,
    minutes: MinuteSelector.default('all'),
    tolerance: z.number().min(0).default(0),
  }),
]);
export type Expectation = z.infer<typeof Expectation>;

/**
 * What an alert of the lab's rules must do during the scenario (checked with
 * `--verify-alerts`): be `firing` by the end of demo minute `firingBy` and stay inactive
 * from minute `resolvedBy` on; `firingBy: null`: it must never fire.
 */
const ScenarioAlert = z
  .object({
    name: z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'an alert name (letters, digits, _)'),
    firingBy: z.number().int().min(0).nullable(),
    resolvedBy: z.number().int().min(0).nullable().default(null),
  })
  .strict()
  .refine((a) => a.firingBy === null || a.resolvedBy === null || a.resolvedBy >= a.firingBy, {
    message: 'resolvedBy must not come before firingBy',
  })
  .refine((a) => a.firingBy !== null || a.resolvedBy === null, { message: 'an alert that must never fire has no resolvedBy' });
export type ScenarioAlert = z.infer<typeof ScenarioAlert>;

const ScenarioSchema = z
  .object({
    name: z.string().regex(/^[a-z0-9][a-z0-9-]*$/, 'name: lower-case letters, digits and dashes'),
    description: z.string().default(''),
    traffic: z.object({ baseline: z.object({ request: Request }), demo: z.object({ request: Request }) }),
    /** Knob values when a minute does not set them (healthy). */
    defaults: z.object({ knobs: Knobs.default({}) }).default({ knobs: {} }),
    minutes: z
      .array(
        z.object({
          label: z.string().default(''),
          phase: z.enum(['ramp', 'recovery']).default('ramp'),
          /** Target rate of each class, in requests per minute of real time. */
          rpm: z.object({ baseline: z.number().min(0).max(60_000), demo: z.number().min(0).max(60_000) }),
          knobs: Knobs.default({}),
        }),
      )
      .min(1, 'a scenario needs at least one minute')
      .max(60),
    expectations: z.array(Expectation).default([]),
    alerts: z.array(ScenarioAlert).default([]),
  })
  .superRefine((scenario, ctx) => {
    const names = new Set<string>();
    scenario.alerts.forEach((alert, i) => {
      if (names.has(alert.name))
        ctx.addIssue({ code: 'custom', path: ['alerts', i, 'name'], message: `alert ${alert.name} is listed twice` });
      names.add(alert.name);
      for (const key of ['firingBy', 'resolvedBy'] as const) {
        const minute = alert[key];
        if (minute !== null && minute >= scenario.minutes.length) {
          ctx.addIssue({
            code: 'custom',
            path: ['alerts', i, key],
            message: `minute ${minute} is outside 0..${scenario.minutes.length - 1}`,
          });
        }
      }
    });
    scenario.expectations.forEach((e, i) => {
      if (e.kind === 'range' && e.min === undefined && e.max === undefined) {
        ctx.addIssue({ code: 'custom', path: ['expectations', i], message: 'a range expectation needs min or max' });
      }
      try {
        selectMinutes(e.minutes, scenario.minutes.length);
      } catch (error) {
        ctx.addIssue({ code: 'custom', path: ['expectations', i, 'minutes'], message: (error as Error).message });
      }
    });
  });

export type Scenario = z.infer<typeof ScenarioSchema>;
export type ScenarioMinute = Scenario['minutes'][number];

export class ScenarioError extends Error {}

/** Resolves `last-2` style minute references. */
function minuteIndex(ref: string, count: number): number {
  if (ref === 'first') return 0;
  const match = /^last(?:-(\d+))?$/.exec(ref);
  const index = match ? count - 1 - Number(match[1] ?? 0) : Number(ref);
  if (!Number.isInteger(index) || index < 0 || index >= count) throw new Error(`minute ${ref} is outside 0..${count - 1}`);
  return index;
}

/** The minute numbers an expectation applies to. */
export function selectMinutes(selector: z.infer<typeof MinuteSelector>, count: number): number[] {
  if (selector === 'all') return Array.from({ length: count }, (_, i) => i);
  if (typeof selector === 'number') return [minuteIndex(String(selector), count)];
  if (Array.isArray(selector)) return selector.map((m) => minuteIndex(String(m), count));
  const [from, to] = selector.split('..') as [string, string | undefined];
  const a = minuteIndex(from, count);
  const b = to === undefined ? a : minuteIndex(to, count);
  if (b < a) throw new Error(`minutes ${selector}: the range runs backwards`);
  return Array.from({ length: b - a + 1 }, (_, i) => a + i);
}

/** Validates a parsed scenario; the error names the bad field. */
export function parseScenario(input: unknown, source = 'scenario'): Scenario {
  const result = ScenarioSchema.safeParse(input);
  if (result.success) return result.data;
  const issue = result.error.issues[0];
  const where = issue?.path.length ? issue.path.join('.') : '(top level)';
  throw new ScenarioError(`${source}: ${where}: ${issue?.message ?? 'invalid'}`);
}

/**
 * Loads a scenario by name (a file in SCENARIO_DIR) or by path (.yaml, .yml or .json).
 */
export function loadScenario(nameOrPath: string): Scenario {
  const file =
    nameOrPath.includes('/') || /\.(ya?ml|json)$/.test(nameOrPath)
      ? path.resolve(nameOrPath)
      : path.join(SCENARIO_DIR, `${nameOrPath}.yaml`);
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch {
    throw new ScenarioError(`scenario "${nameOrPath}" not found (looked for ${file})`);
  }
  let parsed: unknown;
  try {
    parsed = file.endsWith('.json') ? JSON.parse(text) : parseYaml(text);
  } catch (error) {
    throw new ScenarioError(`${file}: not valid ${file.endsWith('.json') ? 'JSON' : 'YAML'}: ${(error as Error).message}`);
  }
  return parseScenario(parsed, path.basename(file));
}

/** Per-second target rate of a class in a minute, after --rate-scale. */
export function targetRps(minute: ScenarioMinute, cls: TrafficClass, rateScale = 1): number {
  return (minute.rpm[cls] * rateScale) / 60;
}

/** The knobs in force during a minute: the scenario's defaults overlaid with the minute's own. */
export function knobsOf(scenario: Scenario, minute: number): Record<string, number> {
  return { ...scenario.defaults.knobs, ...scenario.minutes[minute]?.knobs };
}
