/** The runner as a service: idle baseline traffic and the control API of DESIGN.md. */
import { once } from 'node:events';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { type Started, startService } from '@bfl/kit';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { authorized, peerTrusted, refusal, service } from '../src/service/app.js';

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
  - { label: first, rpm: { baseline: 60, demo: 600 }, knobs: { checkout_write_delay_ms: 10 } }
  - { label: second, rpm: { baseline: 60, demo: 600 }, knobs: { checkout_write_delay_ms: 20 } }
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

const call = async (base: string, method: string, route: string, given?: unknown, token?: string) => {
  const headers: Record<string, string> = {};
  const body = method === 'GET' ? given : (given ?? {});
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

  it("holds baseline browsing until the frontend's /ready answers 200, and says so in its status", async () => {
    // A frontend that is up but whose services are still starting: /ready 503, then 200.
    let ready = false;
    const seen: string[] = [];
    const starting = createServer((req, res) => {
      req.resume();
      seen.push(req.url ?? '');
      const status = req.url === '/ready' && !ready ? 503 : 200;
      res.writeHead(status, { 'content-type': 'application/json' }).end('{}');
    });
    starting.listen(0, '127.0.0.1');
    await once(starting, 'listening');
    const url = `http://127.0.0.1:${(starting.address() as { port: number }).port}`;
    const waiting = await startService(service, { LOG_LEVEL: 'silent', FRONTEND_URL: url, BASELINE_RPM: '1200' });
    try {
      await new Promise((resolve) => setTimeout(resolve, 2_500));
      expect(seen.filter((u) => u === '/api/browse')).toEqual([]);
      expect(seen.filter((u) => u === '/ready').length).toBeGreaterThanOrEqual(2);
      expect((await call(waiting.url, 'GET', '/scenario/status')).body).toMatchObject({
        state: 'idle',
        baselineRpm: 0,
        waitingFor: `${url}/ready`,
      });
      ready = true;
      await new Promise((resolve) => setTimeout(resolve, 2_000));
      expect(seen.filter((u) => u === '/api/browse').length).toBeGreaterThanOrEqual(10);
      const status = (await call(waiting.url, 'GET', '/scenario/status')).body;
      expect(status).toMatchObject({ state: 'idle', baselineRpm: 1200 });
      expect(status.waitingFor).toBeUndefined();
    } finally {
      await waiting.close();
      starting.closeAllConnections();
      starting.close();
    }
  });

  it('runs a scenario on demand, shows its minute and knobs, refuses a second one, and stops it', async () => {
    const started = await call(lg.url, 'POST', '/scenario/start', { scenario: scenarioFile, minute: '1s' });
    expect(started.status).toBe(202);
    expect(started.body).toMatchObject({ state: 'running', scenario: 'short', minutes: 3 });
    expect((await call(lg.url, 'POST', '/scenario/start', { scenario: scenarioFile })).status).toBe(409);

    await new Promise((resolve) => setTimeout(resolve, 1_400));
    const status = await call(lg.url, 'GET', '/scenario/status');
    expect(status.body).toMatchObject({
      state: 'running',
      scenario: 'short',
      minute: 1,
      label: 'second',
      knobs: { checkout_write_delay_ms: 20 },
    });
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
        knobs: { checkout_write_delay_ms: 7 },
      };
      const put = await call(lg.url, 'PUT', '/scenario/knobs', state);
      expect(put.status).toBe(200);
      expect(put.body).toEqual({ published: true, stopRequested: false });
      expect(JSON.parse((await redis.get('lab:scenario')) ?? '{}')).toMatchObject({
        scenario: 'relay',
        minute: 2,
        knobs: { checkout_write_delay_ms: 7 },
      });
      expect((await call(lg.url, 'PUT', '/scenario/knobs', { ...state, knobs: { checkout_write_delay_ms: 'high' } })).status).toBe(422);
      // Out of its documented range, or unknown: 422 naming the knob (and its range), nothing published.
      const before = await redis.get('lab:scenario');
      const huge = await call(lg.url, 'PUT', '/scenario/knobs', { ...state, knobs: { recommendation_query_cost_ms: 1e9 } });
      expect(huge.status).toBe(422);
      expect(huge.body.error).toContain('knobs.recommendation_query_cost_ms: recommendation_query_cost_ms takes 0-1000 ms, got 1000000000');
      const unknown = await call(lg.url, 'PUT', '/scenario/knobs', { ...state, knobs: { drop_tables: 1 } });
      expect(unknown.status).toBe(422);
      expect(unknown.body.error).toContain('unknown knob drop_tables');
      expect(JSON.parse((await redis.get('lab:scenario')) ?? '{}').knobs).toEqual(JSON.parse(before ?? '{}').knobs);
      expect((await call(lg.url, 'DELETE', '/scenario/knobs')).status).toBe(200);
      expect(await redis.get('lab:scenario')).toBeNull();
    } finally {
      await redis.quit();
    }
  });
});

