/**
 * Faults the lab survives, each against the real lab processes (@bfl/lab's startLab,
 * the compiled services) on the real PostgreSQL and Redis that `npm run deps` runs:
 *
 *  a. PostgreSQL stopped for 10 s under browse and checkout traffic
 *  b. Redis stopped for 10 s (cart, and the knobs reader)
 *  c. cart killed with SIGKILL as demo minute 2 of a short scenario starts: the lab
 *     restarts it, the report attributes the errors to cart, later minutes are healthy
 *  d. orders retried with one Idempotency-Key while PostgreSQL restarts: none lost, none twice
 *
 * Each prints its figures on lines starting `fault:`. Whatever a test stops it starts
 * again in a `finally` (scripts/deps.sh, which starts PostgreSQL and Redis as `npm run
 * deps` does): the other test files share both.
 */
import { execFile, spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createConnection } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import { SERVICE_PORTS, type ServiceName, SHOP_SERVICES } from '@bfl/contract';
import { type Lab, type LabExit, startLab } from '@bfl/lab';
import { Redis } from 'ioredis';
import knex from 'knex';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ReportSchema } from '../services/load-generator/src/report/schema.js';

const run = promisify(execFile);
const root = path.resolve(__dirname, '..');
const DATABASE_URL = process.env.DATABASE_URL ?? 'postgres://lab:lab@localhost:5432/lab';
const REDIS_URL = process.env.REDIS_URL ?? 'redis://localhost:6379';
const PG_PORT = Number(new URL(DATABASE_URL).port || 5432);
const REDIS_HOST = new URL(REDIS_URL).hostname || 'localhost';
const REDIS_PORT = Number(new URL(REDIS_URL).port || 6379);
/**
 * The lab here uses its own Redis database (same server, so stopping it is the fault):
 * its carts and its lab:scenario key stay apart from a scenario someone runs on another lab.
 */
const LAB_REDIS_URL = (() => {
  const u = new URL(REDIS_URL);
  u.pathname = '/9';
  return u.toString();
})();
// 21011..21019: beside a lab on DESIGN.md's ports and lab.test.ts's (20011..).
const OFFSET = 13_000;
const ports = Object.fromEntries(SHOP_SERVICES.map((name) => [name, SERVICE_PORTS[name] + OFFSET])) as Record<ServiceName, number>;
const url = (service: ServiceName) => `http://localhost:${ports[service]}`;

const quietLog = { warn: () => undefined, error: () => undefined, deprecate: () => undefined, debug: () => undefined };
// The test's own connection breaks with the server it stops: knex need not say so.
const db = knex({ client: 'pg', connection: DATABASE_URL, pool: { min: 0, max: 2 }, log: quietLog });
let lab: Lab;
const exits: LabExit[] = [];
const logs: string[] = [];
const labLines: string[] = [];

const LOG_FILE = path.join(tmpdir(), 'faults-test-lab.log');
const fault = (line: string) => console.log(`fault: ${line}`);
const seconds = (ms: number) => `${(ms / 1000).toFixed(2)} s`;

// ------------------------------------------------------------ the engines --

/** scripts/deps.sh: starts whatever of PostgreSQL and Redis is down, as `npm run deps` does. */
async function deps(): Promise<void> {
  await run('bash', ['scripts/deps.sh'], { cwd: root, timeout: 60_000 });
}

/** The pg_ctlcluster cluster (version, name) that serves PG_PORT. */
async function pgCluster(): Promise<[string, string]> {
  const { stdout } = await run('pg_lsclusters', ['-h']);
  const line = stdout
    .split('\n')
    .map((l) => l.trim().split(/\s+/))
    .find((fields) => fields[2] === String(PG_PORT));
  if (!line) throw new Error(`no pg_ctlcluster cluster on port ${PG_PORT} (pg_lsclusters: ${stdout})`);
  return [line[0]!, line[1]!];
}

