import { describe, expect, it } from 'vitest';
import { LatencyModel, parseProfiles, sampleDelay } from '../src/latency.js';

/** A small deterministic PRNG (mulberry32) so the distribution test is repeatable. */
function mulberry32(seed: number): () => number {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const quantile = (sorted: number[], q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] as number;

describe('latency model', () => {
  it('draws delays whose median and p95 match the profile', () => {
    const random = mulberry32(42);
    const samples = Array.from({ length: 50_000 }, () => sampleDelay({ medianMs: 80, p95Ms: 200 }, random)).sort((a, b) => a - b);
    expect(quantile(samples, 0.5)).toBeGreaterThan(80 * 0.96);
    expect(quantile(samples, 0.5)).toBeLessThan(80 * 1.04);
    expect(quantile(samples, 0.95)).toBeGreaterThan(200 * 0.95);
    expect(quantile(samples, 0.95)).toBeLessThan(200 * 1.05);
    expect(samples[0]).toBeGreaterThan(0);
  });

  it('is a constant when p95 equals the median, and zero for a zero median', () => {
    expect(sampleDelay({ medianMs: 50, p95Ms: 50 })).toBeCloseTo(50, 6);
    expect(sampleDelay({ medianMs: 0, p95Ms: 10 })).toBe(0);
  });

  it('parses overrides and rejects malformed ones', () => {
    expect(parseProfiles('a=1/2,b.c=3/4')).toEqual({ a: { medianMs: 1, p95Ms: 2 }, 'b.c': { medianMs: 3, p95Ms: 4 } });
    expect(parseProfiles('')).toEqual({});
    expect(() => parseProfiles('a=1')).toThrow(/bad latency profile "a=1"/);
  });

  it('sleeps for the sampled time, scaled, and not at all with scale 0', async () => {
    const model = new LatencyModel({ step: { medianMs: 60, p95Ms: 60 } }, { LATENCY_SCALE: 1 });
    let started = performance.now();
    await model.work('step');
    expect(performance.now() - started).toBeGreaterThanOrEqual(55);

    const off = new LatencyModel({ step: { medianMs: 500, p95Ms: 500 } }, { LATENCY_SCALE: 0 });
    started = performance.now();
    await off.work('step');
    await off.work('unknown-step');
    expect(performance.now() - started).toBeLessThan(50);
  });

  it('lets overrides replace defaults', () => {
    const model = new LatencyModel({ step: { medianMs: 60, p95Ms: 90 } }, { LATENCY_PROFILES: { step: { medianMs: 1, p95Ms: 2 } } });
    expect(model.profile('step')).toEqual({ medianMs: 1, p95Ms: 2 });
  });
});
