/**
 * The runner against local servers whose behaviour is known: rates must hold and
 * latency must be measured from each request's scheduled send time.
 */
import { once } from 'node:events';
import { createServer, type Server } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ScenarioRun } from '../src/runner/runner.js';
import { parseScenario } from '../src/runner/scenario.js';

let slow: Server;
let silent: Server;
let slowUrl: string;
let silentUrl: string;
const received = { slow: 0, silent: 0 };

async function listen(server: Server): Promise<string> {
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return `http://127.0.0.1:${(server.address() as { port: number }).port}`;
}

beforeAll(async () => {
  // Answers every request in exactly 2 s.
  slow = createServer((req, res) => {
    received.slow++;
    req.resume();
    setTimeout(() => res.writeHead(200, { 'content-type': 'application/json' }).end('{}'), 2_000);
  });
  // Accepts connections and never answers.
  silent = createServer((req) => {
    received.silent++;
    req.resume();
  });
  slowUrl = await listen(slow);
  silentUrl = await listen(silent);
});

afterAll(() => {
  for (const server of [slow, silent]) {
    server.closeAllConnections();
    server.close();
  }
});

const scenario = (minutes: number, demoRpm: number) =>
  parseScenario({
    name: 'accuracy',
    traffic: { baseline: { request: { path: '/browse' } }, demo: { request: { path: '/checkout', body: { n: '{{seq}}' } } } },
    minutes: Array.from({ length: minutes }, () => ({ rpm: { baseline: 60, demo: demoRpm } })),
  });

describe('open-model accuracy', () => {
  it('holds 70 requests/s against a 2 s server and measures p50 within 5% of 2 s', async () => {
    const result = await new ScenarioRun({ scenario: scenario(3, 70 * 60), target: slowUrl, minuteMs: 5_000, timeoutMs: 10_000 }).run();
    expect(result.minutes).toHaveLength(3);
    for (const minute of result.minutes) {
      const demo = minute.traffic.demo;
      expect(demo.targetRps).toBe(70);
      expect(demo.requests).toBe(350);
      expect(demo.errors).toBe(0);
      expect(Math.abs(demo.achievedRps / demo.targetRps - 1), `minute ${minute.minute} rate`).toBeLessThanOrEqual(0.03);
      expect(demo.p50Ms).toBeGreaterThanOrEqual(2_000);
      expect(demo.p50Ms / 2_000, `minute ${minute.minute} p50 ${demo.p50Ms}`).toBeLessThanOrEqual(1.05);
      expect(minute.traffic.baseline.requests).toBe(5);
    }
    // Open model: 140 requests were in flight at once, so none waited for an earlier answer.
    expect(received.slow).toBe(3 * (350 + 5));
  }, 60_000);

  it('holds the rate against a server that never answers and counts every request as a timeout', async () => {
    const result = await new ScenarioRun({ scenario: scenario(2, 30 * 60), target: silentUrl, minuteMs: 3_000, timeoutMs: 1_000 }).run();
    for (const minute of result.minutes) {
      const demo = minute.traffic.demo;
      expect(demo.requests).toBe(90);
      expect(demo.errorsByKind.timeout).toBe(90);
      expect(demo.errorRate).toBe(1);
      expect(Math.abs(demo.achievedRps / demo.targetRps - 1)).toBeLessThanOrEqual(0.03);
      expect(demo.p50Ms).toBeGreaterThanOrEqual(1_000);
      expect(demo.p50Ms).toBeLessThan(1_300);
    }
    expect(received.silent).toBe(2 * (90 + 3));
  }, 60_000);

  it('counts a refused connection as a connection error', async () => {
    const result = await new ScenarioRun({
      scenario: scenario(1, 600),
      target: 'http://127.0.0.1:1',
      minuteMs: 1_000,
      timeoutMs: 1_000,
    }).run();
    const demo = result.minutes[0]!.traffic.demo;
    expect(demo.requests).toBe(10);
    expect(demo.errorsByKind.connection).toBe(10);
  });

  it('stops early on abort: nothing more is sent, the minutes so far are reported', async () => {
    const abort = new AbortController();
    const run = new ScenarioRun({ scenario: scenario(5, 1200), target: slowUrl, minuteMs: 1_000, timeoutMs: 5_000, signal: abort.signal });
    setTimeout(() => abort.abort(), 1_500);
    const before = received.slow;
    const result = await run.run();
    expect(result.stopped).toBe(true);
    expect(result.minutes.length).toBe(2);
    const sent = result.minutes.reduce((sum, m) => sum + m.traffic.demo.requests + m.traffic.baseline.requests, 0);
    expect(received.slow - before).toBe(sent);
    expect(sent).toBeGreaterThan(20);
    expect(sent).toBeLessThan(35);
  }, 30_000);
});
