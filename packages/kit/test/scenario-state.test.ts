/** The knobs' path through a real Redis: publish, read, expire, stop. */
import { setTimeout as sleep } from 'node:timers/promises';
import { Redis } from 'ioredis';
import pino from 'pino';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import {
  readScenarioState,
  requestStop,
  SCENARIO_KEY,
  ScenarioStatePublisher,
  ScenarioStateReader,
  STOP_KEY,
} from '../src/scenario-state.js';

const redis = new Redis(process.env.REDIS_URL ?? 'redis://localhost:6379');
const logger = pino({ level: 'silent' });
const state = {
  scenario: 'test',
  startedAt: new Date().toISOString(),
  minuteMs: 5_000,
  minute: 3,
  label: 'three',
  knobs: { recommendation_query_cost_ms: 120 },
};

afterEach(async () => {
  await redis.del(SCENARIO_KEY, STOP_KEY);
});
afterAll(() => redis.quit());

describe('scenario state in Redis', () => {
  it('is read by every service, with healthy defaults when absent', async () => {
    const reader = new ScenarioStateReader(redis, logger);
    await reader.refresh();
    expect(reader.knob('recommendation_query_cost_ms', 0)).toBe(0);
    const publisher = new ScenarioStatePublisher(redis, 3_000);
    await publisher.publish(state);
    await reader.refresh();
    expect(reader.knob('recommendation_query_cost_ms', 0)).toBe(120);
    expect(reader.knob('other', 7)).toBe(7);
    expect(reader.current).toMatchObject({ scenario: 'test', minute: 3 });
    expect(await redis.pttl(SCENARIO_KEY)).toBeGreaterThan(2_000);
    await publisher.clear();
    await reader.refresh();
    expect(reader.knob('recommendation_query_cost_ms', 0)).toBe(0);
  });

  it('is ignored, with one log line, when a knob is unknown or out of its range', async () => {
    const lines: string[] = [];
    const recorder = pino({ level: 'warn' }, { write: (line: string) => lines.push(line) });
    const reader = new ScenarioStateReader(redis, recorder);
    for (const knobs of [{ recommendation_query_cost_ms: 1e9 }, { recommendation_query_cost_ms: -1 }, { rm_rf: 1 }]) {
      lines.length = 0;
      await redis.set(SCENARIO_KEY, JSON.stringify({ ...state, knobs }), 'PX', 3_000);
      await reader.refresh();
      await reader.refresh();
      expect(reader.knob('recommendation_query_cost_ms', 0), JSON.stringify(knobs)).toBe(0);
      expect(reader.current).toBeUndefined();
      expect(lines, JSON.stringify(knobs)).toHaveLength(1);
      expect(lines[0]).toMatch(/scenario state ignored: (recommendation_query_cost_ms takes 0-1000 ms|unknown knob rm_rf)/);
    }
    // A valid state is taken again at once.
    await redis.set(SCENARIO_KEY, JSON.stringify(state), 'PX', 3_000);
    await reader.refresh();
    expect(reader.knob('recommendation_query_cost_ms', 0)).toBe(120);
  });

  it('expires by itself when the runner stops refreshing it (a crashed runner)', async () => {
    const publisher = new ScenarioStatePublisher(redis, 400);
    await publisher.publish(state);
    // The runner dies: no more refreshes, no clear().
    (publisher as unknown as { timer: NodeJS.Timeout }).timer && clearInterval((publisher as unknown as { timer: NodeJS.Timeout }).timer);
    expect(await readScenarioState(redis)).toBeDefined();
    await sleep(600);
    expect(await readScenarioState(redis)).toBeUndefined();
  });

  it('keeps being refreshed while the run lasts', async () => {
    const publisher = new ScenarioStatePublisher(redis, 400);
    await publisher.publish(state);
    await sleep(900);
    expect(await readScenarioState(redis)).toMatchObject({ minute: 3 });
    await publisher.clear();
  });

  it('stops the publishing runner on request and resets the knobs at once', async () => {
    let stopped = 0;
    const publisher = new ScenarioStatePublisher(redis, 900, () => stopped++);
    await publisher.publish(state);
    publisher.addRow({ minute: 2 });
    await sleep(400);
    expect((await readScenarioState(redis))?.rows).toEqual([{ minute: 2 }]);
    const was = await requestStop(redis);
    expect(was).toMatchObject({ scenario: 'test' });
    expect(await readScenarioState(redis)).toBeUndefined();
    await sleep(500);
    expect(stopped).toBe(1);
    expect(await readScenarioState(redis)).toBeUndefined();
  });

  it('a new run is not stopped by an old stop request', async () => {
    await redis.set(STOP_KEY, '1', 'PX', 10_000);
    let stopped = 0;
    const publisher = new ScenarioStatePublisher(redis, 900, () => stopped++);
    await publisher.publish(state);
    await sleep(400);
    expect(stopped).toBe(0);
    await publisher.clear();
  });
});