async function stopPostgres(): Promise<void> {
  const [version, name] = await pgCluster();
  await run('pg_ctlcluster', [version, name, 'stop', '-m', 'fast'], { timeout: 30_000 });
}

/** Starts the cluster again; resolves once it accepts connections (pg_ctlcluster waits for that). */
async function startPostgres(): Promise<void> {
  const [version, name] = await pgCluster();
  await run('pg_ctlcluster', [version, name, 'start'], { timeout: 60_000 });
  await waitFor(
    async () =>
      await db
        .raw('select 1')
        .then(() => true)
        .catch(() => false),
    10_000,
    'PostgreSQL to accept queries',
  );
}

/** One PING over a plain socket: true on +PONG. */
function redisPing(): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = createConnection({ host: REDIS_HOST, port: REDIS_PORT });
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(500, () => done(false));
    socket.on('error', () => done(false));
    socket.on('connect', () => socket.write('PING\r\n'));
    socket.on('data', (data) => done(data.toString().startsWith('+PONG')));
  });
}

async function stopRedis(): Promise<void> {
  // A reply-less SHUTDOWN: redis-cli reports the dropped connection, which is the point.
  await run('redis-cli', ['-h', REDIS_HOST, '-p', String(REDIS_PORT), 'shutdown', 'nosave']).catch(() => undefined);
  await waitFor(async () => !(await redisPing()), 5_000, 'Redis to stop');
}

async function startRedis(): Promise<void> {
  await deps();
  await waitFor(redisPing, 10_000, 'Redis to answer PING');
}

