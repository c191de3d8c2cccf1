/**
 * `npm run scenario`: drives the Black Friday story against the lab with open-model
 * arrivals, prints a line per demo minute, and ends with a summary and a verdict.
 *
 *   npm run scenario -- [--scenario black-friday] [--minute 5s] [--target URL] [--json FILE] [--out DIR]
 *                       [--verify-traces] [--verify-alerts PROMETHEUS_URL]
 *   npm run scenario -- status | stop        (the load-generator service's control API)
 */
import { randomBytes } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { DEFAULT_REDIS_URL } from '@bfl/contract';
import { controlRequest } from '@bfl/load-generator/control-client';
import { connectKnobs, sharedState } from '@bfl/load-generator/knobs';
import { checkTarget, parseDuration, parseScale, parseUrl } from '@bfl/load-generator/options';
import { buildReport } from '@bfl/load-generator/report';
import { renderBody, ScenarioRun } from '@bfl/load-generator/runner';
import { loadScenario, type Scenario, ScenarioError } from '@bfl/load-generator/scenario';
import { shutdownTelemetry, startTelemetry } from '@bfl/telemetry';
import { Command, CommanderError, Option } from 'commander';
import { writeHtml } from '../report/html.js';
import { AlertSetupError, AlertWatcher, alertExpectation, checkAlertSetup } from './alerts.js';
import { LiveView, minuteLine, summaryTable } from './live.js';
import { TraceVerifier, traceExpectations } from './verify.js';

const EXIT_FAILED = 1;
const EXIT_USAGE = 2;

class UsageError extends Error {}

interface RunFlags {
  knobs: boolean;
  verifyTraces?: boolean;
  verifyAlerts?: string;
  otlpPort: string;
  scenario: string;
  target: string;
  minute: string;
  rateScale: string;
  timeout: string;
  json?: string;
  out?: string;
}

