/**
 * `--verify-alerts <prometheus url>`: the alerts as part of the scenario's verdict.
 *
 * Before any traffic it checks that the Prometheus evaluates the lab's rules rendered for
 * this run's demo-minute length and that it knows every alert the scenario names. During
 * the run it reads the alert states (GET /api/v1/rules?type=alert) twice a demo second
 * and files each reading under the demo minute it was taken in. The report then says,
 * per alert, the first minute in which it was `firing` (not `pending`), the minute from
 * which it stayed inactive, and whether that matches the scenario's `alerts:` section.
 */

import { z } from '@bfl/kit';
import { errorCause } from '@bfl/kit/errors';
import { minuteLabel, RENDERED_FOR_LABEL } from '@bfl/lab/alert-rules';
import type { AlertResult } from '@bfl/load-generator/report-schema';
import type { ScenarioAlert } from '@bfl/load-generator/scenario';

export class AlertSetupError extends Error {}

type AlertState = 'inactive' | 'pending' | 'firing';

interface RuleInfo {
  name: string;
  state: AlertState;
  labels: Record<string, string>;
}

const RulesResponse = z.object({
  status: z.literal('success'),
  data: z.object({
    groups: z.array(
      z.object({
        name: z.string(),
        rules: z.array(
          z.object({
            type: z.string(),
            name: z.string(),
            state: z.string().optional(),
            labels: z.record(z.string(), z.string()).optional(),
          }),
        ),
      }),
    ),
  }),
});

/** The alerting rules a Prometheus evaluates, with their current state. */
async function fetchAlertRules(prometheus: string, timeoutMs = 3_000): Promise<RuleInfo[]> {
  const response = await fetch(`${prometheus}/api/v1/rules?type=alert`, { signal: AbortSignal.timeout(timeoutMs) });
  if (!response.ok) throw new Error(`GET /api/v1/rules answered ${response.status}`);
  const parsed = RulesResponse.safeParse(await response.json());
  if (!parsed.success) throw new Error('GET /api/v1/rules did not answer like Prometheus');
  return parsed.data.data.groups.flatMap((group) =>
    group.rules
      .filter((rule) => rule.type === 'alerting')
      .map((rule) => ({
        name: rule.name,
        state: (['pending', 'firing'].includes(rule.state ?? '') ? rule.state : 'inactive') as AlertState,
        labels: rule.labels ?? {},
      })),
  );
}

/**
 * Fails (AlertSetupError, the CLI exits 2) unless the Prometheus at `prometheus` answers,
 * evaluates rules rendered for `minuteMs` and has every alert in `expected`.
 */
export async function checkAlertSetup(prometheus: string, minuteMs: number, expected: ScenarioAlert[]): Promise<void> {
  const minute = minuteLabel(minuteMs);
  const fix = `start the lab with \`npm run lab -- --observe --minute ${minute}\` (it renders the rules for that length), or load \`npm run alerts:render -- --minute ${minute}\` into that Prometheus`;
  let rules: RuleInfo[];
  try {
    rules = await fetchAlertRules(prometheus);
  } catch (error) {
    const cause = errorCause(error);
    throw new AlertSetupError(`--verify-alerts: Prometheus at ${prometheus} cannot be read (${cause}): ${fix}`);
  }
  const rendered = [...new Set(rules.map((rule) => rule.labels[RENDERED_FOR_LABEL]).filter((v): v is string => Boolean(v)))];
  if (!rendered.length) {
    throw new AlertSetupError(
      `--verify-alerts: Prometheus at ${prometheus} evaluates none of the lab's alert rules (no rule has the label ${RENDERED_FOR_LABEL}): ${fix}`,
    );
  }
  if (rendered.some((value) => value !== minute)) {
    throw new AlertSetupError(
      `--verify-alerts: Prometheus at ${prometheus} evaluates alert rules rendered for ${rendered.join(', ')} demo minutes, but this run's minute is ${minute}: ${fix}`,
    );
  }
  const known = new Set(rules.map((rule) => rule.name));
  const missing = expected.map((alert) => alert.name).filter((name) => !known.has(name));
  if (missing.length) {
    throw new AlertSetupError(
      `--verify-alerts: Prometheus at ${prometheus} has no alerting rule ${missing.join(', ')} (it has ${[...known].join(', ') || 'none'})`,
    );
  }
}

export interface Reading {
  /** Demo minutes since the run started (fractional). */
  at: number;
  minute: number;
  states: Map<string, AlertState>;
}

/** Reads the alert states while the scenario runs. */
export class AlertWatcher {
  private readonly readings: Reading[] = [];
  private readonly failures: string[] = [];
  private timer: NodeJS.Timeout | undefined;
  private inFlight: Promise<void> | undefined;

  constructor(
    private readonly prometheus: string,
    private readonly expected: ScenarioAlert[],
    private readonly minuteMs: number,
    /** The demo minute now and how far into the run (in demo minutes); undefined before minute 0. */
    private readonly clock: () => { minute: number; at: number } | undefined,
  ) {}

  start(): void {
    const every = Math.max(100, Math.min(500, this.minuteMs / 10));
    this.timer = setInterval(() => {
      this.inFlight ??= this.read().finally(() => {
        this.inFlight = undefined;
      });
    }, every);
  }

