/** The runner goes on when its callbacks fail: a knob publication is retried, a row callback skipped. */
import { once } from 'node:events';
import { createServer, type Server } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ScenarioRun } from '../src/runner/runner.js';
import { parseScenario } from '../src/runner/scenario.js';

let server: Server;
let url: string;
beforeAll(async () => {
  server = createServer((req, res) => {
    req.resume();
    res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  url = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
});
afterAll(() => {
  server.closeAllConnections();
  server.close();
});

const scenario = parseScenario({
  name: 'callbacks',
  traffic: { baseline: { request: { path: '/browse' } }, demo: { request: { path: '/checkout' } } },
  minutes: [0, 1, 2].map((m) => ({ rpm: { baseline: 600, demo: 600 }, knobs: { checkout_write_delay_ms: 10 * (m + 1) } })),
});

describe('runner callbacks', () => {
  it('reports a failing knob publication, retries it while its minute lasts, and sends the minute anyway', async () => {
    const attempts: number[] = [];
    const failures: string[] = [];
    const result = await new ScenarioRun({
      scenario,
      target: url,
      minuteMs: 1_000,
      // Redis hiccups for minute 1's first two attempts.
      onMinuteStart: (minute) => {
        attempts.push(minute);
        if (minute === 1 && attempts.filter((m) => m === 1).length <= 2) throw new Error('Connection is closed.');
      },
      onCallbackError: (what, error, minute) => failures.push(`${what} ${minute} ${(error as Error).message}`),
    }).run();
    expect(result.minutes).toHaveLength(3);
    expect(result.stopped).toBe(false);
    expect(failures).toEqual(['onMinuteStart 1 Connection is closed.']);
    expect(attempts.filter((m) => m === 1)).toHaveLength(3);
    for (const row of result.minutes) expect(row.traffic.demo.requests, `minute ${row.minute}`).toBeGreaterThan(5);
  });

  it('skips a throwing row callback: every minute is still reported, no unhandled rejection', async () => {
    const unhandled: unknown[] = [];
    const onUnhandled = (reason: unknown) => unhandled.push(reason);
    process.on('unhandledRejection', onUnhandled);
    const failures: string[] = [];
    try {
      const result = await new ScenarioRun({
        scenario,
        target: url,
        minuteMs: 500,
        onMinute: (row) => {
          if (row.minute === 0) throw new Error('a dashboard hook broke');
        },
        onCallbackError: (what, _error, minute) => failures.push(`${what} ${minute}`),
      }).run();
      expect(result.minutes.map((m) => m.minute)).toEqual([0, 1, 2]);
      expect(failures).toEqual(['onMinute 0']);
      await new Promise((resolve) => setTimeout(resolve, 50));
      expect(unhandled).toEqual([]);
    } finally {
      process.off('unhandledRejection', onUnhandled);
    }
  });
});