describe('one run at a time', () => {
  it('gives two concurrent starts one run and one 409, and the run stops', async () => {
    const replies = await Promise.all(
      Array.from({ length: 2 }, () => call(lg.url, 'POST', '/scenario/start', { scenario: scenarioFile, minute: '1s' })),
    );
    expect(replies.map((r) => r.status).sort()).toEqual([202, 409]);
    const stopped = await call(lg.url, 'POST', '/scenario/stop');
    expect(stopped.status).toBe(200);
    expect(stopped.body.state).toBe('finished');
  });
});

describe('the control API refuses what a web page or a stranger could send', () => {
  const raw = async (route: string, init: RequestInit) => {
    const response = await fetch(`${lg.url}${route}`, init);
    // biome-ignore lint/suspicious/noExplicitAny: JSON answers are checked field by field
    return { status: response.status, body: (await response.json()) as any };
  };

  it('takes state changes as JSON only: no body, a form or text/plain is 415, and nothing starts', async () => {
    for (const init of [
      { method: 'POST' },
      { method: 'POST', headers: { 'content-type': 'text/plain' }, body: '{}' },
      { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: 'scenario=black-friday' },
    ]) {
      const reply = await raw('/scenario/start', init);
      expect(reply.status, JSON.stringify(init)).toBe(415);
      expect(reply.body.error).toMatch(/content-type: application\/json/);
    }
    expect((await call(lg.url, 'GET', '/scenario/status')).body.state).not.toBe('running');
  });

  it('refuses a foreign Origin and a Host that is not its own (DNS rebinding); its own origin passes', async () => {
    const json = { 'content-type': 'application/json' };
    const foreign = await raw('/scenario/stop', { method: 'POST', headers: { ...json, origin: 'http://evil.example' }, body: '{}' });
    expect(foreign.status).toBe(403);
    expect(foreign.body.error).toMatch(/cross-origin request from "http:\/\/evil\.example" refused/);
    const own = await raw('/scenario/stop', { method: 'POST', headers: { ...json, origin: lg.url }, body: '{}' });
    expect(own.status).toBe(200);
    // fetch sets Host itself; the rule is checked directly (and over a raw socket below).
    expect(
      refusal({ host: 'rebound.example:8010', contentType: 'application/json', peer: '127.0.0.1' }, { trust: 'loopback' }),
    ).toMatchObject({
      status: 403,
    });
    const port = new URL(lg.url).port;
    const answer = await new Promise<string>((resolve, reject) => {
      const socket = connect(Number(port), '127.0.0.1', () =>
        socket.end(
          `POST /scenario/stop HTTP/1.1\r\nHost: rebound.example:${port}\r\ncontent-type: application/json\r\ncontent-length: 2\r\nconnection: close\r\n\r\n{}`,
        ),
      );
      let text = '';
      socket.on('data', (d) => (text += d));
      socket.on('end', () => resolve(text));
      socket.on('error', reject);
    });
    expect(answer).toMatch(/^HTTP\/1\.1 403/);
    expect(answer).toMatch(/is not this control API's/);
    for (const host of ['localhost:8010', '127.0.0.1', '[::1]:8010', 'load-generator:8010'])
      expect(refusal({ host, contentType: 'application/json', peer: '127.0.0.1' }, { trust: 'loopback' }), host).toBeUndefined();
  });

  it('without a token, takes state changes from trusted peers only (loopback; private networks when told)', () => {
    const ask = (peer: string, trust: 'loopback' | 'private', token?: string) =>
      refusal({ host: 'load-generator:8010', contentType: 'application/json', peer }, { trust, token })?.status;
    expect(ask('127.0.0.1', 'loopback')).toBeUndefined();
    expect(ask('::ffff:127.0.0.1', 'loopback')).toBeUndefined();
    expect(ask('::1', 'loopback')).toBeUndefined();
    expect(ask('10.42.0.7', 'loopback')).toBe(403); // another pod, through the ClusterIP
    expect(ask('172.18.0.1', 'private')).toBeUndefined(); // the host, through Compose's bridge
    expect(ask('192.0.2.10', 'private')).toBe(403); // anyone else
    expect(ask('10.42.0.7', 'loopback', 'a-configured-token')).toBeUndefined(); // the token was checked before
    expect(peerTrusted(undefined, 'private')).toBe(false);
  });

  it('compares the token in constant time, whatever its length', () => {
    expect(authorized(`Bearer ${TOKEN}`, TOKEN)).toBe(true);
    expect(authorized(TOKEN, TOKEN)).toBe(true);
    for (const wrong of [undefined, '', 'Bearer x', `Bearer ${TOKEN}x`, `Bearer ${TOKEN.slice(0, -1)}`])
      expect(authorized(wrong, TOKEN), String(wrong)).toBe(false);
  });
});