async function run(flags: RunFlags): Promise<number> {
  let minuteMs: number;
  let timeoutMs: number;
  let rateScale: number;
  let target: string;
  let prometheus: string | undefined;
  try {
    minuteMs = parseDuration(flags.minute);
    timeoutMs = parseDuration(flags.timeout);
    rateScale = parseScale(flags.rateScale);
    target = parseUrl(flags.target, '--target');
    prometheus = flags.verifyAlerts === undefined ? undefined : parseUrl(flags.verifyAlerts, '--verify-alerts');
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
  const scenario = loadScenario(flags.scenario);
  await checkTarget(target).catch((error: Error) => {
    throw new UsageError(error.message);
  });
  if (prometheus) {
    if (!scenario.alerts.length) throw new UsageError(`--verify-alerts: scenario ${scenario.name} states no alerts (its alerts: section)`);
    await checkAlertSetup(prometheus, minuteMs, scenario.alerts).catch((error: Error) => {
      throw error instanceof AlertSetupError ? new UsageError(error.message) : error;
    });
  }
  const verifier = flags.verifyTraces ? await startVerifier(flags.otlpPort) : undefined;
  if (verifier) await preflightTraces(verifier, scenario, target, Number(flags.otlpPort));
  // The runner's own root spans (no auto-instrumentation: the requests are made by hand).
  // Its requests carry the story's baggage even when it exports nothing itself.
  process.env.OTEL_SERVICE_NAME ||= 'load-generator';
  startTelemetry({ autoInstrument: false, propagateAlways: true });
  const controller = new AbortController();
  const onStopRequest = () => {
    process.stderr.write('\nscenario: stop requested (npm run scenario -- stop); waiting for requests in flight...\n');
    controller.abort();
  };
  const knobs = flags.knobs
    ? await connectKnobs(
        process.env.REDIS_URL ?? DEFAULT_REDIS_URL,
        process.env.LOAD_GENERATOR_URL ?? 'http://localhost:8010',
        process.env.LAB_CONTROL_TOKEN,
        onStopRequest,
      ).catch((error: Error) => {
        throw new UsageError(error.message);
      })
    : undefined;

  const out = process.stdout;
  const minutes = scenario.minutes.length;
  out.write(
    `scenario ${scenario.name}: ${minutes} demo minutes of ${minuteMs / 1000} s against ${target}` +
      `${rateScale !== 1 ? ` at ${rateScale}x rates` : ''} (request timeout ${timeoutMs / 1000} s)\n`,
  );
  const interrupt = () => {
    if (controller.signal.aborted) process.exit(130);
    process.stderr.write('\nscenario: stopping (Ctrl-C again to quit at once); waiting for requests in flight...\n');
    controller.abort();
  };
  process.on('SIGINT', interrupt);
  process.on('SIGTERM', interrupt);

  let live: LiveView | undefined;
  let runStart: number | undefined;
  const publishKnobs = knobs?.onMinuteStart(scenario, minuteMs);
  const runner = new ScenarioRun({
    scenario,
    target,
    minuteMs,
    rateScale,
    timeoutMs,
    signal: controller.signal,
    onMinuteStart: async (minute, values) => {
      if (minute === 0) runStart = performance.now();
      await publishKnobs?.(minute, values);
    },
    onMinute: (row) => {
      knobs?.addRow(row);
      live?.line(minuteLine(row, minutes));
    },
  });
  const alerts = prometheus
    ? new AlertWatcher(prometheus, scenario.alerts, minuteMs, () =>
        runStart === undefined ? undefined : { minute: runner.progress().minute, at: (performance.now() - runStart) / minuteMs },
      )
    : undefined;
  live = new LiveView(out, () => runner.progress());
  live.start();
  alerts?.start();
  let result: Awaited<ReturnType<ScenarioRun['run']>>;
  try {
    result = await runner.run();
  } finally {
    live.stop();
    await alerts?.stop();
    await knobs?.close();
  }

  const report = buildReport(scenario, result, target);
  if (alerts) {
    const firstErrorMinute = report.minutes.find((m) => m.traffic.demo.errors > 0)?.minute ?? null;
    report.alerts = alerts.results(firstErrorMinute);
    report.expectations.push(...report.alerts.map((a) => alertExpectation(a, report.minutes.length)));
    report.ok = !result.stopped && report.expectations.every((e) => e.ok);
    const { readings, failures } = alerts.stats;
    out.write(`\nalerts (${readings} readings of ${prometheus}${failures.length ? `; ${failures.length} failed: ${failures[0]}` : ''}):\n`);
    for (const a of report.alerts) {
      out.write(
        `  ${a.name.padEnd(26)} first firing in minute ${a.firstFiringMinute ?? '-'}, resolved in minute ${a.resolvedMinute ?? '-'}` +
          ` (expected: ${a.expected.firingBy === null ? 'never fires' : `by ${a.expected.firingBy}, resolved by ${a.expected.resolvedBy ?? '-'}`})\n`,
      );
    }
  }
  if (verifier) {
    out.write('\nwaiting for the last spans...\n');
    await shutdownTelemetry();
    const traces = await verifier.summarize();
    await verifier.stop();
    report.traces = traces;
    report.expectations.push(...traceExpectations(traces, report.minutes));
    report.ok = !result.stopped && report.expectations.every((e) => e.ok);
    out.write(
      `traces: ${traces.spans} spans in ${traces.traces} traces from ${traces.services.length} services, deepest ${traces.maxDepth}, ` +
        `coverage ${Object.entries(traces.attributeCoverage)
          .map(([k, v]) => `${k} ${v}`)
          .join(', ')}\n`,
    );
    if (!traces.services.some((s) => s !== 'load-generator')) {
      out.write(
        `traces: no spans from the lab arrived at ${traces.receiver}; start it with OTEL_EXPORTER_OTLP_ENDPOINT=${traces.receiver}\n`,
      );
    }
  }
  out.write(`\n${summaryTable(report.minutes)}\n\n`);
  for (const e of report.expectations) {
    out.write(
      `${e.ok ? 'PASS' : 'FAIL'}  ${e.name}: actual ${e.actual ?? 'n/a'}${e.minute !== null ? ` (minute ${e.minute})` : ''}; expected ${e.expected}\n`,
    );
  }
  if (flags.json) {
    mkdirSync(path.dirname(path.resolve(flags.json)), { recursive: true });
    writeFileSync(flags.json, `${JSON.stringify(report, null, 2)}\n`);
    out.write(`report: ${flags.json}\n`);
  }
  if (flags.out) out.write(`report: ${writeHtml(report, flags.out)}\n`);
  const passed = report.expectations.filter((e) => e.ok).length;
  out.write(
    `${report.ok ? 'OK' : 'FAILED'}: ${passed}/${report.expectations.length} expectations met${result.stopped ? ' (run stopped early)' : ''}\n`,
  );
  return report.ok ? 0 : EXIT_FAILED;
}

/**
 * Before any traffic: one browse whose frontend span must reach the receiver within 10 s.
 * A lab that does not export there fails here, naming the fix, instead of failing its
 * trace checks at the end of the run. The browse carries no baggage (no traffic class)
 * and its trace stays out of the report.
 */
async function preflightTraces(verifier: TraceVerifier, scenario: Scenario, target: string, port: number): Promise<void> {
  const traceId = randomBytes(16).toString('hex');
  const request = scenario.traffic.baseline.request;
  try {
    await fetch(new URL(request.path, target), {
      method: request.method,
      headers: { 'content-type': 'application/json', traceparent: `00-${traceId}-${randomBytes(8).toString('hex')}-01` },
      body: request.body ? JSON.stringify(renderBody(request.body, 0)) : undefined,
      signal: AbortSignal.timeout(10_000),
    });
  } catch (error) {
    await verifier.stop();
    throw new UsageError(`--verify-traces: the test browse to ${target}${request.path} failed (${(error as Error).message})`);
  }
  if (await verifier.waitForTrace(traceId, 'frontend', 10_000)) return;
  await verifier.stop();
  throw new UsageError(
    `--verify-traces: the frontend's span of a test browse did not reach http://localhost:${port} within 10 s: ` +
      'the lab does not export its spans here. Start it with `npm run lab -- --observe` (the collector sends them here too) ' +
      `or with OTEL_EXPORTER_OTLP_ENDPOINT=http://localhost:${port} npm run lab`,
  );
}

async function startVerifier(portText: string): Promise<TraceVerifier> {
  const port = Number(portText);
  if (!Number.isInteger(port) || port < 1 || port > 65535) throw new UsageError(`--otlp-port "${portText}" is not a port number`);
  const verifier = new TraceVerifier();
  try {
    await verifier.start(port);
  } catch (error) {
    throw new UsageError(`cannot listen for traces on port ${port} (${(error as Error).message}); choose another with --otlp-port`);
  }
  process.env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT = `http://127.0.0.1:${port}/v1/traces`;
  process.env.OTEL_EXPORTER_OTLP_TRACES_PROTOCOL = 'http/protobuf';
  process.env.OTEL_METRICS_EXPORTER = 'none';
  process.env.OTEL_LOGS_EXPORTER = 'none';
  process.env.OTEL_BSP_SCHEDULE_DELAY ||= '500';
  return verifier;
}

function program(): Command {
  const env = process.env;
  const cmd = new Command('scenario')
    .description('Black Friday traffic against the lab: open-model arrivals, a line per demo minute, a report and a verdict')
    .addOption(
      new Option('--scenario <name|file>', 'a scenario in services/load-generator/scenarios, or a .yaml/.json file').default(
        'black-friday',
      ),
    )
    .addOption(new Option('--target <url>', "the frontend's base URL").default(env.FRONTEND_URL ?? 'http://localhost:8018'))
    .addOption(new Option('--minute <duration>', 'length of one demo minute (rates stay per real second)').default('60s'))
    .addOption(new Option('--rate-scale <x>', 'multiply every rate').default('1'))
    .addOption(new Option('--timeout <duration>', 'per-request timeout').default('10s'))
    .addOption(new Option('--json <file>', 'write the JSON report'))
    .addOption(new Option('--out <dir>', 'write the HTML report (DIR/index.html)'))
    .addOption(new Option('--verify-traces', "receive the lab's spans over OTLP/HTTP and check them (report.traces)"))
    .addOption(
      new Option(
        '--verify-alerts <prometheus-url>',
        "read the lab's alerts from this Prometheus during the run and check them against the scenario's alerts: section (report.alerts)",
      ),
    )
    .addOption(new Option('--otlp-port <port>', 'where --verify-traces listens (point OTEL_EXPORTER_OTLP_ENDPOINT here)').default('4319'))
    .addOption(new Option('--no-knobs', "do not publish the scenario's knobs to Redis ($REDIS_URL): traffic only, no incident"))
    .showHelpAfterError(false)
    .exitOverride()
    .configureOutput({ writeErr: (text) => process.stderr.write(text.startsWith('error:') ? `scenario: ${text}` : text) })
    .action(async (flags: RunFlags) => {
      process.exitCode = await run(flags);
    });
  const control = (name: string, description: string, method: 'GET' | 'POST', route: string) =>
    cmd
      .command(name)
      .description(description)
      .addOption(new Option('--url <url>', "ask a load-generator service's control API instead of Redis").default(env.LOAD_GENERATOR_URL))
      .action(async (flags: { url?: string }) => {
        const body = flags.url
          ? await controlRequest(parseUrl(flags.url, '--url'), method, route, env.LAB_CONTROL_TOKEN)
          : await sharedState(name === 'stop' ? 'stop' : 'status', env.REDIS_URL ?? DEFAULT_REDIS_URL);
        process.stdout.write(`${JSON.stringify(body, null, 2)}\n`);
      });
  control(
    'status',
    'show the running scenario (any runner sharing this Redis): minute, knobs and the last rows',
    'GET',
    '/scenario/status',
  );
  control('stop', 'stop the running scenario and reset the knobs at once', 'POST', '/scenario/stop');
  return cmd;
}

async function main(): Promise<void> {
  try {
    await program().parseAsync(process.argv);
  } catch (error) {
    if (error instanceof CommanderError) {
      process.exitCode = error.exitCode === 0 ? 0 : EXIT_USAGE;
    } else if (error instanceof UsageError || error instanceof ScenarioError) {
      process.stderr.write(`scenario: ${error.message}\n`);
      process.exitCode = EXIT_USAGE;
    } else {
      process.stderr.write(`scenario: ${(error as Error).message}\n`);
      process.exitCode = EXIT_FAILED;
    }
  } finally {
    await shutdownTelemetry().catch(() => undefined);
  }
  process.exit(process.exitCode ?? 0);
}

void main();
