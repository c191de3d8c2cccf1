/**
 * `npm run lab -- --observe`: the lab's observability stack as local processes, beside the
 * services: the lab's collector (span metrics), Prometheus (the alert rules rendered for
 * the run's demo-minute length) and Jaeger v2 (traces, and its Monitor tab reading the span
 * metrics from Prometheus). The binaries are built from the Go module proxy into the tools
 * cache by the project's scripts (scripts/build-collector.sh, scripts/build-go-tools.sh);
 * built from source, Prometheus and Jaeger serve their HTTP APIs but not their web UIs.
 */
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { once } from 'node:events';
import { copyFileSync, createWriteStream, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import { minuteLabel, renderRules } from './alert-rules.js';
import { LabError, portFree, REPO_ROOT } from './lab.js';

const run = promisify(execFile);

/** Where the stack listens (all on 127.0.0.1). */
export const OBSERVE_PORTS = {
  /** The collector's OTLP/gRPC and OTLP/HTTP receivers: the services export here. */
  collectorGrpc: 4317,
  collectorHttp: 4318,
  collectorHealth: 13133,
  /** Jaeger's UI port (its HTTP API here: built from source it has no web UI). */
  jaegerQuery: 16686,
  jaegerQueryGrpc: 16685,
  /** Jaeger's own OTLP input, fed by the collector (4317/4318 are the collector's). */
  jaegerOtlpGrpc: 4327,
  jaegerOtlpHttp: 4328,
  jaegerHealth: 13134,
  prometheus: 9090,
  /** The scenario runner's --verify-traces receiver: the collector also sends spans here. */
  verify: 4319,
} as const;

export interface ObserveOptions {
  /** The demo-minute length the alert rules are rendered for. */
  minuteMs: number;
  /** Progress lines (building, starting). */
  onProgress?: (line: string) => void;
  /** Other ports than OBSERVE_PORTS (tests run a stack beside a developer's). */
  ports?: Partial<ObservePorts>;
  /** More collector configuration files, merged over config.yaml and observe.yaml in order. */
  collectorConfigs?: string[];
  /** More environment for the collector (what those files read). */
  collectorEnv?: Record<string, string>;
}

export type ObservePorts = Record<keyof typeof OBSERVE_PORTS, number>;

export interface ObserveProcess {
  name: 'prometheus' | 'jaeger' | 'otel-collector';
  pid: number;
  url: string;
  log: string;
}

export interface ObserveStack {
  processes: ObserveProcess[];
  ports: ObservePorts;
  /** Laid over the services' environment: export to the collector, every second. */
  serviceEnv: Record<string, string>;
  /** Where its logs, rendered rules and Prometheus's data are. */
  dir: string;
  stop: () => Promise<void>;
  /** Resolves with the first stack process that exits while it runs. */
  exited: Promise<{ name: string; code: number | null }>;
}

const script = (name: string) => path.join(REPO_ROOT, 'scripts', name);

/** Builds what is missing (minutes the first time) and returns the three binaries. */
async function observeBinaries(
  onProgress: (line: string) => void = () => {},
): Promise<Record<'collector' | 'prometheus' | 'jaeger', string>> {
  onProgress('observe: checking the collector, Prometheus and Jaeger in the tools cache (the first build takes several minutes)...');
  const bash = async (file: string, args: string[]) => {
    try {
      return (await run('bash', [script(file), ...args], { maxBuffer: 16 * 1024 * 1024 })).stdout;
    } catch (error) {
      const e = error as { stderr?: string; message: string };
      throw new LabError(`scripts/${file} ${args.join(' ')} failed:\n${(e.stderr ?? e.message).trim()}`);
    }
  };
  const collector = (await bash('build-collector.sh', [])).trim().split('\n').at(-1) ?? '';
  const tools = await bash('build-go-tools.sh', ['prometheus', 'jaeger']);
  const pathOf = (tool: string) => new RegExp(`^${tool}: (.+)$`, 'm').exec(tools)?.[1] ?? '';
  return { collector, prometheus: pathOf('prometheus'), jaeger: pathOf('jaeger') };
}

async function waitHealthy(url: string, child: ChildProcess, name: string, log: string, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (child.exitCode !== null || child.signalCode !== null)
      throw new LabError(`${name} exited (${child.exitCode ?? child.signalCode}) while starting; see ${log}`);
    const status = await fetch(url, { signal: AbortSignal.timeout(1_000) }).then(
      (r) => r.status,
      () => 0,
    );
    if (status === 200) return;
    if (Date.now() > deadline)
      throw new LabError(`${name} is not healthy after ${timeoutMs / 1000} s (${url} answered ${status || 'nothing'}); see ${log}`);
    await sleep(200);
  }
}

