/** The runner as a service: idle baseline traffic and the control API of DESIGN.md. */
import { once } from 'node:events';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { type Started, startService } from '@bfl/kit';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { service } from '../src/app.js';

let frontend: Server;
let frontendUrl: string;
const hits: Record<string, number> = {};
let lg: Started;
let secured: Started;
const TOKEN = 'test-control-token';
const scenarioFile = path.join(mkdtempSync(path.join(tmpdir(), 'lg-')), 'short.yaml');

beforeAll(async () => {
  frontend = createServer((req, res) => {
    req.resume();
    hits[req.url ?? ''] = (hits[req.url ?? ''] ?? 0) + 1;
    res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
  });
  frontend.listen(0, '127.0.0.1');
  await once(frontend, 'listening');
  frontendUrl = `http://127.0.0.1:${(frontend.address() as { port: number }).port}`;
  writeFileSync(
    scenarioFile,
    `name: short
traffic:
  baseline: { request: { path: /api/browse } }
  demo: { request: { path: /api/checkout } }
minutes:
  - { label: first, rpm: { baseline: 60, demo: 600 }, knobs: { cost_ms: 10 } }
  - { label: second, rpm: { baseline: 60, demo: 600 }, knobs: { cost_ms: 20 } }
  - { label: third, rpm: { baseline: 60, demo: 600 } }
`,
  );
  const quiet = { LOG_LEVEL: 'silent', FRONTEND_URL: frontendUrl };
  lg = await startService(service, { ...quiet, BASELINE_RPM: '1200' });
  secured = await startService(service, { ...quiet, BASELINE_RPM: '0', LAB_CONTROL_TOKEN: TOKEN });
});

afterAll(async () => {
  await lg?.close();
  await secured?.close();
  frontend.closeAllConnections();
  frontend.close();
});

const call = async (base: string, method: string, route: string, body?: unknown, token?: string) => {
  const headers: Record<string, string> = {};
  if (body !== undefined) headers['content-type'] = 'application/json';
  if (token) headers.authorization = `Bearer ${token}`;
  const response = await fetch(`${base}${route}`, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  // biome-ignore lint/suspicious/noExplicitAny: JSON answers are checked field by field
  return { status: response.status, body: (await response.json()) as any };
};

describe('load-generator service', () => {
  it('answers /health and /ready', async () => {
    expect((await call(lg.url, 'GET', '/health')).status).toBe(200);
    expect((await call(lg.url, 'GET', '/ready')).body).toMatchObject({ status: 'ready', checks: { frontend: 'ok' } });
  });

  it('sends baseline browsing while no scenario runs', async () => {
    const before = hits['/api/browse'] ?? 0;
    await new Promise((resolve) => setTimeout(resolve, 1_000));
    expect((hits['/api/browse'] ?? 0) - before).toBeGreaterThanOrEqual(15);
    expect((await call(lg.url, 'GET', '/scenario/status')).body).toMatchObject({ state: 'idle', baselineRpm: 1200 });
  });

  it('runs a scenario on demand, shows its minute and knobs, refuses a second one, and stops it', async () => {
    const started = await call(lg.url, 'POST', '/scenario/start', { scenario: scenarioFile, minute: '1s' });
    expect(started.status).toBe(202);
    expect(started.body).toMatchObject({ state: 'running', scenario: 'short', minutes: 3 });
    expect((await call(lg.url, 'POST', '/scenario/start', { scenario: scenarioFile })).status).toBe(409);

    await new Promise((resolve) => setTimeout(resolve, 1_400));
    const status = await call(lg.url, 'GET', '/scenario/status');
    expect(status.body).toMatchObject({ state: 'running', scenario: 'short', minute: 1, label: 'second', knobs: { cost_ms: 20 } });
    expect(status.body.rows[0]).toMatchObject({ minute: 0, traffic: { demo: { requests: 10 } } });

    const stopped = await call(lg.url, 'POST', '/scenario/stop');
    expect(stopped.status).toBe(200);
    expect(stopped.body.state).toBe('finished');
    expect(stopped.body.lastReport).toMatchObject({ scenario: 'short', stopped: true, ok: false });
    const checkouts = hits['/api/checkout'];
    await new Promise((resolve) => setTimeout(resolve, 500));
    expect(hits['/api/checkout']).toBe(checkouts);
  });

  it('rejects bad start requests with 4xx', async () => {
    expect((await call(lg.url, 'POST', '/scenario/start', { minute: 'soon' })).status).toBe(422);
    expect((await call(lg.url, 'POST', '/scenario/start', { rateScale: -1 })).status).toBe(422);
    const missing = await call(lg.url, 'POST', '/scenario/start', { scenario: 'no-such' });
    expect(missing.status).toBe(422);
    expect(missing.body.error).toMatch(/not found/);
  });

  it('wants the bearer token when LAB_CONTROL_TOKEN is set', async () => {
    expect((await call(secured.url, 'GET', '/scenario/status')).status).toBe(401);
    expect((await call(secured.url, 'GET', '/scenario/status', undefined, 'wrong-token-value')).status).toBe(401);
    expect((await call(secured.url, 'GET', '/scenario/status', undefined, TOKEN)).status).toBe(200);
    expect((await call(secured.url, 'GET', '/health')).status).toBe(200);
  });

  it('relays the knobs of a runner outside the lab into Redis (PUT/DELETE /scenario/knobs)', async () => {
    const redis = new Redis(process.env.REDIS_URL ?? 'redis://localhost:6379');
    try {
      const state = {
        scenario: 'relay',
        startedAt: new Date().toISOString(),
        minuteMs: 5000,
        minute: 2,
        label: 'two',
        knobs: { cost_ms: 7 },
      };
      const put = await call(lg.url, 'PUT', '/scenario/knobs', state);
      expect(put.status).toBe(200);
      expect(put.body).toEqual({ published: true, stopRequested: false });
      expect(JSON.parse((await redis.get('lab:scenario')) ?? '{}')).toMatchObject({ scenario: 'relay', minute: 2, knobs: { cost_ms: 7 } });
      expect((await call(lg.url, 'PUT', '/scenario/knobs', { ...state, knobs: { cost_ms: 'high' } })).status).toBe(422);
      expect((await call(lg.url, 'DELETE', '/scenario/knobs')).status).toBe(200);
      expect(await redis.get('lab:scenario')).toBeNull();
    } finally {
      await redis.quit();
    }
  });
});
