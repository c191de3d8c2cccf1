import { describe, expect, it } from 'vitest';
import { evaluate } from '../src/report/report.js';
import { arrivals, renderBody } from '../src/runner/runner.js';
import { knobsOf, loadScenario, parseScenario, ScenarioError, selectMinutes, targetRps } from '../src/runner/scenario.js';

const base = () => ({
  name: 'tiny',
  traffic: { baseline: { request: { path: '/api/browse' } }, demo: { request: { path: '/api/checkout' } } },
  minutes: [{ rpm: { baseline: 60, demo: 120 } }],
});

describe('scenario files', () => {
  it('loads the default black-friday scenario as the issue describes it', () => {
    const scenario = loadScenario('black-friday');
    const ramp = scenario.minutes.filter((m) => m.phase === 'ramp');
    expect(scenario.minutes.length).toBeLessThanOrEqual(15);
    expect(ramp.length).toBeGreaterThanOrEqual(10);
    expect(ramp[0]?.rpm.demo).toBe(800);
    expect(ramp.at(-1)?.rpm.demo).toBe(4200);
    for (const minute of scenario.minutes) expect(minute.rpm.baseline).toBe(100);
    expect(scenario.traffic.baseline.request).toMatchObject({ method: 'POST', path: '/api/browse' });
    expect(scenario.traffic.demo.request).toMatchObject({ method: 'POST', path: '/api/checkout' });
    expect(knobsOf(scenario, 0)).toEqual(scenario.defaults.knobs);
  });

  it.each([
    [(s: ReturnType<typeof base>) => Object.assign(s, { name: 'Bad Name' }), /tiny|name: /],
    [(s: ReturnType<typeof base>) => Object.assign(s, { minutes: [] }), /minutes: a scenario needs at least one minute/],
    [(s: ReturnType<typeof base>) => Object.assign(s, { minutes: [{ rpm: { baseline: 'fast', demo: 1 } }] }), /minutes\.0\.rpm\.baseline/],
    [(s: ReturnType<typeof base>) => Object.assign(s, { minutes: [{ rpm: { baseline: -1, demo: 1 } }] }), /minutes\.0\.rpm\.baseline/],
    [
      (s: ReturnType<typeof base>) => Object.assign(s, { traffic: { baseline: { request: { path: 'api' } }, demo: s.traffic.demo } }),
      /traffic\.baseline\.request\.path/,
    ],
    [
      (s: ReturnType<typeof base>) =>
        Object.assign(s, { expectations: [{ kind: 'range', name: 'x', class: 'demo', metric: 'errorRate' }] }),
      /expectations\.0: a range expectation needs min or max/,
    ],
    [
      (s: ReturnType<typeof base>) =>
        Object.assign(s, { expectations: [{ kind: 'range', name: 'x', class: 'demo', metric: 'errorRate', max: 1, minutes: 5 }] }),
      /expectations\.0\.minutes: minute 5 is outside 0\.\.0/,
    ],
    [
      (s: ReturnType<typeof base>) =>
        Object.assign(s, { expectations: [{ kind: 'range', name: 'x', class: 'vip', metric: 'errorRate', max: 1 }] }),
      /expectations\.0\.class/,
    ],
  ])('names the bad field (%#)', (mutate, message) => {
    const scenario = mutate(base());
    expect(() => parseScenario(scenario, 'tiny.yaml')).toThrow(ScenarioError);
    expect(() => parseScenario(scenario, 'tiny.yaml')).toThrow(message);
  });

  it('reports a missing file and bad YAML clearly', () => {
    expect(() => loadScenario('no-such-scenario')).toThrow(/scenario "no-such-scenario" not found/);
    expect(() => loadScenario(`${__dirname}/scenario.test.ts.yaml`)).toThrow(/not found/);
  });

  it('selects minutes', () => {
    expect(selectMinutes('all', 4)).toEqual([0, 1, 2, 3]);
    expect(selectMinutes('last', 4)).toEqual([3]);
    expect(selectMinutes('last-1', 4)).toEqual([2]);
    expect(selectMinutes('1..last-1', 5)).toEqual([1, 2, 3]);
    expect(selectMinutes([0, 2], 3)).toEqual([0, 2]);
    expect(() => selectMinutes('3..1', 5)).toThrow(/backwards/);
  });

  it('scales rates per second', () => {
    const minute = parseScenario(base()).minutes[0]!;
    expect(targetRps(minute, 'demo')).toBe(2);
    expect(targetRps(minute, 'baseline', 0.5)).toBe(0.5);
  });
});

