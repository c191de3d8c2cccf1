/**
 * The lab's collector (otelcol-lab, built by scripts/build-collector.sh) for tests: its
 * path, a clean environment, and a running instance on free ports.
 */
import { execFileSync, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { freePort } from './support.js';

const ROOT = resolve(__dirname, '..');
export const COLLECTOR_CONFIG = join(ROOT, 'otel-collector/config.yaml');
export const CORALOGIX_OVERLAY = join(ROOT, 'otel-collector/coralogix.yaml');
const BINARY = execFileSync('bash', [join(ROOT, 'scripts/build-collector.sh'), '--print-path'], { encoding: 'utf8' }).trim();

/** The collector binary; a missing one fails the test (never skips it). */
export function collector(): string {
  if (!existsSync(BINARY)) {
    throw new Error(`The lab's collector is not built (${BINARY} is missing): run npm run test-tools (or bash scripts/build-collector.sh)`);
  }
  return BINARY;
}

/** The environment without any CORALOGIX_* or collector endpoint override of the caller's. */
export function cleanEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env = Object.fromEntries(
    Object.entries(process.env).filter(
      ([name]) =>
        !name.startsWith('CORALOGIX_') &&
        !['OTLP_GRPC_ENDPOINT', 'OTLP_HTTP_ENDPOINT', 'HEALTH_ENDPOINT', 'TRACE_UI_OTLP_ENDPOINT', 'DEPLOYMENT_ENVIRONMENT'].includes(name),
    ),
  );
  return { ...env, ...extra };
}

export interface RunningCollector {
  /** OTLP/HTTP base URL (point OTEL_EXPORTER_OTLP_ENDPOINT here). */
  httpEndpoint: string;
  output: () => string;
  stop: () => Promise<void>;
}

/** Starts the collector with config.yaml on free ports and waits until its health check answers. */
export async function startCollector(env: Record<string, string>, configs = [COLLECTOR_CONFIG]): Promise<RunningCollector> {
  const binary = collector();
  const [grpc, http, health] = [await freePort(), await freePort(), await freePort()];
  let output = '';
  const child = spawn(
    binary,
    configs.map((c) => `--config=${c}`),
    {
      env: cleanEnv({
        OTLP_GRPC_ENDPOINT: `127.0.0.1:${grpc}`,
        OTLP_HTTP_ENDPOINT: `127.0.0.1:${http}`,
        HEALTH_ENDPOINT: `127.0.0.1:${health}`,
        ...env,
      }),
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  child.stdout.on('data', (chunk) => (output += chunk));
  child.stderr.on('data', (chunk) => (output += chunk));
  const exited = new Promise<void>((done) => {
    child.once('exit', () => done());
    child.once('error', (error) => {
      output += `${error}\n`;
      done();
    });
  });
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), 5_000);
    await exited;
    clearTimeout(timer);
  };

  // Ready when the health_check extension answers 200 (it does once the pipelines run).
  const deadline = Date.now() + 15_000;
  for (;;) {
    if (child.exitCode !== null || child.signalCode !== null) {
      throw new Error(`otelcol-lab exited (${child.exitCode ?? child.signalCode}):\n${output}`);
    }
    const status = await fetch(`http://127.0.0.1:${health}/`).then(
      (response) => response.status,
      () => 0,
    );
    if (status === 200) break;
    if (Date.now() > deadline) {
      await stop();
      throw new Error(`otelcol-lab is not healthy after 15 s (last status ${status}):\n${output}`);
    }
    await new Promise((done) => setTimeout(done, 100));
  }
  return { httpEndpoint: `http://127.0.0.1:${http}`, output: () => output, stop };
}