  private async read(): Promise<void> {
    const now = this.clock();
    if (!now) return;
    try {
      const rules = await fetchAlertRules(this.prometheus, Math.max(1_000, this.minuteMs / 2));
      const states = new Map<string, AlertState>();
      for (const rule of rules) {
        // One alert name may have several series; the worst state wins.
        const order: AlertState[] = ['inactive', 'pending', 'firing'];
        const before = states.get(rule.name) ?? 'inactive';
        states.set(rule.name, order.indexOf(rule.state) > order.indexOf(before) ? rule.state : before);
      }
      this.readings.push({ ...now, states });
    } catch (error) {
      if (this.failures.length < 5) this.failures.push((error as Error).message);
    }
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    await this.inFlight;
    // One last reading as the run ends.
    await this.read();
  }

  /** Readings taken; errors while reading (at most five). */
  get stats(): { readings: number; failures: string[] } {
    return { readings: this.readings.length, failures: this.failures };
  }

  /** The verdict per alert; `firstErrorMinute` is the first minute in which demo traffic failed. */
  results(firstErrorMinute: number | null): AlertResult[] {
    return this.expected.map((alert) => judgeAlert(alert, this.readings, firstErrorMinute));
  }
}

/** Why an alert that fired did not stay inactive: still firing, or pending again (and when). */
function unresolved(timeline: { at: number; state: AlertState }[], lastFiringIndex: number): string {
  const after = timeline.slice(lastFiringIndex + 1);
  const pending = after.filter((r) => r.state === 'pending');
  if (!after.length) return `still firing at the end of the run (last read at ${timeline[lastFiringIndex]!.at.toFixed(2)})`;
  return `stopped firing at ${after[0]!.at.toFixed(2)} but was pending again from ${pending[0]!.at.toFixed(2)} to ${pending.at(-1)!.at.toFixed(2)}`;
}

export function judgeAlert(alert: ScenarioAlert, readings: Reading[], firstErrorMinute: number | null): AlertResult {
  const timeline = readings.map((r) => ({ at: r.at, minute: r.minute, state: r.states.get(alert.name) ?? 'inactive' }));
  const firing: { from: number; to: number }[] = [];
  for (let i = 0; i < timeline.length; i++) {
    const reading = timeline[i]!;
    if (reading.state !== 'firing') continue;
    const last = firing.at(-1);
    if (last && timeline[i - 1]?.state === 'firing') last.to = reading.at;
    else firing.push({ from: reading.at, to: reading.at });
  }
  const firstFiring = timeline.find((r) => r.state === 'firing');
  const lastFiringIndex = timeline.findLastIndex((r) => r.state === 'firing');
  const after = lastFiringIndex >= 0 ? timeline.slice(lastFiringIndex + 1) : [];
  const resolved = after.find((r) => r.state === 'inactive');
  const staysInactive = after.length > 0 && after.every((r) => r.state === 'inactive');
  const resolvedMinute = firstFiring && staysInactive && resolved ? resolved.minute : null;
  const firstFiringMinute = firstFiring?.minute ?? null;

  const problems: string[] = [];
  const { firingBy, resolvedBy } = alert;
  if (!timeline.length) problems.push('no alert state was read during the run');
  if (firingBy === null) {
    if (firstFiringMinute !== null) problems.push(`must never fire, but fired in minute ${firstFiringMinute}`);
  } else {
    if (firstFiringMinute === null) problems.push(`never fired (expected by minute ${firingBy})`);
    else if (firstFiringMinute > firingBy) problems.push(`fired first in minute ${firstFiringMinute}, after minute ${firingBy}`);
    if (firstFiringMinute !== null && (firstErrorMinute === null || firstFiringMinute < firstErrorMinute)) {
      problems.push(
        `fired in minute ${firstFiringMinute}, before any demo request failed${firstErrorMinute === null ? '' : ` (first in minute ${firstErrorMinute})`}`,
      );
    }
    if (firing.length > 1) problems.push(`fired again after resolving (${firing.length} separate times)`);
    if (firstFiringMinute !== null && resolvedBy !== null) {
      if (resolvedMinute === null) problems.push(`${unresolved(timeline, lastFiringIndex)} (expected resolved by minute ${resolvedBy})`);
      else if (resolvedMinute > resolvedBy) problems.push(`resolved in minute ${resolvedMinute}, after minute ${resolvedBy}`);
    }
  }
  const round = (v: number) => Number(v.toFixed(2));
  return {
    name: alert.name,
    expected: { firingBy, resolvedBy },
    firstFiringMinute,
    resolvedMinute,
    firing: firing.map((f) => ({ from: round(f.from), to: round(f.to) })),
    problems,
    ok: problems.length === 0,
  };
}

/** The expectation line an alert adds to the report. */
export function alertExpectation(result: AlertResult, minutes: number) {
  const { firingBy, resolvedBy } = result.expected;
  const expected =
    firingBy === null
      ? 'never firing'
      : `firing by minute ${firingBy}${resolvedBy === null ? '' : `, resolved by minute ${resolvedBy}`}, once, not before demo errors`;
  const values = Array.from({ length: minutes }, (_, minute) => ({
    minute,
    value: result.firing.some((f) => Math.floor(f.from) <= minute && minute <= Math.floor(f.to)) ? 1 : 0,
  }));
  return {
    name:
      firingBy === null
        ? `alert ${result.name} never fires`
        : `alert ${result.name} fires by minute ${firingBy}${resolvedBy === null ? '' : ` and resolves by minute ${resolvedBy}`}`,
    ok: result.ok,
    actual: result.firstFiringMinute,
    minute: result.resolvedMinute,
    expected: result.problems.length ? `${expected} (${result.problems.join('; ')})` : expected,
    values,
  };
}
