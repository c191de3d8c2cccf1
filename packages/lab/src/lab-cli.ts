/**
 * `npm run lab`: the lab's services as local processes against DATABASE_URL and
 * REDIS_URL, with prefixed logs, a table of where each listens once all are ready,
 * and everything stopped on Ctrl-C or SIGTERM. With --observe, the observability stack
 * (collector, Prometheus, Jaeger) runs beside them and they export to it.
 */
import { parseArgs } from 'node:util';
import { SERVICE_PORTS, type ServiceName, SHOP_SERVICES, scaledPoolEnv } from '@bfl/contract';
import { minuteLabel } from './alert-rules.js';
import { LabError, rssMiB, startLab } from './lab.js';
import { OBSERVE_PORTS, type ObserveStack, startObserveStack } from './observe.js';

const HELP = `usage: npm run lab [-- --only a,b] [--port-offset N] [--observe [--minute 5s]] [--scale X] [--check] [--quiet]

Starts the lab's services as local processes (built first), waits until every
/ready answers, prints where each listens, and stops them all on Ctrl-C. A service
that exits once the lab is up is started again, after 1 s, doubling to 30 s.

  --only LIST      start only these services (comma-separated)
  --port-offset N  listen on DESIGN.md's ports + N (a second lab beside the first)
  --observe        also run the observability stack as local processes, and export to it:
                   the collector (OTLP on 4317/4318, span metrics), Prometheus (9090, the
                   alert rules) and Jaeger (16686, traces and the Monitor tab's API); spans
                   also reach the scenario runner's --verify-traces receiver (4319). Built
                   from the Go module proxy into the tools cache on first use (minutes).
                   Built from source, Prometheus and Jaeger serve their APIs, not web UIs.
  --minute D       with --observe: the demo-minute length the alert rules are rendered
                   for (default 60s); run the scenario with the same --minute
  --scale X        the story at a fraction of its load, for a machine too slow or too busy
                   for the full one: the story's database pools (checkout, recommendation;
                   4 each) sized by X (0.25, 0.5 or 0.75); run the scenario with the same
                   --rate-scale X, and every queue is as full as at full scale
  --check          stop again once everything is ready (exit 0 when the lab starts)
  --quiet          do not print the services' log lines
  -h, --help       this text

Environment: DATABASE_URL, REDIS_URL, OTEL_EXPORTER_OTLP_ENDPOINT (optional; --observe sets it), LOG_LEVEL.`;

/** \`500ms\`, \`5s\`, \`1m\` (or bare seconds) in ms. */
function parseMinute(text: string): number {
  const match = /^(\d+(?:\.\d+)?)(ms|s|m)?$/.exec(text.trim());
  if (!match) throw new Error(`--minute "${text}" is not a duration (e.g. 5s, 60s, 1m)`);
  const unit = match[2] ?? 's';
  const ms = Math.round(Number(match[1]) * (unit === 'ms' ? 1 : unit === 's' ? 1_000 : 60_000));
  if (ms < 1_000) throw new Error(`--minute "${text}" must be at least 1s`);
  return ms;
}

const COLORS = [31, 32, 33, 34, 35, 36, 91, 92, 93, 94, 95, 96];

