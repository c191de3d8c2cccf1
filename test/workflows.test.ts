/**
 * The GitHub Actions workflows and the shell scripts, linted by the real tools: actionlint
 * (built from the Go module proxy by scripts/build-go-tools.sh) and Debian's shellcheck,
 * both installed by npm run test-tools. A missing tool fails these tests; none is skipped.
 * Plus the promotion rules the issue fixes: pinned actions, least privilege, one
 * production concurrency group that never cancels.
 */
// biome-ignore-all lint/suspicious/noTemplateCurlyInString: GitHub expressions (${{ ... }}) and shell expansions are literal text here
import { execFile, execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { SERVICE_PORTS } from '@bfl/contract';
import { afterAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';

const ROOT = path.resolve(__dirname, '..');
const WORKFLOWS = path.join(ROOT, '.github/workflows');
const SHELLCHECK = '/usr/bin/shellcheck';
const run = promisify(execFile);
// biome-ignore lint/suspicious/noExplicitAny: workflow documents are checked field by field
type Doc = any;

const actionlint = execFileSync('bash', [path.join(ROOT, 'scripts/build-go-tools.sh'), '--print-path', 'actionlint'], {
  encoding: 'utf8',
}).trim();
function tool(file: string, how: string) {
  if (!existsSync(file)) throw new Error(`${file} is missing: ${how}`);
  return file;
}
/** Runs a linter; resolves with its exit code and output instead of throwing. */
async function lint(bin: string, args: string[]) {
  try {
    const { stdout, stderr } = await run(bin, args, { cwd: ROOT });
    return { code: 0, output: stdout + stderr };
  } catch (error) {
    const e = error as { code?: number; stdout?: string; stderr?: string };
    if (typeof e.code !== 'number') throw error;
    return { code: e.code, output: `${e.stdout ?? ''}${e.stderr ?? ''}` };
  }
}

const workflowFiles = readdirSync(WORKFLOWS).filter((f) => /\.ya?ml$/.test(f));
const workflows: Record<string, Doc> = Object.fromEntries(
  workflowFiles.map((f) => [f, parse(readFileSync(path.join(WORKFLOWS, f), 'utf8'))]),
);
const shellScripts = [
  ...readdirSync(path.join(ROOT, 'scripts'))
    .filter((f) => f.endsWith('.sh'))
    .map((f) => `scripts/${f}`),
  '.ci/run',
  // The stand-in images' entrypoints (scripts/standin-images.sh).
  ...readdirSync(path.join(ROOT, 'docker/standins'))
    .filter((d) => existsSync(path.join(ROOT, 'docker/standins', d, 'docker-entrypoint.sh')))
    .map((d) => `docker/standins/${d}/docker-entrypoint.sh`),
  ...readdirSync(path.join(ROOT, 'test/fixtures'))
    .filter((f) => /^#!.*\b(ba)?sh\b/.test(readFileSync(path.join(ROOT, 'test/fixtures', f), 'utf8').split('\n')[0] ?? ''))
    .map((f) => `test/fixtures/${f}`),
];

describe('actionlint', () => {
  const scratch = mkdtempSync(path.join(tmpdir(), 'actionlint-'));
  afterAll(() => rmSync(scratch, { recursive: true, force: true }));

  it('finds nothing wrong in .github/workflows (with shellcheck over every run: script)', async () => {
    const bin = tool(actionlint, 'run npm run test-tools (scripts/build-go-tools.sh builds actionlint)');
    tool(SHELLCHECK, "run npm run test-tools (it installs Debian's shellcheck)");
    expect(workflowFiles.sort()).toEqual(['ci.yaml', 'deploy.yaml', 'rollback.yaml']);
    const result = await lint(bin, ['-shellcheck', SHELLCHECK, '-no-color', ...workflowFiles.map((f) => `.github/workflows/${f}`)]);
    expect(result.output).toBe('');
    expect(result.code).toBe(0);
  });

  it('does report a broken workflow (the check can fail)', async () => {
    const bad = path.join(scratch, 'bad.yaml');
    writeFileSync(
      bad,
      'on: push\njobs:\n  x:\n    runs-on: ubuntu-24.04\n    steps:\n      - run: echo ${{ github.event.pull_request.title }} $undefined_var\n      - uses: actions/checkout@v4\n        with: { nope: 1 }\n',
    );
    const result = await lint(tool(actionlint, 'run npm run test-tools'), ['-shellcheck', SHELLCHECK, '-no-color', bad]);
    expect(result.code).toBe(1);
    expect(result.output).toMatch(/potentially untrusted/);
  });
});

describe('shellcheck', () => {
  it('finds nothing wrong in any script (scripts/*.sh, .ci/run, shell test fixtures)', async () => {
    const bin = tool(SHELLCHECK, "run npm run test-tools (it installs Debian's shellcheck)");
    expect(shellScripts).toEqual(
      expect.arrayContaining([
        'scripts/deploy.sh',
        'scripts/rollback.sh',
        'scripts/validate.sh',
        '.ci/run',
        'docker/standins/postgres/docker-entrypoint.sh',
      ]),
    );
    const result = await lint(bin, ['--external-sources', '--format=gcc', ...shellScripts]);
    expect(result.output).toBe('');
    expect(result.code).toBe(0);
  });

  it('does report a broken script (the check can fail)', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'shellcheck-'));
    try {
      writeFileSync(path.join(dir, 'bad.sh'), '#!/usr/bin/env bash\nrm -rf $1/*\n');
      const bad = await lint(tool(SHELLCHECK, 'run npm run test-tools'), ['--format=gcc', path.join(dir, 'bad.sh')]);
      expect(bad.code).toBe(1);
      expect(bad.output).toMatch(/SC2086/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('pin the host key: StrictHostKeyChecking=yes, never accept-new or no', () => {
    const sources = shellScripts.map((f) => readFileSync(path.join(ROOT, f), 'utf8')).join('\n');
    expect(sources).toContain('-o StrictHostKeyChecking=yes');
    expect(sources).not.toMatch(/StrictHostKeyChecking=(no|accept-new|off)|UserKnownHostsFile=\/dev\/null/);
  });

  it('every command script is strict (set -euo pipefail) and answers --help', async () => {
    // The stand-in images' entrypoints keep the official images' behaviour (POSIX sh for node's), not this rule.
    for (const file of shellScripts.filter((f) => !/lib\.sh$|release-host\.sh$|^docker\//.test(f))) {
      expect(readFileSync(path.join(ROOT, file), 'utf8'), file).toMatch(/^set -euo pipefail$/m);
    }
    for (const name of ['deploy.sh', 'rollback.sh', 'validate.sh', 'k8s-generate.sh']) {
      const { stdout } = await run('bash', [path.join(ROOT, 'scripts', name), '--help'], { env: { PATH: process.env.PATH } });
      expect(stdout.length, name).toBeGreaterThan(200);
    }
  });
});

describe('the workflows', () => {
  const uses = Object.entries(workflows).flatMap(([file]) =>
    [...readFileSync(path.join(WORKFLOWS, file), 'utf8').matchAll(/^\s*(?:-\s+)?uses:\s*(.+)$/gm)].map((m): [string, string] => [
      file,
      m[1] ?? '',
    ]),
  );

  it('pin every action by a full commit SHA, with its version in a comment', () => {
    expect(uses.length).toBeGreaterThanOrEqual(8);
    for (const [file, ref] of uses) expect(ref, file).toMatch(/^[\w.-]+\/[\w.-]+@[0-9a-f]{40} # v\d+\.\d+\.\d+$/);
    // One version per action across the workflows.
    const versions = new Map<string, Set<string>>();
    for (const [, ref] of uses) {
      const [action = '', pin = ''] = ref.split('@');
      versions.set(action, (versions.get(action) ?? new Set()).add(pin));
    }
    for (const [action, pins] of versions) expect(pins.size, action).toBe(1);
  });

  it('grant least privilege: contents read everywhere, packages write only to the image build', () => {
    for (const [file, w] of Object.entries(workflows)) {
      expect(w.permissions, file).toEqual({ contents: 'read' });
      for (const [name, job] of Object.entries(w.jobs as Record<string, Doc>)) {
        if (file === 'deploy.yaml' && name === 'images') expect(job.permissions).toEqual({ contents: 'read', packages: 'write' });
        else expect(job.permissions, `${file} ${name}`).toBeUndefined();
      }
    }
  });

  it('ci runs on pull requests and pushes, in the README machine, the whole suite', () => {
    const ci = workflows['ci.yaml'];
    expect(Object.keys(ci.on).sort()).toEqual(['pull_request', 'push']);
    const steps: string = ci.jobs.test.steps.map((s: Doc) => s.run ?? '').join('\n');
    for (const command of [
      'npm ci',
      'npm run deps',
      'npm run test-tools',
      'npm run lint',
      'npx vitest run test/workflows.test.ts test/k8s.test.ts',
    ]) {
      expect(steps).toContain(command);
    }
    expect(steps).toMatch(/^npx vitest run$/m);
    expect(ci.jobs.test.steps.some((s: Doc) => s.uses?.startsWith('actions/setup-go@'))).toBe(true);
  });

  it('deploy builds every service image to GHCR under a lowercase owner, tagged with the commit, then deploys it', () => {
    const deploy = workflows['deploy.yaml'];
    expect(deploy.on).toEqual({ push: { branches: ['main'] }, workflow_dispatch: null });
    const images = deploy.jobs.images;
    expect([...images.strategy.matrix.service].sort()).toEqual(Object.keys(SERVICE_PORTS).sort());
    const build = images.steps.find((s: Doc) => s.uses?.startsWith('docker/build-push-action@')).with;
    expect(build).toMatchObject({ target: 'runtime', 'build-args': 'SERVICE=${{ matrix.service }}', push: true });
    expect(build.tags).toBe('${{ steps.registry.outputs.name }}/${{ matrix.service }}:${{ github.sha }}');
    expect(images.steps.find((s: Doc) => s.id === 'registry').run).toContain('${OWNER,,}');
    const job = deploy.jobs.deploy;
    expect(job.needs).toBe('images');
    expect(job.environment).toBe('production');
    const step = job.steps.find((s: Doc) => s.run === 'bash scripts/deploy.sh');
    expect(step.env).toMatchObject({
      IMAGE_TAG: '${{ github.sha }}',
      SSH_KEY: '${{ secrets.DEPLOY_SSH_KEY }}',
      SSH_KNOWN_HOSTS: '${{ secrets.DEPLOY_KNOWN_HOSTS }}',
      DEPLOY_HOST: '${{ vars.DEPLOY_HOST }}',
      DEPLOY_USER: '${{ vars.DEPLOY_USER }}',
      CORALOGIX_PRIVATE_KEY: '${{ secrets.CORALOGIX_PRIVATE_KEY }}',
      CORALOGIX_DOMAIN: '${{ vars.CORALOGIX_DOMAIN }}',
      CORALOGIX_APPLICATION_NAME: '${{ vars.CORALOGIX_APPLICATION_NAME }}',
      CORALOGIX_SUBSYSTEM_NAME: '${{ vars.CORALOGIX_SUBSYSTEM_NAME }}',
      LAB_CONTROL_TOKEN: '${{ secrets.LAB_CONTROL_TOKEN }}',
    });
  });

  it('rollback takes an optional tag and runs rollback.sh without putting the input in the script', () => {
    const rollback = workflows['rollback.yaml'];
    expect(Object.keys(rollback.on)).toEqual(['workflow_dispatch']);
    expect(rollback.on.workflow_dispatch.inputs.tag).toMatchObject({ required: false, default: '', type: 'string' });
    const step = rollback.jobs.rollback.steps.find((s: Doc) => s.run === 'bash scripts/rollback.sh');
    expect(step.env.ROLLBACK_TAG).toBe('${{ inputs.tag }}');
    expect(rollback.jobs.rollback.environment).toBe('production');
  });

  it('deploy and rollback share one concurrency group that never cancels a run in progress', () => {
    const deployJob = workflows['deploy.yaml'].jobs.deploy.concurrency;
    const rollbackJob = workflows['rollback.yaml'].jobs.rollback.concurrency;
    expect(deployJob).toEqual({ group: 'production-deploy', 'cancel-in-progress': false });
    expect(rollbackJob).toEqual(deployJob);
  });
});
