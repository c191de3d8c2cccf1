/**
 * `npm run bench -- --quick`: the benchmark harness works end to end and writes every
 * figure. The figures themselves are for people (README), not assertions: the machines
 * are shared and noisy.
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';

const root = path.resolve(__dirname, '..');

describe('npm run bench -- --quick', () => {
  it('measures every figure and writes the JSON report', async () => {
    const json = path.join(mkdtempSync(path.join(tmpdir(), 'bench-')), 'b.json');
    const child = spawn(process.execPath, ['packages/scenario-cli/dist/bench/bench.js', '--quick', '--json', json], {
      cwd: root,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout.on('data', (d) => (output += d));
    child.stderr.on('data', (d) => (output += d));
    const [code] = await once(child, 'exit');
    expect(code, output).toBe(0);
    const report = JSON.parse(readFileSync(json, 'utf8')) as Record<string, unknown>;
    const fields = [
      'rawRps',
      'koaRps',
      'koaOtelRps',
      'koaOverRaw',
      'otelOverKoa',
      'browseCapacityRps',
      'checkoutCapacityRps',
      'browseHeadroom',
      'checkoutHeadroom',
      'runnerAchievedOverTarget',
      'autocannonAchievedOverTarget',
      'runnerP50OverTruth',
      'autocannonP50OverTruth',
      'labStartSeconds',
      'labRssMiB',
    ];
    for (const field of fields) {
      expect(typeof report[field], field).toBe('number');
      expect(Number.isFinite(report[field]), field).toBe(true);
    }
    expect(report.quick).toBe(true);
    expect(report.rawRps as number).toBeGreaterThan(0);
    expect(report.labRssMiB as number).toBeGreaterThan(0);
    for (const field of fields) expect(output).toContain(field);
  }, 120_000);
});