async function run(): Promise<number> {
  let args: ReturnType<typeof parse>;
  try {
    args = parse();
  } catch (error) {
    process.stderr.write(`lab: ${(error as Error).message}\n${HELP}\n`);
    return 2;
  }
  if (args.values.help) {
    process.stdout.write(`${HELP}\n`);
    return 0;
  }
  const known = new Set<string>(SHOP_SERVICES);
  const only = args.values.only
    ?.split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  const unknown = only?.filter((name) => !known.has(name)) ?? [];
  if (unknown.length) {
    process.stderr.write(`lab: unknown service ${unknown.join(', ')}; known: ${[...known].join(', ')}\n`);
    return 2;
  }
  const services = (only ?? SHOP_SERVICES) as ServiceName[];
  const offset = Number(args.values['port-offset']);
  if (!Number.isInteger(offset) || offset < 0 || offset > 50_000) {
    process.stderr.write(`lab: --port-offset must be a whole number from 0 to 50000, got ${args.values['port-offset']}\n`);
    return 2;
  }
  let minuteMs = 60_000;
  let scale = 1;
  let poolEnv: Record<string, string> = {};
  try {
    if (args.values.minute !== undefined) {
      if (!args.values.observe) throw new Error('--minute goes with --observe (it sets the length the alert rules are rendered for)');
      minuteMs = parseMinute(args.values.minute);
    }
    if (args.values.scale !== undefined) {
      scale = Number(args.values.scale);
      try {
        poolEnv = scaledPoolEnv(scale);
      } catch (error) {
        throw new Error(`--scale "${args.values.scale}": ${(error as Error).message}`);
      }
    }
  } catch (error) {
    process.stderr.write(`lab: ${(error as Error).message}\n`);
    return 2;
  }
  const ports = Object.fromEntries(services.map((name) => [name, SERVICE_PORTS[name] + offset]));
  const width = Math.max(...services.map((s) => s.length));
  const tty = process.stdout.isTTY;
  const prefix = (name: ServiceName) => {
    const label = name.padEnd(width);
    const color = COLORS[services.indexOf(name) % COLORS.length];
    return tty ? `\x1b[${color}m${label}\x1b[0m |` : `${label} |`;
  };

  let stack: ObserveStack | undefined;
  if (args.values.observe) {
    try {
      stack = await startObserveStack({ minuteMs, onProgress: (line) => process.stdout.write(`${line}\n`) });
    } catch (error) {
      process.stderr.write(`lab: ${error instanceof LabError ? error.message : (error as Error).stack}\n`);
      return 1;
    }
  }
  process.stdout.write(`lab: starting ${services.length} services...\n`);
  let lab: Awaited<ReturnType<typeof startLab>>;
  try {
    lab = await startLab({
      services,
      ports,
      env: { ...stack?.serviceEnv, ...poolEnv },
      onLine: (name, line) => {
        if (!args.values.quiet) process.stdout.write(`${prefix(name)} ${line}\n`);
      },
      // A service that exits is started again (backoff 1 s doubling to 30 s): one line each time.
      onLog: (line) => process.stdout.write(`${line}\n`),
    });
  } catch (error) {
    process.stderr.write(`lab: ${error instanceof LabError ? error.message : (error as Error).stack}\n`);
    await stack?.stop();
    return 1;
  }
  const stopAll = async () => {
    await lab.stop();
    await stack?.stop();
  };

  const rows = lab.processes.map((p) => ({ ...p, rss: rssMiB(p.pid) }));
  const scaleFlag = scale === 1 ? '' : ` --rate-scale ${scale}`;
  const totalRss = rows.reduce((sum, r) => sum + (r.rss ?? 0), 0);
  const lines = [
    '',
    `lab: all ${rows.length} services ready in ${(lab.startMs / 1000).toFixed(1)} s`,
    '',
    `  ${'service'.padEnd(width)}  ${'url'.padEnd(22)}  ${'pid'.padStart(7)}  ${'ready'.padStart(7)}  ${'rss'.padStart(8)}`,
    ...rows.map(
      (r) =>
        `  ${r.name.padEnd(width)}  ${r.url.padEnd(22)}  ${String(r.pid).padStart(7)}  ${`${((r.readyMs ?? 0) / 1000).toFixed(1)} s`.padStart(7)}  ${r.rss === undefined ? '       -' : `${r.rss.toFixed(0)} MiB`.padStart(8)}`,
    ),
    `  ${'total'.padEnd(width)}  ${''.padEnd(22)}  ${''.padStart(7)}  ${''.padStart(7)}  ${`${totalRss.toFixed(0)} MiB`.padStart(8)}`,
    '',
    ...(stack
      ? [
          `lab: observability stack (alert rules rendered for ${minuteLabel(minuteMs)} demo minutes; logs in ${stack.dir})`,
          ...stack.processes.map((p) => `  ${p.name.padEnd(14)}  ${p.url.padEnd(22)}  ${String(p.pid).padStart(7)}  ${p.log}`),
          `  ${'verify-traces'.padEnd(14)}  ${`http://localhost:${OBSERVE_PORTS.verify}`.padEnd(22)}  (npm run scenario -- --verify-traces listens here)`,
          '',
          `lab: run the story with  npm run scenario -- --minute ${minuteLabel(minuteMs)}${scaleFlag} --verify-traces --verify-alerts http://localhost:${OBSERVE_PORTS.prometheus}`,
          "     (Prometheus and Jaeger built from source serve their APIs, not web UIs: the scenario's --out report is the visual here)",
          '',
        ]
      : []),
    ...(scale !== 1
      ? [
          `lab: the story's pools at ${scale}x (${Object.entries(poolEnv)
            .map(([name, size]) => `${name}=${size}`)
            .join(', ')}): run the scenario with --rate-scale ${scale}`,
          '',
        ]
      : []),
    args.values.check
      ? 'lab: --check given, stopping'
      : services.includes('frontend')
        ? `lab: try  curl -XPOST ${lab.url('frontend')}/api/browse  -- Ctrl-C stops everything`
        : 'lab: Ctrl-C stops everything',
    '',
  ];
  process.stdout.write(`${lines.join('\n')}\n`);

  if (args.values.check) {
    await stopAll();
    return 0;
  }
  const signalled = new Promise<string>((resolve) => {
    process.once('SIGINT', () => resolve('SIGINT'));
    process.once('SIGTERM', () => resolve('SIGTERM'));
  });
  // A shop service that exits is restarted by the lab (see onLog above); the observability
  // stack is not, so its exit stops everything.
  const outcome = await Promise.race([
    signalled.then((signal) => ({ signal })),
    ...(stack ? [stack.exited.then((exit) => ({ exit }))] : []),
  ]);
  if ('exit' in outcome) {
    process.stderr.write(`lab: ${outcome.exit.name} exited (code ${outcome.exit.code}); stopping the others\n`);
    await stopAll();
    return 1;
  }
  process.stdout.write(`\nlab: ${outcome.signal}: stopping ${rows.length} services${stack ? ' and the observability stack' : ''}...\n`);
  await stopAll();
  process.stdout.write('lab: stopped\n');
  return 0;
}

function parse() {
  return parseArgs({
    options: {
      only: { type: 'string' },
      'port-offset': { type: 'string', default: '0' },
      check: { type: 'boolean', default: false },
      observe: { type: 'boolean', default: false },
      minute: { type: 'string' },
      scale: { type: 'string' },
      quiet: { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
    strict: true,
    allowPositionals: false,
  });
}

run().then((code) => process.exit(code));
