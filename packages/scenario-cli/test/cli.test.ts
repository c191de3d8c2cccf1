/**
 * `npm run scenario` as a user runs it: options, exit codes, the JSON report against its
 * schema, and the HTML report rendered in a real headless Chromium.
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { ReportSchema } from '@bfl/load-generator/report-schema';
import { Redis } from 'ioredis';
import { chromium } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const root = path.resolve(__dirname, '../../..');
const artifacts = path.join(root, '.artifacts');
const dir = mkdtempSync(path.join(tmpdir(), 'scenario-cli-'));
let server: Server;
let target: string;
/** The baggage header of every request the target got, by path. */
const baggage: { path: string; value: string | undefined }[] = [];

beforeAll(async () => {
  // browse answers 200 after 20 ms; checkout answers 503 for every third request.
  let checkouts = 0;
  server = createServer((req, res) => {
    req.resume();
    baggage.push({ path: req.url ?? '', value: String(req.headers.baggage ?? '') || undefined });
    const status = req.url === '/api/checkout' && ++checkouts % 3 === 0 ? 503 : 200;
    setTimeout(() => res.writeHead(status, { 'content-type': 'application/json' }).end('{}'), 20);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  target = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
});

afterAll(() => {
  server.closeAllConnections();
  server.close();
});

function scenarioFile(name: string, demoMax: number): string {
  const file = path.join(dir, `${name}.yaml`);
  writeFileSync(
    file,
    `name: ${name}
traffic:
  baseline: { request: { method: POST, path: /api/browse, body: { user_id: "u-{{seq}}" } } }
  demo: { request: { method: POST, path: /api/checkout } }
minutes:
  - { label: one, rpm: { baseline: 600, demo: 1200 }, knobs: { checkout_write_delay_ms: 5 } }
  - { label: two, rpm: { baseline: 600, demo: 1800 } }
expectations:
  - { kind: range, name: "baseline healthy", class: baseline, metric: errorRate, max: 0 }
  - { kind: range, name: "demo errors at most ${demoMax}", class: demo, metric: errorRate, max: ${demoMax} }
  - { kind: range, name: "demo rate held", class: demo, metric: achievedOverTarget, min: 0.97, max: 1.03 }
`,
  );
  return file;
}

async function scenario(args: string[], env: NodeJS.ProcessEnv = process.env) {
  const child = spawn(process.execPath, ['--require', '@bfl/telemetry/preload', 'packages/scenario-cli/dist/cli/cli.js', ...args], {
    cwd: root,
    env: { ...env, CI: 'true' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d) => (stdout += d));
  child.stderr.on('data', (d) => (stderr += d));
  const [code] = await once(child, 'exit');
  return { code: code as number, stdout, stderr };
}

describe('npm run scenario', () => {
  it.each([
    [['--minute', 'soon'], /"soon" is not a duration/],
    [['--rate-scale', '0'], /--rate-scale "0" must be a number above 0/],
    [['--target', 'localhost:8018'], /--target "localhost:8018" must be http/],
    [['--bogus'], /unknown option '--bogus'/],
    [['--scenario', 'nope'], /scenario "nope" not found/],
    [['--target', 'http://127.0.0.1:1'], /target http:\/\/127\.0\.0\.1:1 is unreachable .*is the lab running/],
  ])('refuses %j with one line and exit 2, before any traffic', async (args, message) => {
    const { code, stderr, stdout } = await scenario(args);
    expect(code).toBe(2);
    expect(stderr.trim().split('\n')).toHaveLength(1);
    expect(stderr).toMatch(message);
    expect(stdout).not.toMatch(/^min /m);
  });

  it('tags every request with its class and minute as W3C baggage, even when it exports no telemetry', async () => {
    const quiet = Object.fromEntries(Object.entries(process.env).filter(([key]) => !key.startsWith('OTEL_')));
    baggage.length = 0;
    const { code, stderr } = await scenario(['--scenario', scenarioFile('tagged', 1), '--minute', '1s', '--target', target], quiet);
    expect(code, stderr).toBeLessThan(2);
    const sent = baggage.filter((b) => b.path === '/api/browse' || b.path === '/api/checkout');
    expect(sent.length).toBeGreaterThan(10);
    const parse = (value = '') => Object.fromEntries(value.split(',').map((pair) => pair.trim().split('=')));
    for (const { path: route, value } of sent) {
      const entries = parse(value);
      expect(entries['traffic.type'], `${route}: baggage ${value}`).toBe(route === '/api/browse' ? 'baseline' : 'demo');
      expect(['0', '1'], `${route}: baggage ${value}`).toContain(entries['demo.minute']);
    }
  });

  it('names the bad field of a broken scenario file', async () => {
    const file = path.join(dir, 'broken.yaml');
    writeFileSync(file, 'name: broken\ntraffic: {}\nminutes: []\n');
    const { code, stderr } = await scenario(['--scenario', file, '--target', target]);
    expect(code).toBe(2);
    expect(stderr).toMatch(/broken\.yaml: traffic\.baseline/);
  });

  it.each([
    [
      'recommendation_query_cost_ms: 1e9',
      /minutes\.0\.knobs\.recommendation_query_cost_ms: recommendation_query_cost_ms takes 0-1000 ms, got 1000000000/,
    ],
    ['checkout_write_delay_ms: -5', /minutes\.0\.knobs\.checkout_write_delay_ms: checkout_write_delay_ms takes 0-1000 ms, got -5/],
    [
      'drop_tables: 1',
      /minutes\.0\.knobs\.drop_tables: unknown knob drop_tables \(known: recommendation_query_cost_ms, checkout_write_delay_ms\)/,
    ],
  ])('refuses a scenario whose knob is out of range or unknown (%s), exit 2 naming the field', async (knob, message) => {
    const file = scenarioFile('bad-knob', 1);
    writeFileSync(file, readFileSync(file, 'utf8').replace('knobs: { checkout_write_delay_ms: 5 }', `knobs: { ${knob} }`));
    const { code, stderr } = await scenario(['--scenario', file, '--target', target]);
    expect(code).toBe(2);
    expect(stderr).toMatch(message);
  });

  it('passes: a line per minute, a summary, a JSON report that fits its schema and an HTML report that draws its charts', async () => {
    const json = path.join(dir, 'pass.json');
    const out = path.join(dir, 'report');
    const { code, stdout } = await scenario([
      '--scenario',
      scenarioFile('passing', 0.4),
      '--minute',
      '2s',
      '--target',
      target,
      '--json',
      json,
      '--out',
      out,
    ]);
    expect(code, stdout).toBe(0);
    expect(stdout.match(/^min +\d+\/1 /gm)).toHaveLength(2);
    expect(stdout).toMatch(/^OK: 3\/3 expectations met$/m);

    const report = ReportSchema.parse(JSON.parse(readFileSync(json, 'utf8')));
    expect(report).toMatchObject({ scenario: 'passing', minuteMs: 2_000, ok: true, stopped: false });
    expect(report.minutes.map((m) => m.traffic.demo.requests)).toEqual([40, 60]);
    expect(report.minutes[0]?.knobs).toEqual({ checkout_write_delay_ms: 5 });
    expect(report.minutes[1]?.traffic.demo.errorsByKind.http5xx).toBe(20);

    const browser = await chromium.launch({
      executablePath: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium',
      args: [
        '--no-sandbox',
        '--disable-gpu',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
        '--no-first-run',
      ],
    });
    try {
      const page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
      const failedRequests: string[] = [];
      page.on('requestfailed', (r) => failedRequests.push(r.url()));
      await page.goto(`file://${out}/index.html`);
      await page.waitForSelector('body[data-charts-ready="3"]', { timeout: 10_000 });
      const charts = await page.evaluate(() =>
        Array.from(document.querySelectorAll('canvas')).map((canvas) => {
          const ctx = canvas.getContext('2d') as CanvasRenderingContext2D;
          const { data } = ctx.getImageData(0, 0, canvas.width, canvas.height);
          let painted = 0;
          for (let i = 3; i < data.length; i += 4) if ((data[i] as number) > 0) painted++;
          return { id: canvas.id, width: canvas.width, height: canvas.height, painted };
        }),
      );
      expect(charts.map((c) => c.id)).toEqual(['chart-rate', 'chart-errors', 'chart-p95']);
      for (const chart of charts) {
        expect(chart.width).toBeGreaterThan(200);
        expect(chart.painted, chart.id).toBeGreaterThan(1_000);
      }
      const datasets = await page.evaluate(() =>
        (window as unknown as { labCharts: { data: { datasets: { label: string; data: number[] }[] } }[] }).labCharts.map((c) =>
          c.data.datasets.map((d) => ({ label: d.label, data: d.data })),
        ),
      );
      expect(datasets[1]?.find((d) => d.label === 'demo')?.data[1]).toBeCloseTo(33.3, 0);
      expect(await page.textContent('h1')).toContain('PASS');
      expect(failedRequests).toEqual([]);
      mkdirSync(artifacts, { recursive: true });
      await page.screenshot({ path: path.join(artifacts, 'scenario-report.png'), fullPage: true });
    } finally {
      await browser.close();
    }
  }, 60_000);

  it('fails the verdict with exit 1 when an expectation does not hold', async () => {
    const json = path.join(dir, 'fail.json');
    const { code, stdout } = await scenario([
      '--scenario',
      scenarioFile('failing', 0.1),
      '--minute',
      '1s',
      '--target',
      target,
      '--json',
      json,
    ]);
    expect(code).toBe(1);
    expect(stdout).toMatch(/^FAIL +demo errors at most 0\.1: actual 0\.3\d* \(minute \d\)/m);
    expect(stdout).toMatch(/^FAILED: 2\/3 expectations met$/m);
    const report = ReportSchema.parse(JSON.parse(readFileSync(json, 'utf8')));
    expect(report.ok).toBe(false);
    expect(report.expectations.find((e) => !e.ok)?.name).toBe('demo errors at most 0.1');
  }, 30_000);

  it('status and stop reach a running scenario through Redis: minute, knobs, rows; stop ends it and resets the knobs', async () => {
    const file = path.join(dir, 'long.yaml');
    writeFileSync(
      file,
      `name: long
traffic:
  baseline: { request: { path: /api/browse } }
  demo: { request: { path: /api/checkout } }
minutes:
${Array.from({ length: 16 }, (_, m) => `  - { label: m${m}, rpm: { baseline: 60, demo: 600 }, knobs: { checkout_write_delay_ms: ${11 * (m + 1)} } }\n`).join('')}`,
    );
    const running = scenario(['--scenario', file, '--minute', '1s', '--target', target]);
    // Until the run is in its second minute (a busy machine starts it later).
    let shown: { state: string; scenario: string; minute: number; knobs: Record<string, number>; rows: { minute: number }[] };
    for (let tries = 0; ; tries++) {
      await new Promise((resolve) => setTimeout(resolve, 300));
      const status = await scenario(['status']);
      expect(status.code).toBe(0);
      shown = JSON.parse(status.stdout);
      if ((shown.minute >= 1 && shown.rows?.length) || tries > 20) break;
    }
    // The minute it is in, with that minute's knobs, and rows of minutes before it.
    expect(shown.minute).toBeGreaterThanOrEqual(1);
    expect(shown).toMatchObject({ state: 'running', scenario: 'long', knobs: { checkout_write_delay_ms: 11 * (shown.minute + 1) } });
    expect(shown.rows.map((r) => r.minute).at(-1)).toBeLessThan(shown.minute);

    const stop = await scenario(['stop']);
    expect(stop.code).toBe(0);
    expect(JSON.parse(stop.stdout)).toMatchObject({ state: 'stopping', scenario: 'long' });
    const ended = await running;
    expect(ended.stderr).toMatch(/stop requested/);
    expect(ended.stdout).toMatch(/run stopped early/);
    expect(ended.code).toBe(1);
    expect(JSON.parse((await scenario(['status'])).stdout)).toMatchObject({ state: 'idle' });
  }, 30_000);

  it('leaves no knobs behind when the runner dies: killed with SIGKILL, its lab:scenario key expires within the 3 s TTL', async () => {
    // A Redis database of its own: nothing else writes or removes the key there.
    const redisUrl = new URL(process.env.REDIS_URL ?? 'redis://localhost:6379');
    redisUrl.pathname = '/8';
    const redis = new Redis(redisUrl.toString(), { maxRetriesPerRequest: 1 });
    const child = spawn(
      process.execPath,
      ['packages/scenario-cli/dist/cli/cli.js', '--scenario', scenarioFile('killed', 1), '--minute', '30s', '--target', target],
      { cwd: root, env: { ...process.env, CI: 'true', REDIS_URL: redisUrl.toString() }, stdio: 'ignore' },
    );
    try {
      await redis.del('lab:scenario');
      const until = Date.now() + 15_000;
      while (!(await redis.exists('lab:scenario')) && Date.now() < until) await new Promise((resolve) => setTimeout(resolve, 50));
      const ttl = await redis.pttl('lab:scenario');
      // Refreshed while the runner lives: the key always has a TTL of at most 3 s.
      expect(ttl, 'the TTL of the published knobs (ms)').toBeGreaterThan(0);
      expect(ttl).toBeLessThanOrEqual(3_000);
      expect(JSON.parse((await redis.get('lab:scenario')) ?? '{}')).toMatchObject({
        scenario: 'killed',
        knobs: { checkout_write_delay_ms: 5 },
      });
      const killedAt = performance.now();
      child.kill('SIGKILL');
      await once(child, 'exit');
      while ((await redis.exists('lab:scenario')) && performance.now() - killedAt < 6_000)
        await new Promise((resolve) => setTimeout(resolve, 50));
      const goneAfterMs = performance.now() - killedAt;
      console.log(`scenario cli: killed with SIGKILL, its knobs expired ${(goneAfterMs / 1000).toFixed(2)} s later (TTL ${ttl} ms)`);
      expect(await redis.exists('lab:scenario'), 'the knobs outlived the runner').toBe(0);
      expect(goneAfterMs).toBeLessThanOrEqual(3_500);
    } finally {
      child.kill('SIGKILL');
      await redis.del('lab:scenario');
      redis.disconnect();
    }
  }, 30_000);
});
