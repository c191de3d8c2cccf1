import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { setTimeout as sleep } from 'node:timers/promises';
import { SERVICE_PORTS, type ServiceName, urlVariable } from '@bfl/contract';
import { errorCause } from '@bfl/kit/errors';

/** The repository root, seen from packages/lab/dist. */
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
  /**
   * What happens when a service exits on its own once the lab is up: by default it is
   * started again after a backoff that doubles from `initialMs` (1 s) to `maxMs` (30 s),
   * and is back at `initialMs` once the service has run for `maxMs`. `false`: left down.
   */
  restart?: false | { initialMs?: number; maxMs?: number };
  /** Receives the lab's own lines (a service exited, restarts, is ready again); default stderr. */
  onLog?: (line: string) => void;
  /** Called each time a service exits on its own (before any restart). */
  onExit?: (exit: LabExit) => void;
}

export interface LabExit {
  name: ServiceName;
  code: number | null;
  signal: NodeJS.Signals | null;
  /** When it will be started again (ms from now), or undefined when it is left down. */
  restartInMs?: number;
}

export interface LabProcess {
  name: ServiceName;
  port: number;
  url: string;
  /** The current process (it changes when the lab restarts the service). */
  pid: number;
  readyMs?: number;
  /** How often the lab has started the service again after it exited. */
  restarts: number;
}

export interface Lab {
  processes: LabProcess[];
  /** Milliseconds from the first spawn until the last /ready answered 200. */
  startMs: number;
  url: (service: ServiceName) => string;
  /** SIGTERM to all, wait for them to exit (SIGKILL after graceMs). Idempotent. */
  stop: (graceMs?: number) => Promise<void>;
  /**
   * Resolves with the first service that exits on its own while the lab runs (the lab
   * restarts it unless `restart: false`; `onExit` hears of every exit).
   */
  exited: Promise<LabExit>;
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
    return { ok: false, detail: errorCause(error) };
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

  const preload = require.resolve('@bfl/telemetry/preload');
  const urls: Record<string, string> = {};
  for (const name of Object.keys(SERVICE_PORTS) as ServiceName[]) {
    urls[urlVariable(name)] = `http://localhost:${ports[name] ?? SERVICE_PORTS[name]}`;
  }

  const children = new Map<ServiceName, ChildProcess>();
  const restartTimers = new Set<NodeJS.Timeout>();
  let stopping = false;
  let up = false;
  let reportExit!: (exit: LabExit) => void;
  const exited = new Promise<LabExit>((resolve) => {
    reportExit = resolve;
  });
  const log = options.onLog ?? ((line: string) => process.stderr.write(`${line}\n`));
  const restart = options.restart === false ? undefined : { initialMs: 1_000, maxMs: 30_000, ...options.restart };
  const backoff = new Map<ServiceName, number>();
  let crashed: { name: ServiceName; code: number | null } | undefined;
  /** Each service's last output lines, quoted when it exits before it is ready. */
  const lastLines = new Map<ServiceName, string[]>();
  const crashReport = (what: string) => {
    const { name, code } = crashed!;
    const lines = lastLines.get(name) ?? [];
    const quoted = lines.length ? `; its last output:\n${lines.join('\n')}` : '; it wrote nothing';
    return `${name} exited with code ${code} before ${what}${quoted}`;
  };

