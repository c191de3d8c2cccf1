/**
 * `npm run bench [-- --quick] [--json FILE]`: what the lab costs and how close it runs to
 * its limits, as ratios of things measured in the same run (absolute numbers on a shared
 * machine are noise).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdirSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { setTimeout as sleep } from 'node:timers/promises';
import { SHOP_SERVICES } from '@bfl/contract';
import { rssMiB, startLab } from '@bfl/lab';
import { ScenarioRun } from '@bfl/load-generator/runner';
import { loadScenario, parseScenario, type Scenario, type TrafficClass, targetRps } from '@bfl/load-generator/scenario';
import autocannon from 'autocannon';
import { Command, Option } from 'commander';
import { compareAccuracy } from './compare.js';

interface Durations {
  throughputS: number;
  rounds: number;
  warmupS: number;
  stepS: number;
  browseSteps: number[];
  checkoutSteps: number[];
  accuracyS: number;
}

const FULL: Durations = {
  throughputS: 10,
  rounds: 2,
  warmupS: 60,
  stepS: 10,
  browseSteps: [10, 20, 40, 60, 80, 100, 130],
  checkoutSteps: [20, 40, 60, 80, 100, 130],
  accuracyS: 30,
};
const QUICK: Durations = { throughputS: 1, rounds: 1, warmupS: 3, stepS: 2, browseSteps: [5, 10], checkoutSteps: [5, 10], accuracyS: 3 };

const round = (v: number, d = 3) => Number(v.toFixed(d));
const log = (line: string) => process.stderr.write(`bench: ${line}\n`);

/** Starts bench-target.js and resolves with its port. */
async function target(variant: 'raw' | 'koa', otlp?: string): Promise<{ child: ChildProcess; url: string }> {
  const args = [...(otlp ? ['--require', '@bfl/telemetry/preload'] : []), path.join(__dirname, 'bench-target.js'), variant];
  const env = { ...process.env, PORT: '0', OTEL_SERVICE_NAME: 'bench' } as NodeJS.ProcessEnv;
  for (const key of Object.keys(env)) if (key.startsWith('OTEL_EXPORTER') || key === 'OTEL_SDK_DISABLED') delete env[key];
  if (otlp) Object.assign(env, { OTEL_EXPORTER_OTLP_ENDPOINT: otlp, OTEL_METRICS_EXPORTER: 'none', OTEL_LOGS_EXPORTER: 'none' });
  const child = spawn(process.execPath, args, { cwd: path.resolve(__dirname, '../..'), env, stdio: ['ignore', 'pipe', 'inherit'] });
  const port = await new Promise<string>((resolve, reject) => {
    const lines = createInterface({ input: child.stdout! });
    lines.on('line', (line) => {
      const match = /^listening (\d+)$/.exec(line);
      if (match) resolve(match[1] as string);
    });
    child.once('exit', (code) => reject(new Error(`bench-target ${variant} exited with ${code}`)));
  });
  return { child, url: `http://127.0.0.1:${port}/ping` };
}

/** Maximum throughput of each variant: same connections, same duration, interleaved rounds. */
/**
 * An OTLP/HTTP endpoint that accepts and discards: what the telemetry costs the service
 * (encoding, exporting), not what decoding it costs a receiver on the same two cores.
 */