describe('arrivals', () => {
  it('spaces requests evenly at the target rate and carries the phase across minutes', () => {
    const first = arrivals(0, 1000, 4, 0.5);
    expect(first.times).toEqual([125, 375, 625, 875]);
    const second = arrivals(1000, 1000, 4, first.phase);
    expect(second.times[0]).toBeCloseTo(1125, 6);
    // 1.5 rps over 1 s minutes: 1 or 2 per minute, 3 every 2 s.
    let phase = 0.5;
    let total = 0;
    for (let m = 0; m < 10; m++) {
      const next = arrivals(m * 1000, 1000, 1.5, phase);
      phase = next.phase;
      total += next.times.length;
    }
    expect(total).toBe(15);
    expect(arrivals(0, 1000, 0, 0.5).times).toEqual([]);
  });
});

describe('request bodies', () => {
  it('fills placeholders', () => {
    const body = renderBody({ user: 'u-{{seq}}', cart: '{{uuid}}', category: '{{pick:a,b}}', n: 3, list: ['{{seq}}'] }, 7) as Record<
      string,
      unknown
    >;
    expect(body.user).toBe('u-7');
    expect(body.cart).toMatch(/^[0-9a-f-]{36}$/);
    expect(['a', 'b']).toContain(body.category);
    expect(body.n).toBe(3);
    expect(body.list).toEqual(['7']);
  });
});

describe('expectations', () => {
  const row = (errorRate: number, p95Ms = 300) => ({
    targetRps: 10,
    achievedRps: 10,
    requests: 100,
    errors: Math.round(errorRate * 100),
    errorRate,
    errorsByKind: { http4xx: 0, http5xx: 0, timeout: 0, connection: 0 },
    errorsByReason: {},
    errorsByService: {},
    p50Ms: 100,
    p95Ms,
    p99Ms: p95Ms,
    maxMs: p95Ms,
    sendLagP99Ms: 1,
  });
  const minutes = [0.0, 0.1, 0.08, 0.5].map((e, minute) => ({
    minute,
    label: '',
    phase: 'ramp' as const,
    knobs: {},
    traffic: { baseline: row(0), demo: row(e, 1000 * (minute + 1)) },
  }));

  it('checks ranges and reports the worst minute', () => {
    const result = evaluate(
      { kind: 'range', name: 'demo errors', class: 'demo', metric: 'errorRate', minutes: 'all', max: 0.2 },
      minutes,
      4,
    );
    expect(result).toMatchObject({ ok: false, actual: 0.5, minute: 3 });
    const pass = evaluate({ kind: 'range', name: 'p95', class: 'demo', metric: 'p95Ms', minutes: '0..1', min: 500, max: 2500 }, minutes, 4);
    expect(pass).toMatchObject({ ok: true, actual: 2000, minute: 1 });
  });

  it('checks a rising trend with a tolerance', () => {
    const strict = evaluate({ kind: 'rising', name: 'r', class: 'demo', metric: 'errorRate', minutes: 'all', tolerance: 0.01 }, minutes, 4);
    expect(strict).toMatchObject({ ok: false, actual: 0.02, minute: 2 });
    const loose = evaluate({ kind: 'rising', name: 'r', class: 'demo', metric: 'errorRate', minutes: 'all', tolerance: 0.03 }, minutes, 4);
    expect(loose.ok).toBe(true);
  });

  it('fails when a selected minute was never measured', () => {
    const result = evaluate(
      { kind: 'range', name: 'x', class: 'demo', metric: 'errorRate', minutes: 'all', max: 1 },
      minutes.slice(0, 2),
      4,
    );
    expect(result.ok).toBe(false);
    expect(result.expected).toMatch(/2 minute\(s\) not measured/);
  });
});