  const stop = async (graceMs = 15_000) => {
    stopping = true;
    for (const timer of restartTimers) clearTimeout(timer);
    restartTimers.clear();
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

  const processes: LabProcess[] = options.services.map((name) => ({
    name,
    port: ports[name],
    url: `http://localhost:${ports[name]}`,
    pid: -1,
    restarts: 0,
  }));
  const entryOf = (name: ServiceName) => path.join(REPO_ROOT, 'services', name, 'dist', 'main.js');

  /** After a restart: one line when the service answers /ready again. */
  const announceReady = async (p: LabProcess, child: ChildProcess, since: number) => {
    while (!stopping && child.exitCode === null && child.signalCode === null) {
      if ((await ready(p.url)).ok) {
        if (!stopping && children.get(p.name) === child)
          log(`lab: ${p.name} ready again ${((performance.now() - since) / 1000).toFixed(1)} s after it exited`);
        return;
      }
      await sleep(100);
    }
  };

  const spawnService = (name: ServiceName) => {
    const child = spawn(process.execPath, [...SERVICE_NODE_FLAGS, '--require', preload, entryOf(name)], {
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
    const spawnedAt = performance.now();
    const p = processes.find((candidate) => candidate.name === name)!;
    p.pid = child.pid ?? -1;
    children.set(name, child);
    for (const stream of ['stdout', 'stderr'] as const) {
      createInterface({ input: child[stream] }).on('line', (line) => {
        const kept = lastLines.get(name) ?? [];
        kept.push(line);
        if (kept.length > 10) kept.shift();
        lastLines.set(name, kept);
        options.onLine?.(name, line, stream);
      });
    }
    child.on('exit', (code, signal) => {
      if (stopping) return;
      const how = signal ? `signal ${signal}` : `code ${code}`;
      if (!up || !restart) {
        crashed ??= { name, code };
        if (up) log(`lab: ${name} exited (${how}); not restarting it`);
        options.onExit?.({ name, code, signal });
        reportExit({ name, code, signal });
        return;
      }
      // A service that ran for a while before exiting starts over at the shortest wait.
      const ranMs = performance.now() - spawnedAt;
      const delay = ranMs >= restart.maxMs ? restart.initialMs : (backoff.get(name) ?? restart.initialMs);
      backoff.set(name, Math.min(delay * 2, restart.maxMs));
      log(
        `lab: ${name} exited unexpectedly (${how}) after ${(ranMs / 1000).toFixed(1)} s; restarting it in ${(delay / 1000).toFixed(1)} s`,
      );
      options.onExit?.({ name, code, signal, restartInMs: delay });
      reportExit({ name, code, signal, restartInMs: delay });
      const at = performance.now();
      const timer = setTimeout(() => {
        restartTimers.delete(timer);
        if (stopping) return;
        p.restarts++;
        const next = spawnService(name);
        log(`lab: ${name} restarted (pid ${next.pid}, restart ${p.restarts})`);
        void announceReady(p, next, at);
      }, delay);
      restartTimers.add(timer);
    });
    return child;
  };

  const started = performance.now();
  for (const name of options.services) {
    if (!existsSync(entryOf(name))) {
      await stop();
      throw new LabError(`${entryOf(name)} is missing: run "npm run build" first`);
    }
    spawnService(name);
  }

  const deadline = started + (options.readyTimeoutMs ?? 60_000);
  for (;;) {
    const pending = processes.filter((p) => p.readyMs === undefined);
    if (!pending.length) break;
    if (crashed) {
      await stop();
      throw new LabError(crashReport('it was ready'));
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
  if (crashed) {
    await stop();
    throw new LabError(crashReport('the lab was ready'));
  }
  up = true;
  return {
    processes,
    startMs: Math.round(performance.now() - started),
    url: (service) => `http://localhost:${ports[service]}`,
    stop,
    exited,
  };
}

/**
 * The other processes on this machine that use CPU right now (sampled over `ms`), busiest
 * first: for a test that times the host, what else was running when it started.
 */
export async function busyProcesses(ms = 1_000, minShare = 0.05): Promise<string[]> {
  const sample = () => {
    const seconds = new Map<number, number>();
    for (const entry of readdirSync('/proc')) {
      if (!/^\d+$/.test(entry) || Number(entry) === process.pid) continue;
      try {
        seconds.set(Number(entry), cpuSeconds(Number(entry)));
      } catch {
        // exited meanwhile
      }
    }
    return seconds;
  };
  const before = sample();
  await new Promise((resolve) => setTimeout(resolve, ms));
  const busy: { share: number; line: string }[] = [];
  for (const [pid, seconds] of sample()) {
    const share = (seconds - (before.get(pid) ?? seconds)) / (ms / 1000);
    if (share < minShare) continue;
    let command = '?';
    try {
      command = readFileSync(`/proc/${pid}/cmdline`, 'utf8').replaceAll('\0', ' ').trim().slice(0, 120);
    } catch {
      // exited meanwhile
    }
    busy.push({ share, line: `${(share * 100).toFixed(0)} % pid ${pid}: ${command}` });
  }
  return busy.sort((a, b) => b.share - a.share).map((b) => b.line);
}