async function otlpSink(): Promise<{ url: string; close: () => Promise<void> }> {
  const server = createServer((req, res) => {
    req.resume();
    req.on('end', () => res.writeHead(200, { 'content-type': 'application/x-protobuf' }).end());
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return {
    url: `http://127.0.0.1:${(server.address() as { port: number }).port}`,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

async function perRequestCost(d: Durations) {
  const sink = await otlpSink();
  const receiver = { stop: sink.close };
  const receiverUrl = sink.url;
  const variants = [
    ['raw', await target('raw')],
    ['koa', await target('koa')],
    ['koaOtel', await target('koa', receiverUrl)],
  ] as const;
  const totals: Record<string, number[]> = { raw: [], koa: [], koaOtel: [] };
  try {
    for (let r = 0; r < d.rounds; r++) {
      for (const [name, t] of variants) {
        const result = await autocannon({ url: t.url, connections: 32, duration: d.throughputS });
        totals[name]!.push(result.requests.average);
      }
    }
  } finally {
    for (const [, t] of variants) t.child.kill('SIGTERM');
    await receiver.stop();
  }
  const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
  const rawRps = mean(totals.raw!);
  const koaRps = mean(totals.koa!);
  const koaOtelRps = mean(totals.koaOtel!);
  return {
    rawRps: round(rawRps, 0),
    koaRps: round(koaRps, 0),
    koaOtelRps: round(koaOtelRps, 0),
    koaOverRaw: round(koaRps / rawRps),
    otelOverKoa: round(koaOtelRps / koaRps),
  };
}

/** One class at a constant open-model rate for `seconds`; healthy knobs (nothing published). */
async function steady(base: Scenario, cls: TrafficClass, rps: number, seconds: number, frontend: string) {
  const scenario = parseScenario({
    name: `bench-${cls}`,
    traffic: base.traffic,
    minutes: [{ rpm: { baseline: cls === 'baseline' ? rps * 60 : 0, demo: cls === 'demo' ? rps * 60 : 0 } }],
  });
  const result = await new ScenarioRun({ scenario, target: frontend, minuteMs: seconds * 1000, classes: [cls], timeoutMs: 10_000 }).run();
  return result.minutes[0]!.traffic[cls];
}

/** The highest stepped rate served with p99 under 1 s and no errors. */
async function capacity(base: Scenario, cls: TrafficClass, steps: number[], seconds: number, frontend: string): Promise<number> {
  let best = 0;
  for (const rps of steps) {
    const row = await steady(base, cls, rps, seconds, frontend);
    log(`${cls} at ${rps}/s: p99 ${row.p99Ms} ms, errors ${row.errors}/${row.requests}`);
    if (row.errors > 0 || row.p99Ms >= 1000) break;
    best = rps;
    await sleep(1_000);
  }
  return best;
}

async function labMeasurements(d: Durations) {
  // Telemetry on, as the lab runs in Compose, exported to the discarding sink.
  const sink = await otlpSink();
  const receiver = { stop: sink.close };
  const receiverUrl = sink.url;
  const ports = Object.fromEntries(SHOP_SERVICES.map((name, i) => [name, 24011 + i]));
  const lab = await startLab({
    services: SHOP_SERVICES,
    ports,
    env: { OTEL_EXPORTER_OTLP_ENDPOINT: receiverUrl, LOG_LEVEL: 'warn' },
  });
  try {
    const labStartSeconds = round(lab.startMs / 1000, 2);
    log(`lab ready in ${labStartSeconds} s; warm-up: black-friday minute 0 for ${d.warmupS} s`);
    const base = loadScenario('black-friday');
    const first = base.minutes[0]!;
    const warm = parseScenario({ name: 'warm-up', traffic: base.traffic, minutes: [{ rpm: first.rpm }] });
    await new ScenarioRun({ scenario: warm, target: lab.url('frontend'), minuteMs: d.warmupS * 1000 }).run();
    const labRssMiB = round(
      lab.processes.reduce((sum, p) => sum + (rssMiB(p.pid) ?? 0), 0),
      0,
    );
    const peak = (cls: TrafficClass) => Math.max(...base.minutes.map((m) => targetRps(m, cls)));
    const browseCapacityRps = await capacity(base, 'baseline', d.browseSteps, d.stepS, lab.url('frontend'));
    const checkoutCapacityRps = await capacity(base, 'demo', d.checkoutSteps, d.stepS, lab.url('frontend'));
    return {
      labStartSeconds,
      labRssMiB,
      browseCapacityRps,
      checkoutCapacityRps,
      browseHeadroom: round(browseCapacityRps / peak('baseline'), 2),
      checkoutHeadroom: round(checkoutCapacityRps / peak('demo'), 2),
    };
  } finally {
    await lab.stop();
    await receiver.stop();
  }
}

async function main(): Promise<void> {
  const program = new Command('bench')
    .addOption(new Option('--quick', 'short durations (the test suite checks the harness with it)'))
    .addOption(new Option('--json <file>', 'write the figures as JSON'))
    .parse(process.argv);
  const flags = program.opts<{ quick?: boolean; json?: string }>();
  const d = flags.quick ? QUICK : FULL;
  const started = Date.now();

  log('per-request cost: raw node:http vs the kit Koa app vs the kit Koa app with telemetry');
  const cost = await perRequestCost(d);
  log('the lab: start, footprint after a warm-up, capacity on healthy knobs');
  const lab = await labMeasurements(d);
  log(`runner accuracy vs plain autocannon: 70/s for ${d.accuracyS} s against a 2 s server`);
  const accuracy = await compareAccuracy(70, d.accuracyS, 2_000);

  const report = {
    date: new Date().toISOString(),
    quick: Boolean(flags.quick),
    durationS: Math.round((Date.now() - started) / 1000),
    ...cost,
    ...lab,
    runnerAchievedOverTarget: accuracy.runner.achievedOverTarget,
    autocannonAchievedOverTarget: accuracy.autocannon.achievedOverTarget,
    runnerP50OverTruth: accuracy.runner.p50OverTruth,
    autocannonP50OverTruth: accuracy.autocannon.p50OverTruth,
  };
  const goals: Record<string, string> = {
    koaOverRaw: '>= 0.5',
    otelOverKoa: '>= 0.7',
    browseHeadroom: '>= 10',
    checkoutHeadroom: '>= 3',
    runnerAchievedOverTarget: '0.97-1.03',
    runnerP50OverTruth: '0.97-1.05',
    labStartSeconds: '<= 10',
    labRssMiB: '<= 1024',
  };
  const rows = Object.entries(report).filter(([k]) => !['date', 'quick', 'durationS'].includes(k));
  process.stdout.write(`\n${'figure'.padEnd(30)} ${'value'.padStart(10)}  goal\n`);
  for (const [key, value] of rows) process.stdout.write(`${key.padEnd(30)} ${String(value).padStart(10)}  ${goals[key] ?? ''}\n`);
  if (flags.json) {
    mkdirSync(path.dirname(path.resolve(flags.json)), { recursive: true });
    writeFileSync(flags.json, `${JSON.stringify(report, null, 2)}\n`);
    process.stdout.write(`\nbench: ${flags.json}\n`);
  }
}

main().then(
  () => process.exit(0),
  (error: unknown) => {
    process.stderr.write(`bench: ${(error as Error).stack ?? error}\n`);
    process.exit(1);
  },
);