async function waitFor(check: () => Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (!(await check())) {
    if (performance.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(50);
  }
}

// ---------------------------------------------------------------- traffic --

interface Sample {
  cls: 'browse' | 'checkout';
  sentAt: number;
  endedAt: number;
  status: number;
  body: Record<string, unknown> | undefined;
  /** Set when no answer came (connection error, timeout). */
  error?: string;
}

const failed = (s: Sample) => s.status < 200 || s.status > 299;

async function send(cls: Sample['cls'], seq: number): Promise<Sample> {
  const sentAt = performance.now();
  const body =
    cls === 'browse'
      ? { user_id: `fault-b-${seq}`, cart_id: `fault-browse-${seq % 50}` }
      : { user_id: `fault-c-${seq}`, cart_id: `fault-cx-${process.pid}-${Date.now()}-${seq}` };
  try {
    const response = await fetch(`${url('frontend')}/api/${cls}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(body),
      signal: AbortSignal.timeout(10_000),
    });
    const text = await response.text();
    let parsed: Record<string, unknown> | undefined;
    try {
      parsed = JSON.parse(text) as Record<string, unknown>;
    } catch {
      parsed = undefined;
    }
    return { cls, sentAt, endedAt: performance.now(), status: response.status, body: parsed };
  } catch (error) {
    return { cls, sentAt, endedAt: performance.now(), status: 0, body: undefined, error: (error as Error).message };
  }
}

/** Browse and checkout requests at fixed rates (open model) until `stop` is aborted. */
function traffic(stop: AbortSignal, rps = { browse: 8, checkout: 4 }) {
  const samples: Promise<Sample>[] = [];
  let seq = 0;
  const loops = (Object.keys(rps) as Sample['cls'][]).map(async (cls) => {
    const interval = 1000 / rps[cls];
    let next = performance.now();
    while (!stop.aborted) {
      samples.push(send(cls, ++seq));
      next += interval;
      await sleep(Math.max(0, next - performance.now()));
    }
  });
  return async () => {
    await Promise.all(loops);
    return Promise.all(samples);
  };
}

/** All nine /ready answer 200. */
async function allReady(): Promise<boolean> {
  const answers = await Promise.all(
    SHOP_SERVICES.map((name) =>
      fetch(`${url(name)}/ready`, { signal: AbortSignal.timeout(1_000) })
        .then((r) => r.ok)
        .catch(() => false),
    ),
  );
  return answers.every(Boolean);
}

const describeFailure = (s: Sample) =>
  `${s.cls} ${s.status || s.error} after ${Math.round(s.endedAt - s.sentAt)} ms: ${JSON.stringify(s.body)}`;

/**
 * Traffic before, during and after one dependency outage of `downMs`; checks the
 * contract (failures are fast 503s with a JSON reason, nothing crashes, healthy within
 * 5 s of the return) and prints the figures.
 */
async function outage(what: string, stopIt: () => Promise<void>, startIt: () => Promise<void>, downMs: number) {
  const pids = lab.processes.map((p) => p.pid);
  const exitsBefore = exits.length;
  const stop = new AbortController();
  const collect = traffic(stop.signal);
  await sleep(2_000);
  const stoppedAt = performance.now();
  let backAt = Number.NaN;
  let readyAt = Number.NaN;
  try {
    await stopIt();
    await sleep(Math.max(0, stoppedAt + downMs - performance.now()));
  } finally {
    await startIt();
    backAt = performance.now();
  }
  await waitFor(allReady, 20_000, 'every /ready to answer 200')
    .then(() => {
      readyAt = performance.now();
    })
    .catch(() => undefined);
  // Traffic for a while after the return: everything sent from 5 s on must succeed.
  await sleep(Math.max(0, backAt + 7_000 - performance.now()));
  stop.abort();
  const samples = await collect();

  const before = samples.filter((s) => s.endedAt < stoppedAt);
  const failures = samples.filter(failed);
  const duringFailures = failures.filter((s) => s.endedAt >= stoppedAt);
  const firstFailure = duringFailures.reduce((min, s) => Math.min(min, s.endedAt), Number.POSITIVE_INFINITY);
  const slowestFailure = Math.max(0, ...failures.map((s) => s.endedAt - s.sentAt));
  const lastFailureEnd = Math.max(backAt, ...failures.map((s) => s.endedAt));
  const recoverMs = Math.max(readyAt, lastFailureEnd) - backAt;
  const late = samples.filter((s) => s.sentAt >= backAt + 5_000);
  const badAnswers = failures.filter((s) => s.status !== 503 || typeof s.body?.error !== 'string' || typeof s.body?.reason !== 'string');
  const reasons: Record<string, number> = {};
  for (const s of failures) {
    const key = `${s.body?.service ?? '-'}:${s.body?.reason ?? s.status}`;
    reasons[key] = (reasons[key] ?? 0) + 1;
  }
  fault(
    `${what} stopped ${seconds(downMs)}: time to fail ${seconds(firstFailure - stoppedAt)} (slowest failed request ${seconds(slowestFailure)}), ` +
      `time to recover ${seconds(recoverMs)} (all /ready ${seconds(readyAt - backAt)} after its return), ` +
      `requests failed ${failures.length}/${samples.length} (${JSON.stringify(reasons)}), crashes ${exits.length - exitsBefore}`,
  );

  expect(before.filter(failed).map(describeFailure), 'failures before the fault').toEqual([]);
  expect(failures.length, `${what} down for ${downMs} ms failed no request`).toBeGreaterThan(0);
  expect(badAnswers.slice(0, 5).map(describeFailure), 'failures that are not a 503 with a JSON reason').toEqual([]);
  expect(slowestFailure, 'the slowest failed request (ms)').toBeLessThanOrEqual(1_000);
  expect(exits.slice(exitsBefore), 'service exits').toEqual([]);
  expect(lab.processes.map((p) => p.pid)).toEqual(pids);
  expect(readyAt - backAt, 'every /ready 200 after the return (ms)').toBeLessThanOrEqual(5_000);
  expect(recoverMs, 'time to recover (ms)').toBeLessThanOrEqual(5_000);
  expect(late.length).toBeGreaterThan(10);
  expect(late.filter(failed).map(describeFailure), 'failures from 5 s after the return on').toEqual([]);
}

// ------------------------------------------------------------------ tests --

beforeAll(async () => {
  await deps();
  lab = await startLab({
    services: [...SHOP_SERVICES],
    ports,
    env: { LOG_LEVEL: 'warn', REDIS_URL: LAB_REDIS_URL },
    onLine: (name, line) => logs.push(`${name} | ${line}`),
    onLog: (line) => labLines.push(line),
    onExit: (exit) => exits.push(exit),
  });
}, 90_000);

afterAll(async () => {
  try {
    await lab?.stop();
    // The services' warnings and errors, for a failure's story.
    writeFileSync(LOG_FILE, `${[...labLines, ...logs].join('\n')}\n`);
    console.log(`fault: the lab's log lines are in ${LOG_FILE}`);
  } finally {
    await deps();
    await db.destroy();
  }
}, 60_000);

describe('faults the lab survives', () => {
  it('a. PostgreSQL stopped for 10 s: fast 503s, no crash, healthy within 5 s of its return', async () => {
    await outage('postgres', stopPostgres, startPostgres, 10_000);
  }, 60_000);

  it('b. Redis stopped for 10 s: fast 503s, no crash, healthy within 5 s, the knobs read again', async () => {
    await outage('redis', stopRedis, startRedis, 10_000);
    // The knobs reader (every service's, here the frontend's) reads the shared state again:
    // the frontend puts the running scenario's minute into its error bodies.
    const redis = new Redis(LAB_REDIS_URL, { maxRetriesPerRequest: 1, lazyConnect: true });
    try {
      await redis.connect();
      const minute = 4_000 + (process.pid % 1000);
      const state = { scenario: 'faults-test', startedAt: new Date().toISOString(), minuteMs: 5_000, minute, label: 'x', knobs: {} };
      const started = performance.now();
      let seen: unknown;
      while (performance.now() - started < 5_000) {
        // Refreshed the way a runner does (a TTL, so it cannot outlive the test).
        await redis.set('lab:scenario', JSON.stringify({ ...state, updatedAt: new Date().toISOString() }), 'PX', 2_000);
        const answer = await fetch(`${url('frontend')}/api/checkout`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: '{}',
        });
        seen = ((await answer.json()) as { demo_minute?: unknown }).demo_minute;
        if (seen === minute) break;
        await sleep(100);
      }
      fault(`redis: the knobs reader saw the shared state again ${seconds(performance.now() - started)} after it was written`);
      expect(seen).toBe(minute);
    } finally {
      await redis.del('lab:scenario').catch(() => undefined);
      redis.disconnect();
    }
  }, 60_000);

  it('c. cart killed as demo minute 2 starts: restarted with a log line, errors attributed to cart, later minutes healthy', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'faults-'));
    const minuteMs = 4_000;
    const exitsBefore = exits.length;
    const linesBefore = labLines.length;
    try {
      const json = path.join(dir, 'report.json');
      const child = spawn(
        process.execPath,
        [
          'packages/scenario-cli/dist/cli/cli.js',
          '--scenario',
          'test/fixtures/faults-cart-kill.yaml',
          '--minute',
          `${minuteMs / 1000}s`,
          '--target',
          url('frontend'),
          '--json',
          json,
          '--no-knobs',
        ],
        { cwd: root, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, OTEL_SDK_DISABLED: 'true' } },
      );
      let output = '';
      child.stdout!.on('data', (d) => (output += d));
      child.stderr!.on('data', (d) => (output += d));
      const exited = once(child, 'exit');
      // The runner prints its first line and starts minute 0 about 50 ms later.
      await waitFor(async () => output.includes('demo minutes of'), 15_000, 'the scenario to start');
      const runStart = performance.now() + 50;
      await sleep(Math.max(0, runStart + 2 * minuteMs - performance.now()));
      const cart = lab.processes.find((p) => p.name === 'cart')!;
      const oldPid = cart.pid;
      const killedAt = performance.now();
      process.kill(oldPid, 'SIGKILL');
      let readyAt = Number.NaN;
      await waitFor(
        async () =>
          cart.pid !== oldPid &&
          (await fetch(`${url('cart')}/ready`, { signal: AbortSignal.timeout(500) })
            .then((r) => r.ok)
            .catch(() => false)),
        20_000,
        'cart to be ready again',
      );
      readyAt = performance.now();
      const [code] = await exited;
      expect(code === 0 || code === 1, `scenario exit ${code}:\n${output}`).toBe(true);
      const report = ReportSchema.parse(JSON.parse(readFileSync(json, 'utf8')));

      // Minute m started at runStart + m * minuteMs (the runner's own clock, within a few ms).
      const cartBackAfterMs = readyAt - killedAt;
      const after = report.minutes.filter((m) => runStart + m.minute * minuteMs >= readyAt);
      const killed = report.minutes.find((m) => m.minute === 2)!;
      const errorsIn = (m: (typeof report.minutes)[number]) => m.traffic.baseline.errors + m.traffic.demo.errors;
      const byService = (m: (typeof report.minutes)[number]) => {
        const sum: Record<string, number> = {};
        for (const row of [m.traffic.baseline, m.traffic.demo]) {
          for (const [service, n] of Object.entries(row.errorsByService)) sum[service] = (sum[service] ?? 0) + n;
        }
        return sum;
      };
      const restartLine = labLines.slice(linesBefore).find((line) => /cart exited unexpectedly .*restarting it in 1\.0 s/.test(line));
      fault(
        `cart SIGKILL at minute 2: restarted and ready ${seconds(cartBackAfterMs)} after the kill (pid ${oldPid} -> ${cart.pid}), ` +
          `requests failed ${errorsIn(killed)} in minute 2 (by service ${JSON.stringify(byService(killed))}), ` +
          `minutes after cart was back: ${after.map((m) => `${m.minute} baseline ${m.traffic.baseline.errorRate} demo ${m.traffic.demo.errorRate}`).join('; ')}`,
      );
      fault(`cart SIGKILL: lab said "${restartLine}"`);

      expect(restartLine, labLines.join('\n')).toBeDefined();
      expect(exits.slice(exitsBefore).map((e) => [e.name, e.signal, e.restartInMs])).toEqual([['cart', 'SIGKILL', 1_000]]);
      expect(cart.restarts).toBe(1);
      expect(errorsIn(killed)).toBeGreaterThan(0);
      // Before the kill nothing fails, but for minute 1's requests still in flight at the kill (cart-unavailable).
      expect(errorsIn(report.minutes[0]!), 'minute 0').toBe(0);
      const minute1 = report.minutes[1]!;
      expect(
        Object.keys({ ...minute1.traffic.baseline.errorsByReason, ...minute1.traffic.demo.errorsByReason }).filter(
          (r) => r !== 'cart-unavailable',
        ),
      ).toEqual([]);
      expect(cartBackAfterMs, 'cart ready again after the kill (ms)').toBeLessThan(minuteMs);
      expect(after.length).toBeGreaterThanOrEqual(2);
      for (const m of after) {
        expect(m.traffic.baseline.errorRate, `baseline minute ${m.minute}`).toBeLessThanOrEqual(0.02);
        expect(m.traffic.demo.errorRate, `demo minute ${m.minute}`).toBeLessThanOrEqual(0.02);
      }
      expect(report.ok, JSON.stringify(report.expectations)).toBe(true);
      // The errors of the killed minute are cart's, and the report says so.
      expect(byService(killed).cart ?? 0, JSON.stringify(killed.traffic)).toBeGreaterThanOrEqual(Math.ceil(errorsIn(killed) * 0.9));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 90_000);

  it('d. orders retried with one Idempotency-Key while PostgreSQL restarts: none lost, none twice', async () => {
    const products = (await db('products').select('id').where({ is_active: true }).orderBy('id').limit(20)) as { id: number }[];
    const tag = `fault-d-${process.pid}-${Date.now()}`;
    const keys = Array.from({ length: 16 }, (_, i) => `${tag}-${i}`);
    const acknowledged = new Map<string, number>();
    const answers: Record<string, number> = {};
    const bad: string[] = [];
    let attempts = 0;

    /** One shopper's order: sent, and sent again with the same key until it is acknowledged. */
    const order = async (key: string, i: number) => {
      const body = JSON.stringify({
        user_id: `fault-d-${i}`,
        items: [{ product_id: products[i % products.length]!.id, quantity: 1 + (i % 3) }],
      });
      const post = async () => {
        attempts++;
        try {
          const response = await fetch(`${url('checkout')}/orders/create`, {
            method: 'POST',
            headers: { 'content-type': 'application/json', 'idempotency-key': key },
            body,
            signal: AbortSignal.timeout(10_000),
          });
          const answer = (await response.json().catch(() => ({}))) as { order_id?: number; error?: string; reason?: string };
          answers[response.status] = (answers[response.status] ?? 0) + 1;
          if (response.status === 201 && typeof answer.order_id === 'number') return answer.order_id;
          if (response.status !== 503 || typeof answer.reason !== 'string')
            bad.push(`${key}: ${response.status} ${JSON.stringify(answer)}`);
        } catch (error) {
          answers.none = (answers.none ?? 0) + 1;
          bad.push(`${key}: ${(error as Error).message}`);
        }
        return undefined;
      };
      await sleep(i * 250);
      const deadline = performance.now() + 30_000;
      while (performance.now() < deadline) {
        // Twice at once: a client that retried before the first answer came.
        const [a, b] = await Promise.all([post(), post()]);
        if (a !== undefined && b !== undefined && a !== b) bad.push(`${key}: two orders acknowledged, ${a} and ${b}`);
        const id = a ?? b;
        if (id !== undefined) {
          acknowledged.set(key, id);
          // And once more after the answer (one that was lost on its way): the same order.
          const again = await post();
          if (again !== undefined && again !== id) bad.push(`${key}: acknowledged ${id}, replayed as ${again}`);
          return;
        }
        await sleep(200);
      }
    };

    const started = performance.now();
    const orders = Promise.all(keys.map(order));
    let downAt = Number.NaN;
    let backAt = Number.NaN;
    try {
      await sleep(600);
      downAt = performance.now();
      await stopPostgres();
      await sleep(2_500);
    } finally {
      await startPostgres();
      backAt = performance.now();
    }
    await orders;
    const rows = (await db('orders')
      .select('idempotency_key')
      .count({ n: '*' })
      .min({ id: 'id' })
      .whereIn('idempotency_key', keys)
      .groupBy('idempotency_key')) as { idempotency_key: string; n: string; id: number }[];
    const byKey = new Map(rows.map((r) => [r.idempotency_key, { n: Number(r.n), id: Number(r.id) }]));
    const lost = [...acknowledged].filter(([key, id]) => byKey.get(key)?.id !== id).length;
    const duplicates = rows.reduce((sum, r) => sum + Number(r.n) - 1, 0);
    const items = (await db('order_items')
      .whereIn(
        'order_id',
        rows.map((r) => r.id),
      )
      .count({ n: '*' })) as { n: string }[];
    fault(
      `checkout retries while postgres restarts (down ${seconds(backAt - downAt)}): ${acknowledged.size}/${keys.length} orders acknowledged ` +
        `in ${seconds(performance.now() - started)}, ${attempts} attempts (answers ${JSON.stringify(answers)}), orders lost = ${lost}, duplicates = ${duplicates}`,
    );
    expect(bad.slice(0, 5)).toEqual([]);
    expect(answers['503'] ?? 0, 'no attempt met the restart').toBeGreaterThan(0);
    expect(acknowledged.size).toBe(keys.length);
    expect(lost).toBe(0);
    expect(duplicates).toBe(0);
    expect(Number(items[0]?.n)).toBe(rows.length);
  }, 90_000);
});
