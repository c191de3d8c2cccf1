import type { MinuteRow, RunResult } from '../runner/runner.js';
import { type Expectation, type Metric, type Scenario, selectMinutes } from '../runner/scenario.js';
import type { ClassRow, ExpectationResult, Report } from './schema.js';

export type { ExpectationResult, Report } from './schema.js';

function metricOf(row: ClassRow, metric: Metric): number {
  if (metric === 'achievedOverTarget') return row.targetRps > 0 ? row.achievedRps / row.targetRps : 1;
  return row[metric];
}

const fmt = (value: number) => Number(value.toFixed(4));

/** Checks one expectation against the measured minutes. */
export function evaluate(expectation: Expectation, minutes: MinuteRow[], scenarioMinutes: number): ExpectationResult {
  const selected = selectMinutes(expectation.minutes, scenarioMinutes);
  const byMinute = new Map(minutes.map((row) => [row.minute, row]));
  const values = selected.flatMap((minute) => {
    const row = byMinute.get(minute);
    return row ? [{ minute, value: fmt(metricOf(row.traffic[expectation.class], expectation.metric)) }] : [];
  });
  const missing = selected.length - values.length;
  if (expectation.kind === 'rising') {
    let worst: { minute: number; value: number } | undefined;
    for (let i = 1; i < values.length; i++) {
      const drop = values[i - 1]!.value - values[i]!.value;
      if (!worst || drop > worst.value) worst = { minute: values[i]!.minute, value: fmt(drop) };
    }
    const ok = missing === 0 && (worst?.value ?? 0) <= expectation.tolerance;
    return {
      name: expectation.name,
      ok,
      actual: worst?.value ?? 0,
      minute: worst?.minute ?? null,
      expected: `${expectation.metric} falls by at most ${expectation.tolerance} from one minute to the next`,
      values,
    };
  }
  const { min, max } = expectation;
  const outside = (v: number) => (min !== undefined && v < min ? min - v : 0) + (max !== undefined && v > max ? v - max : 0);
  let worst = values[0];
  for (const v of values) {
    if (!worst || outside(v.value) > outside(worst.value)) worst = v;
    else if (outside(worst.value) === 0 && max !== undefined && v.value > worst.value) worst = v;
  }
  const expected = [min !== undefined ? `>= ${min}` : '', max !== undefined ? `<= ${max}` : ''].filter(Boolean).join(' and ');
  return {
    name: expectation.name,
    ok: missing === 0 && values.every((v) => outside(v.value) === 0),
    actual: worst?.value ?? null,
    minute: worst?.minute ?? null,
    expected: `${expectation.metric} ${expected}${missing ? ` (${missing} minute(s) not measured)` : ''}`,
    values,
  };
}

export function buildReport(scenario: Scenario, result: RunResult, target: string): Report {
  const expectations = scenario.expectations.map((e) => evaluate(e, result.minutes, scenario.minutes.length));
  return {
    scenario: result.scenario,
    minuteMs: result.minuteMs,
    rateScale: result.rateScale,
    target,
    startedAt: result.startedAt,
    finishedAt: result.finishedAt,
    stopped: result.stopped,
    ok: !result.stopped && expectations.every((e) => e.ok),
    minutes: result.minutes,
    expectations,
  };
}
