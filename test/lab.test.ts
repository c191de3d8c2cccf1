/**
 * `npm run lab` as a user runs it: the CLI starts the nine services, reports where they
 * listen, starts a service that exits again, and leaves no process behind when it is stopped.
 * Services shut down gracefully.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { type LabExit, startLab } from '@bfl/lab';
import { describe, expect, it } from 'vitest';

const root = path.resolve(__dirname, '..');
// 20011..20019: beside a lab that may already run here, and below the ephemeral port
// range (32768+) where an outgoing connection could hold a port first.
const OFFSET = 12_000;

const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

/** Collects a child's stdout lines and resolves when one matches. */
function watch(child: ChildProcess) {
  const lines: string[] = [];
  const waiters: { re: RegExp; resolve: (line: string) => void }[] = [];
  createInterface({ input: child.stdout! }).on('line', (line) => {
    lines.push(line);
    for (const w of [...waiters]) {
      if (w.re.test(line)) {
        waiters.splice(waiters.indexOf(w), 1);
        w.resolve(line);
      }
    }
  });
  return {
    lines,
    waitFor: (re: RegExp, timeoutMs: number) =>
      new Promise<string>((resolve, reject) => {
        const found = lines.find((line) => re.test(line));
        if (found) return resolve(found);
        const timer = setTimeout(() => reject(new Error(`no line matching ${re} within ${timeoutMs} ms:\n${lines.join('\n')}`)), timeoutMs);
        waiters.push({
          re,
          resolve: (line) => {
            clearTimeout(timer);
            resolve(line);
          },
        });
      }),
  };
}

