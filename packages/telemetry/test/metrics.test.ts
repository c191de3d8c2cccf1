import { describe, expect, it } from 'vitest';
import { WaitingTime } from '../src/metrics.js';

describe('WaitingTime', () => {
  it('counts the time between readings by halves, one for each reading that found the condition true', () => {
    const readings = [
      [0, false],
      [50, true], // the queue formed somewhere in 0-50: half of it counts
      [100, true],
      [150, false],
      [1150, false], // a second without a queue adds nothing
    ] as const;
    let i = 0;
    const waiting = new WaitingTime(
      () => readings[i]![1],
      () => readings[i]![0],
    );
    const totals = readings.map(() => {
      const total = waiting.sample();
      i++;
      return total;
    });
    expect(totals).toEqual([0, 25, 75, 100, 100]);
  });

  it('a burst that drains in 0.2 s is 0.2 s of waiting, a pool that stays dry for a second is a second', () => {
    let at = 0;
    let queue = 0;
    const waiting = new WaitingTime(
      () => queue > 0,
      () => at,
    );
    waiting.sample();
    for (; at <= 1000; at += 50) {
      queue = at >= 400 && at < 600 ? 20 : 0;
      waiting.sample();
    }
    const burst = waiting.sample();
    for (; at <= 2000; at += 50) {
      queue = 2;
      waiting.sample();
    }
    expect(burst).toBe(200);
    expect(waiting.sample() - burst).toBe(1000);
  });
});
