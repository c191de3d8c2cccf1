/**
 * Runner accuracy next to plain autocannon: both aimed at the same rate against a local
 * server that answers in exactly `delayMs`. Used by `npm run bench` and its tests.
 */
import { once } from 'node:events';
import { createServer } from 'node:http';
import { ScenarioRun } from '@bfl/load-generator/runner';
import { parseScenario } from '@bfl/load-generator/scenario';
import autocannon from 'autocannon';

export interface AccuracyResult {
  rate: number;
  durationS: number;
  truthMs: number;
  runner: { achievedRps: number; p50Ms: number; achievedOverTarget: number; p50OverTruth: number };
  autocannon: { achievedRps: number; p50Ms: number; achievedOverTarget: number; p50OverTruth: number; connections: number };
}

const round = (v: number, d = 3) => Number(v.toFixed(d));

/** Runs both, one after the other, against one fixed-latency server. */
export async function compareAccuracy(rate = 70, durationS = 30, delayMs = 2_000): Promise<AccuracyResult> {
  const server = createServer((req, res) => {
    req.resume();
    setTimeout(() => res.writeHead(200, { 'content-type': 'application/json' }).end('{}'), delayMs);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const target = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
  try {
    const scenario = parseScenario({
      name: 'accuracy',
      traffic: { baseline: { request: { path: '/' } }, demo: { request: { path: '/' } } },
      minutes: [{ rpm: { baseline: 0, demo: rate * 60 } }],
    });
    const result = await new ScenarioRun({ scenario, target, minuteMs: durationS * 1000, timeoutMs: delayMs * 5 }).run();
    const demo = result.minutes[0]!.traffic.demo;

    // Plain autocannon in its rate mode: one connection per request per second of latency
    // would be needed; it caps connections at the rate and waits for each answer.
    const connections = rate;
    const plain = await autocannon({
      url: target,
      method: 'POST',
      connections,
      overallRate: rate,
      duration: durationS,
      timeout: (delayMs * 5) / 1000,
    });
    const plainRps = plain.requests.total / durationS;
    return {
      rate,
      durationS,
      truthMs: delayMs,
      runner: {
        achievedRps: round(demo.requests / durationS, 2),
        p50Ms: demo.p50Ms,
        achievedOverTarget: round(demo.requests / durationS / rate),
        p50OverTruth: round(demo.p50Ms / delayMs),
      },
      autocannon: {
        achievedRps: round(plainRps, 2),
        p50Ms: plain.latency.p50,
        achievedOverTarget: round(plainRps / rate),
        p50OverTruth: round(plain.latency.p50 / delayMs),
        connections,
      },
    };
  } finally {
    server.closeAllConnections();
    server.close();
  }
}