describe('npm run lab', () => {
  it('starts every service, prints where each listens, and stops them all on SIGTERM', async () => {
    const child = spawn(process.execPath, ['packages/lab/dist/lab-cli.js', '--port-offset', String(OFFSET), '--quiet'], {
      cwd: root,
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    const out = watch(child);
    const ready = await out.waitFor(/all 9 services ready in/, 60_000);
    const seconds = Number(/in ([\d.]+) s/.exec(ready)?.[1]);
    expect(seconds).toBeLessThan(15);
    await out.waitFor(/^ {2}total/, 5_000);
    const rows = out.lines.filter((line) => /^ {2}[a-z-]+ +http:\/\/localhost:\d+ +\d+/.test(line));
    expect(rows).toHaveLength(9);
    const pids = rows.map((line) => Number(line.trim().split(/\s+/)[2]));
    expect(pids.every(alive)).toBe(true);
    expect(rows.some((line) => line.includes(`http://localhost:${8018 + OFFSET}`))).toBe(true);

    const browse = await fetch(`http://localhost:${8018 + OFFSET}/api/browse`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: '{"user_id":"lab-test"}',
    });
    expect(browse.status).toBe(200);

    child.kill('SIGTERM');
    const [code] = await once(child, 'exit');
    expect(code).toBe(0);
    expect(out.lines.at(-1)).toBe('lab: stopped');
    expect(pids.filter(alive)).toEqual([]);
  }, 90_000);

  it('starts a service that exits again, with a line saying so, and keeps the others running', async () => {
    const child = spawn(
      process.execPath,
      ['packages/lab/dist/lab-cli.js', '--port-offset', String(OFFSET), '--only', 'currency,ad', '--quiet'],
      {
        cwd: root,
        stdio: ['ignore', 'pipe', 'inherit'],
      },
    );
    const out = watch(child);
    await out.waitFor(/all 2 services ready in/, 60_000);
    await out.waitFor(/^ {2}total/, 5_000);
    const pidOf = (name: string) =>
      Number(
        out.lines
          .find((line) => line.startsWith(`  ${name} `))
          ?.trim()
          .split(/\s+/)[2],
      );
    const [currency, ad] = [pidOf('currency'), pidOf('ad')];
    process.kill(currency, 'SIGKILL');
    await out.waitFor(/^lab: currency exited unexpectedly \(signal SIGKILL\) after [\d.]+ s; restarting it in 1\.0 s$/, 5_000);
    const restarted = await out.waitFor(/^lab: currency restarted \(pid \d+, restart 1\)$/, 5_000);
    await out.waitFor(/^lab: currency ready again [\d.]+ s after it exited$/, 15_000);
    const newPid = Number(/pid (\d+)/.exec(restarted)?.[1]);
    expect(newPid).not.toBe(currency);
    expect(alive(ad)).toBe(true);
    const converted = await fetch(`http://localhost:${8012 + OFFSET}/convert?amount=10&from=USD&to=EUR`);
    expect(converted.status).toBe(200);

    child.kill('SIGTERM');
    const [code] = await once(child, 'exit');
    expect(code).toBe(0);
    expect(out.lines.at(-1)).toBe('lab: stopped');
    expect([newPid, ad].filter(alive)).toEqual([]);
  }, 90_000);

  it('refuses unknown options and services with exit 2', async () => {
    for (const args of [['--bogus'], ['--only', 'cart,warehouse'], ['--scale', '0.3'], ['--scale', 'half']]) {
      const child = spawn(process.execPath, ['packages/lab/dist/lab-cli.js', ...args], { cwd: root, stdio: ['ignore', 'ignore', 'pipe'] });
      let stderr = '';
      child.stderr!.on('data', (d) => (stderr += d));
      const [code] = await once(child, 'exit');
      expect(code, args.join(' ')).toBe(2);
      expect(stderr).toMatch(/^lab: /);
    }
  });
});

describe('a service on SIGTERM', () => {
  it('finishes the request in flight, refuses new ones, closes and exits 0', async () => {
    const port = 20112;
    const child = spawn(process.execPath, ['--require', '@bfl/telemetry/preload', 'dist/main.js'], {
      cwd: path.join(root, 'services/currency'),
      env: { ...process.env, PORT: String(port), LATENCY_PROFILES: 'convert=1500/1500' },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    const out = watch(child);
    await out.waitFor(/listening on/, 15_000);
    const started = performance.now();
    const inFlight = fetch(`http://127.0.0.1:${port}/convert?amount=10&from=USD&to=EUR`);
    await new Promise((resolve) => setTimeout(resolve, 300));
    child.kill('SIGTERM');
    await out.waitFor(/shutting down/, 5_000);
    await expect(fetch(`http://127.0.0.1:${port}/health`)).rejects.toThrow();
    const response = await inFlight;
    expect(response.status).toBe(200);
    expect(((await response.json()) as { converted: number }).converted).toBe(9.2);
    expect(performance.now() - started).toBeGreaterThan(1_400);
    const [code] = await once(child, 'exit');
    expect(code).toBe(0);
    expect(out.lines.some((line) => line.includes('"currency stopped"'))).toBe(true);
  });

  it('refuses to start on a bad variable, naming it', async () => {
    const child = spawn(process.execPath, ['dist/main.js'], {
      cwd: path.join(root, 'services/cart'),
      env: { ...process.env, PORT: '20113', REDIS_URL: 'not-a-url', CART_TTL_SECONDS: '-5' },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let stderr = '';
    child.stderr!.on('data', (d) => (stderr += d));
    const [code] = await once(child, 'exit');
    expect(code).toBe(1);
    expect(stderr).toMatch(/^cart: invalid configuration: /);
    expect(stderr).toContain('REDIS_URL="not-a-url"');
    expect(stderr).toContain('CART_TTL_SECONDS="-5"');
  });
});

describe('startLab restarts', () => {
  it('back off, doubling up to the longest wait; with restart: false a service stays down and exited says so', async () => {
    const lines: string[] = [];
    const exits: LabExit[] = [];
    const lab = await startLab({
      services: ['currency'],
      ports: { currency: 20212 },
      env: { LOG_LEVEL: 'silent' },
      // maxMs is also how long a service must run for its backoff to reset: twice the
      // 0.8 s it once was, which a loaded machine took to start currency.
      restart: { initialMs: 200, maxMs: 1600 },
      onLog: (line) => lines.push(line),
      onExit: (exit) => exits.push(exit),
    });
    try {
      const first = lab.processes[0]!;
      for (let i = 0; i < 5; i++) {
        const pid = first.pid;
        process.kill(pid, 'SIGKILL');
        const deadline = performance.now() + 15_000;
        while (
          first.pid === pid ||
          !(await fetch('http://localhost:20212/health').then(
            (r) => r.ok,
            () => false,
          ))
        ) {
          if (performance.now() > deadline) throw new Error(`currency not back:\n${lines.join('\n')}`);
          await new Promise((resolve) => setTimeout(resolve, 50));
        }
      }
      expect(exits.map((e) => [e.name, e.signal, e.restartInMs])).toEqual([
        ['currency', 'SIGKILL', 200],
        ['currency', 'SIGKILL', 400],
        ['currency', 'SIGKILL', 800],
        ['currency', 'SIGKILL', 1600],
        ['currency', 'SIGKILL', 1600],
      ]);
      expect(first.restarts).toBe(5);
      expect(lines.filter((line) => line.startsWith('lab: currency restarted'))).toHaveLength(5);
      await expect(lab.exited).resolves.toMatchObject({ name: 'currency', signal: 'SIGKILL', restartInMs: 200 });
    } finally {
      await lab.stop();
    }

    const fixed = await startLab({
      services: ['currency'],
      ports: { currency: 20212 },
      env: { LOG_LEVEL: 'silent' },
      restart: false,
      onLog: (line) => lines.push(line),
    });
    try {
      process.kill(fixed.processes[0]!.pid, 'SIGTERM');
      const exit = await fixed.exited;
      expect(exit).toMatchObject({ name: 'currency', code: 0 });
      expect(exit.restartInMs).toBeUndefined();
      expect(lines.at(-1)).toBe('lab: currency exited (code 0); not restarting it');
    } finally {
      await fixed.stop();
    }
  }, 90_000);
});
