import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { setTimeout as sleep } from 'node:timers/promises';
import { SERVICE_PORTS, type ServiceName, urlVariable } from './services.js';

/** The repository root, seen from services/kit/dist. */
export const REPO_ROOT = path.resolve(__dirname, '../../..');

/**
 * V8 flags every service runs with, here and in the image (Dockerfile's CMD; the Compose
 * test checks they agree). A young generation of 2 MB semi-spaces instead of V8's 16 MB:
 * the services' garbage is small and short-lived, and the bigger default only holds
 * memory. Measured on the lab: 1.44 GiB -> 1.05 GiB after a warm-up minute, 1.85 ->
 * 1.29 GiB after the 5 s story, with the same CPU time and latency.
 */
export const SERVICE_NODE_FLAGS = ['--max-semi-space-size=2'] as const;

export interface LabOptions {
  services: ServiceName[];
  /** Laid over process.env for every service. */
  env?: Record<string, string | undefined>;
  /** Ports to use instead of DESIGN.md's (tests run a second lab beside a running one). */
  ports?: Partial<Record<ServiceName, number>>;
  /** Receives every output line of every service. */
  onLine?: (service: ServiceName, line: string, stream: 'stdout' | 'stderr') => void;
  /** How long to wait for every /ready. */
  readyTimeoutMs?: number;
}

export interface LabProcess {
  name: ServiceName;
  port: number;
  url: string;
  pid: number;
  readyMs?: number;
}

export interface Lab {
  processes: LabProcess[];
  /** Milliseconds from the first spawn until the last /ready answered 200. */
  startMs: number;
  url: (service: ServiceName) => string;
  /** SIGTERM to all, wait for them to exit (SIGKILL after graceMs). Idempotent. */
  stop: (graceMs?: number) => Promise<void>;
  /** Resolves with the first service that exits while the lab runs. */
  exited: Promise<{ name: ServiceName; code: number | null; signal: NodeJS.Signals | null }>;
}

export class LabError extends Error {}

/** Resident memory of a process in MiB, from /proc (Linux); undefined elsewhere. */
export function rssMiB(pid: number): number | undefined {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const kb = /VmRSS:\s+(\d+)/.exec(status)?.[1];
    return kb ? Number(kb) / 1024 : undefined;
  } catch {
    return undefined;
  }
}

/** A process's CPU time so far, user + system, in seconds (Linux, from /proc; 10 ms ticks). */
export function cpuSeconds(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

/** Resolves when nothing listens on the port. */
export async function portFree(port: number): Promise<boolean> {
  const server = createServer();
  try {
    server.listen(port, '0.0.0.0');
    await once(server, 'listening');
    return true;
  } catch {
    return false;
  } finally {
    server.close();
  }
}

async function ready(url: string): Promise<{ ok: boolean; detail: string }> {
  try {
    const response = await fetch(`${url}/ready`, { signal: AbortSignal.timeout(2_500) });
    return { ok: response.ok, detail: await response.text() };
  } catch (error) {
    return { ok: false, detail: ((error as Error).cause as Error | undefined)?.message ?? (error as Error).message };
  }
}

/**
 * Starts services as local processes (compiled entry point, telemetry preloaded),
 * exactly as their images do, and waits until every /ready answers.
 */
export async function startLab(options: LabOptions): Promise<Lab> {
  const ports = Object.fromEntries(options.services.map((name) => [name, options.ports?.[name] ?? SERVICE_PORTS[name]])) as Record<
    ServiceName,
    number
  >;
  const busy: string[] = [];
  for (const name of options.services) if (!(await portFree(ports[name]))) busy.push(`${name} (:${ports[name]})`);
  if (busy.length) throw new LabError(`ports in use: ${busy.join(', ')}; is the lab already running?`);

  const preload = require.resolve('@bfl/kit/telemetry');
  const urls: Record<string, string> = {};
  for (const name of Object.keys(SERVICE_PORTS) as ServiceName[]) {
    urls[urlVariable(name)] = `http://localhost:${ports[name] ?? SERVICE_PORTS[name]}`;
  }

  const children = new Map<ServiceName, ChildProcess>();
  let stopping = false;
  let reportExit!: (exit: { name: ServiceName; code: number | null; signal: NodeJS.Signals | null }) => void;
  const exited = new Promise<{ name: ServiceName; code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    reportExit = resolve;
  });

  const stop = async (graceMs = 15_000) => {
    stopping = true;
    const alive = [...children.values()].filter((child) => child.exitCode === null && child.signalCode === null);
    await Promise.all(
      alive.map(async (child) => {
        const gone = once(child, 'exit');
        child.kill('SIGTERM');
        const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
        await gone;
        clearTimeout(timer);
      }),
    );
  };

  const started = performance.now();
  for (const name of options.services) {
    const entry = path.join(REPO_ROOT, 'services', name, 'dist', 'main.js');
    if (!existsSync(entry)) {
      await stop();
      throw new LabError(`${entry} is missing: run "npm run build" first`);
    }
    const child = spawn(process.execPath, [...SERVICE_NODE_FLAGS, '--require', preload, entry], {
      cwd: path.join(REPO_ROOT, 'services', name),
      env: {
        ...process.env,
        ...urls,
        OTEL_SERVICE_NAME: name,
        ...options.env,
        PORT: String(ports[name]),
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    children.set(name, child);
    for (const stream of ['stdout', 'stderr'] as const) {
      createInterface({ input: child[stream] }).on('line', (line) => options.onLine?.(name, line, stream));
    }
    child.on('exit', (code, signal) => {
      if (!stopping) reportExit({ name, code, signal });
    });
  }

  const processes: LabProcess[] = options.services.map((name) => ({
    name,
    port: ports[name],
    url: `http://localhost:${ports[name]}`,
    pid: children.get(name)?.pid ?? -1,
  }));
  const deadline = started + (options.readyTimeoutMs ?? 60_000);
  let crashed: { name: ServiceName; code: number | null } | undefined;
  void exited.then((exit) => {
    crashed = exit;
  });
  for (;;) {
    const pending = processes.filter((p) => p.readyMs === undefined);
    if (!pending.length) break;
    if (crashed) {
      await stop();
      throw new LabError(`${crashed.name} exited with code ${crashed.code} before it was ready (see its log lines above)`);
    }
    const results = await Promise.all(pending.map(async (p) => ({ p, result: await ready(p.url) })));
    for (const { p, result } of results) if (result.ok) p.readyMs = Math.round(performance.now() - started);
    if (performance.now() > deadline) {
      const failing = results.filter((r) => !r.result.ok).map((r) => `${r.p.name}: ${r.result.detail}`);
      await stop();
      throw new LabError(`not ready after ${options.readyTimeoutMs ?? 60_000} ms:\n  ${failing.join('\n  ')}`);
    }
    if (results.some((r) => !r.result.ok)) await sleep(100);
  }
  return {
    processes,
    startMs: Math.round(performance.now() - started),
    url: (service) => `http://localhost:${ports[service]}`,
    stop,
    exited,
  };
}
