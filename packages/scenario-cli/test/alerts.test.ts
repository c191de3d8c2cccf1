import { describe, expect, it } from 'vitest';
import { judgeAlert, type Reading } from '../src/cli/alerts.js';

/** Readings twice a demo minute-tenth: `states` is one letter per reading (i inactive, p pending, f firing). */
function readings(states: string, perMinute = 10): Reading[] {
  const name = { i: 'inactive', p: 'pending', f: 'firing' } as const;
  return [...states].map((letter, i) => ({
    at: i / perMinute,
    minute: Math.floor(i / perMinute),
    states: new Map([['A', name[letter as keyof typeof name]]]),
  }));
}
const expectAlert = { name: 'A', firingBy: 2, resolvedBy: 4 };

describe('judging an alert from its readings', () => {
  it('fires by its minute and stays inactive from its resolved minute: ok', () => {
    const result = judgeAlert(expectAlert, readings(`${'i'.repeat(10)}${'p'.repeat(5)}${'f'.repeat(15)}${'i'.repeat(20)}`), 1);
    expect(result).toMatchObject({ firstFiringMinute: 1, resolvedMinute: 3, firing: [{ from: 1.5, to: 2.9 }], ok: true });
  });

  it('still firing when the run ends: names the last reading', () => {
    const result = judgeAlert(expectAlert, readings(`${'i'.repeat(15)}${'f'.repeat(35)}`), 1);
    expect(result.resolvedMinute).toBeNull();
    expect(result.problems).toEqual(['still firing at the end of the run (last read at 4.90) (expected resolved by minute 4)']);
  });

  it('pending again after it stopped firing is not resolved, and says so rather than "still firing"', () => {
    const result = judgeAlert(
      expectAlert,
      readings(`${'i'.repeat(15)}${'f'.repeat(15)}${'i'.repeat(10)}${'p'.repeat(5)}${'i'.repeat(5)}`),
      1,
    );
    expect(result.resolvedMinute).toBeNull();
    expect(result.ok).toBe(false);
    expect(result.problems).toEqual(['stopped firing at 3.00 but was pending again from 4.00 to 4.40 (expected resolved by minute 4)']);
  });

  it('firing twice, late, or before any demo error each fail', () => {
    expect(judgeAlert(expectAlert, readings(`${'i'.repeat(15)}ff${'i'.repeat(5)}ff${'i'.repeat(20)}`), 1).problems).toContain(
      'fired again after resolving (2 separate times)',
    );
    expect(judgeAlert(expectAlert, readings(`${'i'.repeat(30)}f${'i'.repeat(10)}`), 1).problems).toContain(
      'fired first in minute 3, after minute 2',
    );
    expect(judgeAlert(expectAlert, readings(`i${'f'.repeat(5)}${'i'.repeat(40)}`), 1).problems).toContain(
      'fired in minute 0, before any demo request failed (first in minute 1)',
    );
  });

  it('an alert that must never fire fails when it fires', () => {
    const never = { name: 'A', firingBy: null, resolvedBy: null };
    expect(judgeAlert(never, readings('iiiii'), 1).ok).toBe(true);
    expect(judgeAlert(never, readings('iifii'), 1).problems).toEqual(['must never fire, but fired in minute 0']);
  });
});