/** Starts Prometheus, Jaeger and the collector (in that order) and waits until each is healthy. */
export async function startObserveStack(options: ObserveOptions): Promise<ObserveStack> {
  const progress = options.onProgress ?? (() => {});
  const ports: ObservePorts = { ...OBSERVE_PORTS, ...options.ports };
  const busy: string[] = [];
  for (const [what, port] of Object.entries(ports)) if (!(await portFree(port))) busy.push(`${what} (:${port})`);
  if (busy.length)
    throw new LabError(`--observe needs these ports, which are in use: ${busy.join(', ')}; is another lab or stack running?`);

  const bins = await observeBinaries(progress);
  const dir = mkdtempSync(path.join(tmpdir(), 'bfl-observe-'));
  const minute = minuteLabel(options.minuteMs);

  // Prometheus: the shipped configuration beside the rules rendered for this minute length.
  const promDir = path.join(dir, 'prometheus');
  mkdirSync(promDir);
  copyFileSync(path.join(REPO_ROOT, 'observability/prometheus/prometheus.yml'), path.join(promDir, 'prometheus.yml'));
  writeFileSync(path.join(promDir, 'black-friday.rules.yaml'), renderRules(options.minuteMs));

  const children: { name: ObserveProcess['name']; child: ChildProcess }[] = [];
  let stopping = false;
  let reportExit!: (exit: { name: string; code: number | null }) => void;
  const exited = new Promise<{ name: string; code: number | null }>((resolve) => {
    reportExit = resolve;
  });
  const stop = async () => {
    stopping = true;
    // The collector first (it flushes into Prometheus and Jaeger), then the backends.
    for (const { child } of [...children].reverse()) {
      if (child.exitCode !== null || child.signalCode !== null) continue;
      const gone = once(child, 'exit');
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
      await gone;
      clearTimeout(timer);
    }
    rmSync(path.join(promDir, 'data'), { recursive: true, force: true });
  };
  const start = (name: ObserveProcess['name'], binary: string, args: string[], env: Record<string, string>) => {
    const log = path.join(dir, `${name}.log`);
    const out = createWriteStream(log);
    const child = spawn(binary, args, {
      env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: process.env.HOME ?? dir, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    child.stdout?.pipe(out);
    child.stderr?.pipe(out);
    child.on('exit', (code) => {
      if (!stopping) reportExit({ name, code });
    });
    children.push({ name, child });
    return { child, log };
  };

  const local = (port: number) => `127.0.0.1:${port}`;
  const processes: ObserveProcess[] = [];
  try {
    progress(`observe: starting Prometheus (rules rendered for ${minute} demo minutes)...`);
    const prometheus = start(
      'prometheus',
      bins.prometheus,
      [
        `--config.file=${path.join(promDir, 'prometheus.yml')}`,
        `--storage.tsdb.path=${path.join(promDir, 'data')}`,
        `--web.listen-address=${local(ports.prometheus)}`,
        '--web.enable-otlp-receiver',
        '--enable-feature=exemplar-storage',
        '--storage.tsdb.retention.time=1d',
      ],
      {},
    );
    await waitHealthy(`http://${local(ports.prometheus)}/-/ready`, prometheus.child, 'prometheus', prometheus.log);
    processes.push({
      name: 'prometheus',
      pid: prometheus.child.pid ?? -1,
      url: `http://localhost:${ports.prometheus}`,
      log: prometheus.log,
    });

    progress('observe: starting Jaeger...');
    const jaeger = start('jaeger', bins.jaeger, [`--config=${path.join(REPO_ROOT, 'observability/jaeger/config.yaml')}`], {
      JAEGER_OTLP_GRPC_ENDPOINT: local(ports.jaegerOtlpGrpc),
      JAEGER_OTLP_HTTP_ENDPOINT: local(ports.jaegerOtlpHttp),
      JAEGER_QUERY_HTTP_ENDPOINT: local(ports.jaegerQuery),
      JAEGER_QUERY_GRPC_ENDPOINT: local(ports.jaegerQueryGrpc),
      JAEGER_HEALTH_ENDPOINT: local(ports.jaegerHealth),
      JAEGER_PROMETHEUS_URL: `http://${local(ports.prometheus)}`,
    });
    await waitHealthy(`http://${local(ports.jaegerQuery)}/api/services`, jaeger.child, 'jaeger', jaeger.log);
    processes.push({ name: 'jaeger', pid: jaeger.child.pid ?? -1, url: `http://localhost:${ports.jaegerQuery}`, log: jaeger.log });

    progress('observe: starting the collector...');
    const collector = start(
      'otel-collector',
      bins.collector,
      [
        `--config=${path.join(REPO_ROOT, 'otel-collector/config.yaml')}`,
        `--config=${path.join(REPO_ROOT, 'otel-collector/observe.yaml')}`,
        ...(options.collectorConfigs ?? []).map((file) => `--config=${file}`),
      ],
      {
        ...options.collectorEnv,
        OTLP_GRPC_ENDPOINT: local(ports.collectorGrpc),
        OTLP_HTTP_ENDPOINT: local(ports.collectorHttp),
        HEALTH_ENDPOINT: local(ports.collectorHealth),
        TRACE_UI_OTLP_ENDPOINT: `http://${local(ports.jaegerOtlpHttp)}`,
        PROMETHEUS_OTLP_ENDPOINT: `http://${local(ports.prometheus)}/api/v1/otlp`,
        VERIFY_OTLP_ENDPOINT: `http://${local(ports.verify)}`,
        SPANMETRICS_FLUSH_INTERVAL: '1s',
        // Spans and points wait at most 200 ms in the batch processor: every step from a
        // span's end to an alert's state (service export, batch, connector flush,
        // Prometheus, rule evaluation) eats into a 5 s demo minute.
        BATCH_TIMEOUT: '200ms',
        // Three demo minutes (at least 15 s): a minute's series live on while the
        // rules' windows still read them, and no longer.
        SPANMETRICS_SERIES_EXPIRATION: `${Math.max(15, Math.round((3 * options.minuteMs) / 1000))}s`,
        DEPLOYMENT_ENVIRONMENT: 'local',
      },
    );
    await waitHealthy(`http://${local(ports.collectorHealth)}/`, collector.child, 'otel-collector', collector.log);
    processes.push({
      name: 'otel-collector',
      pid: collector.child.pid ?? -1,
      url: `http://localhost:${ports.collectorHttp}`,
      log: collector.log,
    });
  } catch (error) {
    await stop();
    throw error;
  }

  return {
    processes,
    ports,
    dir,
    serviceEnv: {
      OTEL_EXPORTER_OTLP_ENDPOINT: `http://localhost:${ports.collectorHttp}`,
      OTEL_EXPORTER_OTLP_PROTOCOL: 'http/protobuf',
      // A point per second: the pool gauges behind CheckoutDbPoolExhausted, even at 5 s minutes.
      OTEL_METRIC_EXPORT_INTERVAL: '1000',
      OTEL_BSP_SCHEDULE_DELAY: '250',
    },
    stop,
    exited,
  };
}
