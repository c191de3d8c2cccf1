/**
 * The image's runtime stage without Docker: in a temporary copy laid out as the
 * Dockerfile lays it out (root manifests, each runtime workspace's package.json and dist,
 * the scenarios), a production-only install succeeds, no developer tool is there, and
 * every service starts from the final stage's command and answers /health. A runtime
 * dependency left in devDependencies fails here.
 */
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { once } from 'node:events';
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { SERVICE_PORTS, type ServiceName } from '@bfl/contract';
import { SERVICE_NODE_FLAGS } from '@bfl/lab';
import { afterAll, describe, expect, it } from 'vitest';
import { DEV_TOOL_PROBE, devToolNames, workspaces } from './workspaces';

const root = path.resolve(__dirname, '..');
const run = promisify(execFile);
const app = mkdtempSync(path.join(tmpdir(), 'image-'));
const children: ChildProcess[] = [];

afterAll(async () => {
  await Promise.all(
    children.map(async (child) => {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const gone = once(child, 'exit');
      child.kill('SIGTERM');
      await gone;
    }),
  );
  rmSync(app, { recursive: true, force: true });
});

/** The Dockerfile's /out: package.json and dist of every runtime workspace, and the scenarios. */
function layOut(): void {
  cpSync(path.join(root, 'package.json'), path.join(app, 'package.json'));
  cpSync(path.join(root, 'package-lock.json'), path.join(app, 'package-lock.json'));
  for (const { dir } of workspaces().filter((w) => w.runtime)) {
    const from = path.join(root, dir);
    if (!existsSync(path.join(from, 'dist'))) throw new Error(`${dir}/dist is missing: run npm run build first`);
    cpSync(path.join(from, 'package.json'), path.join(app, dir, 'package.json'));
    cpSync(path.join(from, 'dist'), path.join(app, dir, 'dist'), { recursive: true });
  }
  cpSync(path.join(root, 'services/load-generator/scenarios'), path.join(app, 'services/load-generator/scenarios'), { recursive: true });
}

async function healthy(url: string, child: ChildProcess, output: () => string): Promise<void> {
  const deadline = Date.now() + 20_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`exited with ${child.exitCode}:\n${output()}`);
    const ok = await fetch(url).then(
      (r) => r.ok,
      () => false,
    );
    if (ok) return;
    if (Date.now() > deadline) throw new Error(`no /health after 20 s:\n${output()}`);
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

describe('the production image layout', () => {
  it('installs production dependencies only, and every service starts from the final command', async () => {
    layOut();
    await run('npm', ['ci', '--omit=dev', '--ignore-scripts', '--no-audit', '--no-fund'], { cwd: app, timeout: 240_000 });
    // Development tools are not there.
    for (const dev of ['typescript', 'vitest', '@biomejs/biome', 'playwright-core', 'node']) {
      expect(existsSync(path.join(app, 'node_modules', dev)), dev).toBe(false);
    }
    // Nor the lab's own developer tools (the lab runner, the trace tools, the scenario
    // CLI, the dashboards and Coralogix tooling), nor their code, nor what only they use.
    for (const service of ['cart', 'load-generator']) {
      const { stdout } = await run(process.execPath, ['-e', DEV_TOOL_PROBE, app, JSON.stringify(devToolNames())], {
        cwd: path.join(app, 'services', service),
      });
      expect(JSON.parse(stdout), `developer tools found from services/${service}`).toEqual([]);
    }
    expect(existsSync(path.join(app, 'node_modules', 'chart.js')), 'chart.js (the HTML report only)').toBe(false);
    const names = Object.keys(SERVICE_PORTS) as ServiceName[];
    const dockerCmd = JSON.parse(/^CMD (\[.*\])$/m.exec(readFileSync(path.join(root, 'Dockerfile'), 'utf8'))?.[1] ?? '[]') as string[];
    expect(dockerCmd[0]).toBe('node');
    expect(dockerCmd).toEqual(['node', ...SERVICE_NODE_FLAGS, '--require', '@bfl/telemetry/preload', 'dist/main.js']);
    await Promise.all(
      names.map(async (name, i) => {
        // Below the ephemeral port range (32768+), where an outgoing connection could hold it.
        const port = 26300 + i;
        let output = '';
        // The Dockerfile's CMD, from the service's folder, as NODE_ENV=production.
        const child = spawn(process.execPath, dockerCmd.slice(1), {
          cwd: path.join(app, 'services', name),
          // With an OTLP endpoint, so the telemetry SDK and its instrumentations load too.
          env: {
            ...process.env,
            NODE_ENV: 'production',
            PORT: String(port),
            LOG_LEVEL: 'warn',
            BASELINE_RPM: '0',
            OTEL_EXPORTER_OTLP_ENDPOINT: 'http://127.0.0.1:9',
            OTEL_LOG_LEVEL: 'none',
          },
          stdio: ['ignore', 'pipe', 'pipe'],
        });
        children.push(child);
        child.stdout?.on('data', (d) => (output += d));
        child.stderr?.on('data', (d) => (output += d));
        await healthy(`http://127.0.0.1:${port}/health`, child, () => `${name}: ${output}`);
      }),
    );
  }, 300_000);
});
