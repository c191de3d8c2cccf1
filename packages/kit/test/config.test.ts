import { describe, expect, it } from 'vitest';
import { scaledPoolEnv } from '../../contract/src/services.js';
import { ConfigError, commonEnv, env, loadConfig } from '../src/config.js';

describe('loadConfig', () => {
  const shape = { PORT: env.port(8012), DATABASE_URL: env.url('postgres://localhost/lab'), ...commonEnv };

  it('applies defaults when variables are unset or empty', () => {
    const config = loadConfig(shape, { PORT: '' });
    expect(config.PORT).toBe(8012);
    expect(config.DATABASE_URL).toBe('postgres://localhost/lab');
    expect(config.LOG_LEVEL).toBe('info');
    expect(config.LATENCY_SCALE).toBe(1);
    expect(config.LATENCY_PROFILES).toEqual({});
  });

  it('parses values from strings', () => {
    const config = loadConfig(shape, { PORT: '9000', LATENCY_SCALE: '0.5', LATENCY_PROFILES: 'convert=10/30, x=1.5/2' });
    expect(config.PORT).toBe(9000);
    expect(config.LATENCY_SCALE).toBe(0.5);
    expect(config.LATENCY_PROFILES).toEqual({ convert: { medianMs: 10, p95Ms: 30 }, x: { medianMs: 1.5, p95Ms: 2 } });
  });

  it('names every bad variable and what was wrong', () => {
    let error: unknown;
    try {
      loadConfig(shape, { PORT: 'abc', DATABASE_URL: 'not a url', LOG_LEVEL: 'loud', LATENCY_PROFILES: 'convert=fast' });
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(ConfigError);
    const message = (error as Error).message;
    expect(message).toMatch(/^invalid configuration: /);
    for (const name of ['PORT="abc"', 'DATABASE_URL="not a url"', 'LOG_LEVEL="loud"', 'LATENCY_PROFILES="convert=fast"']) {
      expect(message).toContain(name);
    }
    expect(message).toContain('expected name=median/p95');
  });

  it('rejects a port out of range', () => {
    expect(() => loadConfig(shape, { PORT: '70000' })).toThrow(/PORT="70000"/);
  });
});

describe('scaledPoolEnv (npm run lab -- --scale)', () => {
  it('sizes the story pools with the scale and keeps them whole', () => {
    expect(scaledPoolEnv(1)).toEqual({ CHECKOUT_POOL_MAX: '4', RECOMMENDATION_POOL_MAX: '4' });
    expect(scaledPoolEnv(0.5)).toEqual({ CHECKOUT_POOL_MAX: '2', RECOMMENDATION_POOL_MAX: '2' });
    expect(scaledPoolEnv(0.25)).toEqual({ CHECKOUT_POOL_MAX: '1', RECOMMENDATION_POOL_MAX: '1' });
    for (const bad of [0, 0.3, 1.5, -0.5, Number.NaN]) expect(() => scaledPoolEnv(bad), String(bad)).toThrow(/0\.25, 0\.5, 0\.75 or 1/);
  });
});
