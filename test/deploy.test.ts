/**
 * scripts/deploy.sh, rollback.sh and validate.sh against a real SSH server (Debian's sshd
 * on loopback, test/ssh-host.ts) whose kubectl is the stand-in (test/fixtures/kubectl.cjs).
 * The tests run in order, as one host's life: releases v1..v7 come and go.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { SERVICE_PORTS, type ServiceName } from '@bfl/contract';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectionEnv, type SshHost, startSshHost } from './ssh-host.js';

const ROOT = path.resolve(__dirname, '..');
const NAMESPACE = 'black-friday-lab';
const REGISTRY = 'ghcr.io/acme';
const nodeServices = Object.keys(SERVICE_PORTS) as ServiceName[];

interface Run {
  code: number;
  stdout: string;
  stderr: string;
  output: string;
  summary: string;
}

let host: SshHost;
let runs = 0;

/** Runs a script with only the environment given (and PATH/HOME), like a CI step. */
function script(name: string, env: Record<string, string>, args: string[] = []): Promise<Run> {
  return start(name, env, args).done;
}
/** The same, started in its own process group (pid = its id), to be killed midway. */
function start(name: string, env: Record<string, string>, args: string[] = []): { pid: number; done: Promise<Run> } {
  const summaryFile = path.join(host.dir, `summary-${++runs}.md`);
  const fullEnv: Record<string, string> = {
    ...connectionEnv(host),
    NAMESPACE,
    REGISTRY,
    DEPLOY_DIR: path.join(host.dir, 'host-releases'),
    REMOTE_KUBECTL: host.kubectl,
    ROLLOUT_TIMEOUT: '20',
    VALIDATE_TIMEOUT: '20',
    VALIDATE_INTERVAL: '1',
    DEPLOY_SUMMARY_FILE: summaryFile,
    DEPLOY_OWNER: `test run ${runs}`,
    ...env,
  };
  for (const [k, v] of Object.entries(fullEnv)) if (v === '') delete fullEnv[k];
  const child = spawn('bash', [path.join(ROOT, 'scripts', name), ...args], {
    env: fullEnv,
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true,
  });
  const done = new Promise<Run>((resolve, reject) => {
    let stdout = '';
    let stderr = '';
    let output = '';
    child.stdout.on('data', (d) => {
      stdout += d;
      output += d;
    });
    child.stderr.on('data', (d) => {
      stderr += d;
      output += d;
    });
    child.once('error', reject);
    child.once('close', (code) =>
      resolve({ code: code ?? -1, stdout, stderr, output, summary: existsSync(summaryFile) ? readFileSync(summaryFile, 'utf8') : '' }),
    );
  });
  return { pid: child.pid ?? 0, done };
}
const deploy = (tag: string, env: Record<string, string> = {}) => script('deploy.sh', { IMAGE_TAG: tag, ...env });

// biome-ignore lint/suspicious/noExplicitAny: the stand-in's state file
type State = any;
const state = (): State => JSON.parse(readFileSync(path.join(host.cluster, 'state.json'), 'utf8'));
const images = (): Record<string, string> =>
  Object.fromEntries(
    Object.entries(state().deployments as Record<string, State>)
      .filter(([key]) => key.startsWith(`${NAMESPACE}/`))
      .map(([key, d]) => [key.split('/')[1], d.manifest.spec.template.spec.containers[0].image]),
  );
/** Every service Deployment on `tag`, and the upstream ones untouched. */
function expectAllOn(tag: string) {
  const now = images();
  for (const name of nodeServices) expect(now[name], name).toBe(`${REGISTRY}/${name}:${tag}`);
  expect(now.postgres).toBe('postgres:15.15-bookworm');
  expect(now.redis).toBe('redis:7.4.7-bookworm');
}
const releaseDir = () => path.join(host.dir, 'host-releases', NAMESPACE);
function record(): Record<string, string> {
  const file = path.join(releaseDir(), 'release');
  return Object.fromEntries(
    readFileSync(file, 'utf8')
      .trim()
      .split('\n')
      .map((line) => [line.slice(0, line.indexOf('=')), line.slice(line.indexOf('=') + 1)]),
  );
}
/** The collector's container in NAMESPACE (or another namespace), as the cluster holds it. */
const collector = (ns = NAMESPACE): State => state().deployments[`${ns}/otel-collector`].manifest.spec.template.spec.containers[0];
const collectorEnv = (name: string, ns = NAMESPACE) => collector(ns).env.find((e: State) => e.name === name);
/** Every file under DIR, recursively, with its content. */
function filesUnder(dir: string): [string, string][] {
  return readdirSync(dir, { withFileTypes: true, recursive: true })
    .filter((e) => e.isFile())
    .map((e) => path.join(e.parentPath, e.name))
    .map((file) => [file, readFileSync(file, 'utf8')]);
}
const history = () => readFileSync(path.join(releaseDir(), 'history'), 'utf8').trim().split('\n');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
/** Waits (up to 30 s) until `test` holds. */
async function until(test: () => boolean, what: string) {
  const deadline = Date.now() + 30_000;
  while (!test()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(100);
  }
}
/** The processes sshd started for the connections open now. */
const sshdSessions = () =>
  readdirSync('/proc')
    .filter((entry) => /^\d+$/.test(entry))
    .filter((pid) => {
      try {
        const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
        return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]) === host.sshdPid;
      } catch {
        return false; // gone meanwhile
      }
    })
    .map(Number);
/**
 * Deploys `tag` and drops the connection once the host has started (holds the lock):
 * 'client' SIGKILLs deploy.sh's whole process group, its ssh client included (a
 * cancelled job); 'network' SIGKILLs the host's sshd for the connection, so the client
 * sees it drop (a runner losing its network). Returns what the client printed, and the
 * host's log of the run once that run has ended.
 */
async function droppedDeploy(tag: string, how: 'client' | 'network', env: Record<string, string> = {}) {
  const owner = path.join(releaseDir(), 'lock.owner');
  const run = start('deploy.sh', { IMAGE_TAG: tag, ...env });
  await until(() => existsSync(owner) && readFileSync(owner, 'utf8').includes(`deploy of ${tag}`), 'the host to take the lock');
  await sleep(300);
  if (how === 'client') process.kill(-run.pid, 'SIGKILL');
  else for (const pid of sshdSessions()) process.kill(pid, 'SIGKILL');
  const client = await run.done;
  // Killed: no exit status; or ssh's 255 for a lost connection.
  expect(client.code, client.output).toBe(how === 'client' ? -1 : 255);
  const logPath = /log (\S+\.log)/.exec(readFileSync(owner, 'utf8'))?.[1] ?? '';
  expect(client.output).toContain(`its log: ${logPath}`);
  // The host carries on by itself: the run ends, records its outcome and frees the lock.
  await until(() => history().some((line) => line.includes(`\tdeploy\t${tag}\t`)) && !existsSync(owner), `the host to finish ${tag}`);
  await until(() => existsSync(logPath.replace(/\.log$/, '.status')), 'the exit status');
  return {
    client,
    log: readFileSync(logPath, 'utf8'),
    logPath,
    status: readFileSync(logPath.replace(/\.log$/, '.status'), 'utf8').trim(),
  };
}
const faults = (f: object) => writeFileSync(path.join(host.cluster, 'faults.json'), JSON.stringify(f));
const calls = () =>
  existsSync(path.join(host.cluster, 'calls.log'))
    ? readFileSync(path.join(host.cluster, 'calls.log'), 'utf8').trim().split('\n').filter(Boolean)
    : [];

beforeAll(async () => {
  host = await startSshHost();
}, 60_000);
afterAll(async () => {
  await host?.stop();
});

describe('the scripts, before any SSH', () => {
  it('each explain themselves with --help', async () => {
    for (const name of ['deploy.sh', 'rollback.sh', 'validate.sh']) {
      const run = await script(name, {}, ['--help']);
      expect(run.code, name).toBe(0);
      expect(run.stdout, name).toMatch(/DEPLOY_HOST/);
      expect(run.stdout, name).toMatch(/SSH_KNOWN_HOSTS/);
    }
  });

  it('name the missing variable and stop', async () => {
    const run = await deploy('v1', { DEPLOY_HOST: '' });
    expect(run.code).toBe(2);
    expect(run.output).toMatch(/^deploy: DEPLOY_HOST is not set/m);
    const rollback = await script('rollback.sh', { SSH_KNOWN_HOSTS: '' });
    expect(rollback.code).toBe(2);
    expect(rollback.stderr).toMatch(/^rollback: SSH_KNOWN_HOSTS is not set/m);
    expect((await script('validate.sh', { SSH_KEY: '' })).stderr).toMatch(/^validate: SSH_KEY is not set/m);
    expect((await script('deploy.sh', {})).stderr).toMatch(/^deploy: IMAGE_TAG is not set/m);
  });
});

describe('deploy, rollback and validate over SSH', () => {
  it('refuses a host whose key is not the pinned one, before anything runs there', async () => {
    const run = await deploy('v1', { SSH_KNOWN_HOSTS: host.wrongKnownHosts });
    expect(run.code).toBe(255);
    expect(run.output).toMatch(/REMOTE HOST IDENTIFICATION HAS CHANGED|Host key verification failed/);
    expect(run.output).toMatch(/nothing was run there/);
    expect(calls()).toEqual([]);
    expect(existsSync(releaseDir())).toBe(false);
    // And a host missing from SSH_KNOWN_HOSTS is refused before connecting at all.
    const other = await deploy('v1', { SSH_KNOWN_HOSTS: host.knownHosts.replace('127.0.0.1', '127.0.0.2') });
    expect(other.code).toBe(2);
    expect(other.output).toMatch(/SSH_KNOWN_HOSTS has no key for \[127\.0\.0\.1\]/);
    expect(calls()).toEqual([]);
  });

  it('a first deploy that fails has nothing to roll back to, and says so', async () => {
    faults({ rolloutFail: ['v0'] });
    const run = await deploy('v0', { ROLLOUT_TIMEOUT: '2' });
    expect(run.code, run.output).toBe(1);
    expect(run.output).toMatch(/rollout of deployment\/\S+ did not finish \(ROLLOUT_TIMEOUT 2s\)/);
    expect(run.output).toMatch(/first release: there is no previous release to roll back to/);
    expect(run.summary).toMatch(/no previous release to roll back to/);
    expect(existsSync(path.join(releaseDir(), 'release'))).toBe(false);
  });

  it('deploys a first release: every service on the tag, the record has no previous release', async () => {
    faults({});
    const run = await deploy('v1', { SSH_KEY: host.keyPath, SSH_KNOWN_HOSTS: path.join(host.dir, 'known_hosts_file') });
    // SSH_KNOWN_HOSTS as a path that does not exist is read as content: no host key line.
    expect(run.code).toBe(2);
    expect(run.output).toMatch(/SSH_KNOWN_HOSTS holds no host key line/);
    writeFileSync(path.join(host.dir, 'known_hosts_file'), host.knownHosts);
    const ok = await deploy('v1', { SSH_KEY: host.keyPath, SSH_KNOWN_HOSTS: path.join(host.dir, 'known_hosts_file') });
    expect(ok.code, ok.output).toBe(0);
    expectAllOn('v1');
    expect(record()).toMatchObject({ current: 'v1', previous: '' });
    expect(ok.output).toMatch(/deployed v1 \(previous release: none/);
    expect(ok.summary).toMatch(/\*\*Deployed\*\* `v1`/);
    expect(readdirSync(path.join(releaseDir(), 'releases'))).toContain('v1');
    // The manifests on the host are the rendered ones, in the namespace.
    const cart = readFileSync(path.join(releaseDir(), 'releases/v1/cart-deployment.yaml'), 'utf8');
    expect(cart).toMatch(/image: ghcr\.io\/acme\/cart:v1$/m);
    expect(cart).not.toMatch(/__/);
    // Deployed without CORALOGIX_PRIVATE_KEY: the collector merges none.yaml, no Secret.
    expect(collector().args).toEqual(['--config=/etc/otelcol/config.yaml', '--config=/etc/otelcol/none.yaml']);
    expect(state().objects[`Secret/${NAMESPACE}/coralogix`]).toBeUndefined();
    expect(ok.output).toMatch(/Coralogix off/);
  });

  it('refuses a Coralogix key without CORALOGIX_DOMAIN, or a domain that is not one, before anything is applied', async () => {
    const before = calls().length;
    const cluster = JSON.stringify(state());
    const run = await deploy('v1x', { CORALOGIX_PRIVATE_KEY: 'cx-secret-value-123' });
    expect(run.code).toBe(2);
    expect(run.stderr).toMatch(/^deploy: CORALOGIX_DOMAIN is not set: it is required with CORALOGIX_PRIVATE_KEY/m);
    const url = await deploy('v1x', { CORALOGIX_PRIVATE_KEY: 'cx-secret-value-123', CORALOGIX_DOMAIN: 'https://eu2.coralogix.com' });
    expect(url.code).toBe(2);
    expect(url.stderr).toMatch(/CORALOGIX_DOMAIN 'https:\/\/eu2\.coralogix\.com' is not a domain name/);
    const name = await deploy('v1x', {
      CORALOGIX_PRIVATE_KEY: 'cx-secret-value-123',
      CORALOGIX_DOMAIN: 'eu2.coralogix.com',
      CORALOGIX_APPLICATION_NAME: 'a"b',
    });
    expect(name.code).toBe(2);
    expect(name.stderr).toMatch(/CORALOGIX_APPLICATION_NAME 'a"b' may hold letters, digits/);
    for (const r of [run, url, name]) expect(r.output + r.summary).not.toMatch(/cx-secret-value-123/);
    expect(calls().length).toBe(before);
    expect(JSON.stringify(state())).toBe(cluster);
    expect(existsSync(path.join(releaseDir(), 'releases/v1x'))).toBe(false);
  });

  it('refuses a DEPLOY_OWNER that would forge a line of the release record, before anything runs on the host', async () => {
    const files = ['release', 'history'].map((f) => path.join(releaseDir(), f));
    const before = files.map((f) => readFileSync(f, 'utf8'));
    const callsBefore = calls().length;
    const cluster = JSON.stringify(state());
    const forged = await deploy('v1y', { DEPLOY_OWNER: 'mallory\ncurrent=evil' });
    expect(forged.code, forged.output).toBe(2);
    expect(forged.stderr).toMatch(
      /^deploy: DEPLOY_OWNER \$'mallory\\ncurrent=evil' must be one line of printable ASCII without a tab or other control character/m,
    );
    const tab = await script('rollback.sh', { DEPLOY_OWNER: 'a\tb' });
    expect(tab.code).toBe(2);
    expect(tab.stderr).toMatch(/^rollback: DEPLOY_OWNER \$'a\\tb' must be one line of printable ASCII/m);
    const long = await deploy('v1y', { DEPLOY_OWNER: 'x'.repeat(201) });
    expect(long.code).toBe(2);
    expect(long.stderr).toMatch(/^deploy: DEPLOY_OWNER is 201 characters long: at most 200/m);
    // Nothing reached the host: the record, the history and the cluster are as they were.
    expect(files.map((f) => readFileSync(f, 'utf8'))).toEqual(before);
    expect(record()).toMatchObject({ current: 'v1', previous: '' });
    expect(record()).not.toHaveProperty('evil');
    expect(readFileSync(files[0] as string, 'utf8')).not.toMatch(/evil/);
    expect(calls().length).toBe(callsBefore);
    expect(JSON.stringify(state())).toBe(cluster);
    expect(existsSync(path.join(releaseDir(), 'releases/v1y'))).toBe(false);
    expect(existsSync(path.join(releaseDir(), 'lock.owner'))).toBe(false);
  });

  it('the host checks the owner and the release id again where it writes them (a sender that did not)', async () => {
    const files = ['release', 'history'].map((f) => path.join(releaseDir(), f));
    const before = files.map((f) => readFileSync(f, 'utf8'));
    const callsBefore = calls().length;
    const onHost = (action: string, tag: string, owner: string) =>
      new Promise<Run>((resolve, reject) => {
        const child = spawn(
          'bash',
          ['-c', 'set -euo pipefail; source scripts/release-host.sh; release_host_run "$@" </dev/null', 'host', action, tag],
          {
            cwd: ROOT,
            env: {
              PATH: process.env.PATH ?? '/usr/bin:/bin',
              HOME: process.env.HOME ?? '/root',
              NAMESPACE,
              DEPLOY_DIR: path.join(host.dir, 'host-releases'),
              REMOTE_KUBECTL: host.kubectl,
              VALIDATE_TIMEOUT: '2',
              VALIDATE_INTERVAL: '1',
              VALIDATE_FRONTEND_URL: 'http://frontend:8018',
              ROLLOUT_TIMEOUT: '2',
              KEEP_RELEASES: '10',
              DEPLOY_OWNER: owner,
              BUNDLE_B64: '',
            },
            stdio: ['ignore', 'pipe', 'pipe'],
          },
        );
        let stdout = '';
        let stderr = '';
        child.stdout.on('data', (d) => {
          stdout += d;
        });
        child.stderr.on('data', (d) => {
          stderr += d;
        });
        child.once('error', reject);
        child.once('close', (code) => resolve({ code: code ?? -1, stdout, stderr, output: stdout + stderr, summary: '' }));
      });
    const forged = await onHost('deploy', 'v1z', 'mallory\ncurrent=evil');
    expect(forged.code, forged.output).toBe(2);
    expect(forged.stdout).toMatch(/^error=DEPLOY_OWNER \$'mallory\\ncurrent=evil' must be one line of printable ASCII without a tab/m);
    const tab = await onHost('rollback', '', 'a\tb');
    expect(tab.code, tab.output).toBe(2);
    const traversal = await onHost('rollback', '../../x', 'a person');
    expect(traversal.code, traversal.output).toBe(2);
    expect(traversal.stdout).toMatch(/^error=\.\.\/\.\.\/x is not a release id/m);
    expect(files.map((f) => readFileSync(f, 'utf8'))).toEqual(before);
    expect(calls().length).toBe(callsBefore);
    expect(existsSync(path.join(releaseDir(), 'lock.owner'))).toBe(false);
  });

  it('deploys a second release and records the one it replaced', async () => {
    const run = await deploy('v2', { CORALOGIX_PRIVATE_KEY: 'cx-secret-value-123', CORALOGIX_DOMAIN: 'eu2.coralogix.com' });
    expect(run.code, run.output).toBe(0);
    expectAllOn('v2');
    expect(record()).toMatchObject({ current: 'v2', previous: 'v1' });
    // v0 (the failed first release) was revision 1, v1 revision 2.
    expect(state().deployments[`${NAMESPACE}/cart`].revision).toBe(3);
    // Coralogix is on: the collector merges coralogix.yaml, with the domain and the
    // default names as values and the key from the Secret coralogix.
    expect(collector().args).toEqual(['--config=/etc/otelcol/config.yaml', '--config=/etc/otelcol/coralogix.yaml']);
    expect(collectorEnv('CORALOGIX_DOMAIN')).toEqual({ name: 'CORALOGIX_DOMAIN', value: 'eu2.coralogix.com' });
    expect(collectorEnv('CORALOGIX_APPLICATION_NAME').value).toBe('black-friday-lab');
    expect(collectorEnv('CORALOGIX_SUBSYSTEM_NAME').value).toBe('lab');
    expect(collectorEnv('CORALOGIX_PRIVATE_KEY')).toEqual({
      name: 'CORALOGIX_PRIVATE_KEY',
      valueFrom: { secretKeyRef: { name: 'coralogix', key: 'private-key', optional: true } },
    });
    expect(run.stdout).toMatch(/Coralogix on: eu2\.coralogix\.com, application black-friday-lab, subsystem lab/);
    expect(run.stdout).toMatch(/Deployments changed: .*otel-collector/);
    // The key is in the Secret only: never printed, in no file on the host.
    const secret = state().objects[`Secret/${NAMESPACE}/coralogix`];
    expect(Buffer.from(secret.data['private-key'], 'base64').toString()).toBe('cx-secret-value-123');
    expect(run.output + run.summary).not.toMatch(/cx-secret-value-123/);
    const onHost = filesUnder(path.join(host.dir, 'host-releases'));
    expect(onHost.map(([file]) => file)).toContain(path.join(releaseDir(), 'releases/v2/otel-collector-deployment.yaml'));
    for (const [file, text] of onHost) expect(text, file).not.toMatch(/cx-secret-value-123/);
    expect(history().at(-1)).toMatch(/\tdeploy\tv2\tdeployed\t/);
  });

  it('a rollout that does not finish: every changed Deployment goes back to the previous tag by itself', async () => {
    faults({ rolloutFail: ['v3'] });
    const run = await deploy('v3', { ROLLOUT_TIMEOUT: '3' });
    expect(run.code, run.output).toBe(1);
    expect(run.output).toMatch(/what failed: rollout of deployment\/cart did not finish \(ROLLOUT_TIMEOUT 3s\)/);
    expect(run.output).toMatch(/rolled back automatically to v2/);
    expect(run.output).toMatch(/deployment\/cart -> ghcr\.io\/acme\/cart:v2/);
    expectAllOn('v2');
    expect(record()).toMatchObject({ current: 'v2', previous: 'v1' });
    expect(run.summary).toMatch(/\*\*Failed\*\*: release `v3`/);
    expect(run.summary).toMatch(/\*\*Rolled back\*\* to `v2`/);
    // The cart went v0 (1), v1 (2), v2 (3), v3 (4), and back to v2's template (5).
    expect(state().deployments[`${NAMESPACE}/cart`].revision).toBe(5);
    // v3 came without the key (Coralogix off); v2's manifests turned it on again.
    expect(collector().args.at(-1)).toBe('--config=/etc/otelcol/coralogix.yaml');
    expect(history().at(-1)).toMatch(/\tdeploy\tv3\tfailed, rolled back to v2\t/);
  }, 60_000);

  it('a release that fails validation: every changed Deployment goes back to the previous tag by itself', async () => {
    faults({ httpFail: { v4: ['/api/checkout'] } });
    const run = await deploy('v4', { VALIDATE_TIMEOUT: '3' });
    expect(run.code, run.output).toBe(1);
    expect(run.output).toMatch(/validation failed after 3s: POST http:\/\/frontend:8018\/api\/checkout through the frontend answered 503/);
    expect(run.output).toMatch(/rolled back automatically to v2/);
    expectAllOn('v2');
    expect(record()).toMatchObject({ current: 'v2', previous: 'v1' });
    expect(run.summary).toMatch(/validation failed/);
  }, 60_000);

  it('a failing /ready is a failed validation too', async () => {
    faults({ httpFail: { v5: ['/ready'] } });
    const run = await deploy('v5', { VALIDATE_TIMEOUT: '2' });
    expect(run.code, run.output).toBe(1);
    expect(run.output).toMatch(/deployment\/cart: http:\/\/localhost:8013\/ready did not answer 2xx/);
    expectAllOn('v2');
  }, 60_000);

  it('validate.sh checks the running release, and fails when it is not valid', async () => {
    faults({});
    const ok = await script('validate.sh', {});
    expect(ok.code, ok.output).toBe(0);
    expect(ok.output).toMatch(/valid: black-friday-lab on 127\.0\.0\.1 \(release: v2\)/);
    faults({ httpFail: { v2: ['/api/browse'] } });
    const bad = await script('validate.sh', { VALIDATE_TIMEOUT: '2' });
    expect(bad.code).toBe(1);
    expect(bad.output).toMatch(/NOT valid/);
    expect(bad.output).toMatch(/api\/browse through the frontend answered 503/);
    faults({});
  }, 60_000);

  it('rolls back by hand to the previous release, then forward to a named one', async () => {
    const back = await script('rollback.sh', {});
    expect(back.code, back.output).toBe(0);
    expectAllOn('v1');
    expect(record()).toMatchObject({ current: 'v1', previous: 'v2' });
    expect(back.summary).toMatch(/\*\*Rolled back\*\* to `v1`/);
    // Each release keeps the Coralogix setting it was deployed with.
    expect(collector().args.at(-1)).toBe('--config=/etc/otelcol/none.yaml');

    const named = await script('rollback.sh', {}, ['v2']);
    expect(named.code, named.output).toBe(0);
    expectAllOn('v2');
    expect(record()).toMatchObject({ current: 'v2', previous: 'v1' });
    expect(collector().args.at(-1)).toBe('--config=/etc/otelcol/coralogix.yaml');

    const again = await script('rollback.sh', { ROLLBACK_TAG: 'v1' });
    expect(again.code, again.output).toBe(0);
    expectAllOn('v1');
    expect(history().at(-1)).toMatch(/\trollback\tv1\trolled back from v2\t/);

    const missing = await script('rollback.sh', {}, ['v9']);
    expect(missing.code).toBe(1);
    expect(missing.output).toMatch(/release v9 is not kept on this host; kept: .*v1/);
    expectAllOn('v1');

    const list = await script('rollback.sh', {}, ['--list']);
    expect(list.stdout).toMatch(/current=v1/);
  }, 60_000);

  it('refuses a second deploy, and a rollback, while one holds the lock, naming who', async () => {
    // Long enough for the second deploy and the rollback to try while the first one waits.
    faults({ rolloutDelayMs: 8000 });
    const first = deploy('v6', { DEPLOY_OWNER: 'the first deploy' });
    const owner = path.join(releaseDir(), 'lock.owner');
    const deadline = Date.now() + 20_000;
    while (!existsSync(owner) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    expect(readFileSync(owner, 'utf8')).toMatch(/deploy of v6 by the first deploy/);

    const second = await deploy('v7');
    expect(second.code).toBe(3);
    expect(second.output).toMatch(/another deploy or rollback holds the lock.*deploy of v6 by the first deploy/);
    expect(second.summary).toMatch(/\*\*Refused\*\*/);
    const rollback = await script('rollback.sh', {});
    expect(rollback.code).toBe(3);
    expect(rollback.output).toMatch(/holds the lock.*deploy of v6 by the first deploy/);

    const done = await first;
    expect(done.code, done.output).toBe(0);
    expectAllOn('v6');
    expect(record()).toMatchObject({ current: 'v6', previous: 'v1' });
    expect(existsSync(owner)).toBe(false);
    // No trace of v7 anywhere.
    expect(existsSync(path.join(releaseDir(), 'releases/v7'))).toBe(false);
    faults({});
  }, 90_000);

  it('keeps another namespace apart: its own objects, its own release record', async () => {
    const run = await deploy('s1', {
      NAMESPACE: 'lab-staging',
      CORALOGIX_PRIVATE_KEY: 'cx-staging-key-456',
      CORALOGIX_DOMAIN: 'coralogix.us',
      CORALOGIX_APPLICATION_NAME: 'shop staging',
      CORALOGIX_SUBSYSTEM_NAME: 'k3s/lab-2',
    });
    expect(run.code, run.output).toBe(0);
    expect(collector('lab-staging').args.at(-1)).toBe('--config=/etc/otelcol/coralogix.yaml');
    expect(collectorEnv('CORALOGIX_DOMAIN', 'lab-staging').value).toBe('coralogix.us');
    expect(collectorEnv('CORALOGIX_APPLICATION_NAME', 'lab-staging').value).toBe('shop staging');
    expect(collectorEnv('CORALOGIX_SUBSYSTEM_NAME', 'lab-staging').value).toBe('k3s/lab-2');
    const stagingSecret = state().objects['Secret/lab-staging/coralogix'];
    expect(Buffer.from(stagingSecret.data['private-key'], 'base64').toString()).toBe('cx-staging-key-456');
    for (const [file, text] of filesUnder(path.join(host.dir, 'host-releases'))) expect(text, file).not.toMatch(/cx-staging-key/);
    const cluster = state();
    expect(Object.keys(cluster.namespaces).sort()).toEqual(['black-friday-lab', 'lab-staging']);
    expect(cluster.deployments['lab-staging/cart'].manifest.spec.template.spec.containers[0].image).toBe(`${REGISTRY}/cart:s1`);
    expectAllOn('v6');
    const staging = readFileSync(path.join(host.dir, 'host-releases/lab-staging/release'), 'utf8');
    expect(staging).toMatch(/^current=s1$/m);
    expect(record()).toMatchObject({ current: 'v6', previous: 'v1' });
  });

  it('refuses to act on a release record whose ids are not release ids (forged before they were checked)', async () => {
    const dir = path.join(host.dir, 'host-releases/lab-forged');
    mkdirSync(path.join(dir, 'releases'), { recursive: true });
    const forged = 'current=v1\nprevious=\nupdated=2026-01-01T00:00:00Z\nby=mallory\ncurrent=../../../tmp/x\n';
    writeFileSync(path.join(dir, 'release'), forged);
    const callsBefore = calls().length;
    const run = await deploy('f1', { NAMESPACE: 'lab-forged' });
    expect(run.code, run.output).toBe(1);
    expect(run.output).toMatch(
      /the release record \S+\/lab-forged\/release holds \.\.\/\.\.\/\.\.\/tmp\/x, which is not a release id: fix the record by hand/,
    );
    const back = await script('rollback.sh', { NAMESPACE: 'lab-forged' });
    expect(back.code, back.output).toBe(1);
    expect(back.output).toMatch(/which is not a release id/);
    expect(readFileSync(path.join(dir, 'release'), 'utf8')).toBe(forged);
    // Nothing was applied: kubectl was not asked to change anything.
    expect(
      calls()
        .slice(callsBefore)
        .filter((c) => /apply|delete/.test(c)),
    ).toEqual([]);
    expect(Object.keys(state().namespaces)).not.toContain('lab-forged');
    expect(existsSync(path.join(dir, 'lock.owner'))).toBe(false);
  }, 60_000);

  it('a deploy whose connection drops midway (the job killed) still fails over to the previous release on the host, and frees the lock', async () => {
    // Slow rollouts, then a validation that fails: the client is gone long before.
    faults({ rolloutDelayMs: 1500, httpFail: { v8: ['/api/checkout'] } });
    const dropped = await droppedDeploy('v8', 'client', { VALIDATE_TIMEOUT: '2' });
    expect(dropped.client.output).not.toMatch(/rolled back/);
    expect(dropped.status).toBe('1');
    expect(dropped.log).toMatch(/FAILED: validation failed after 2s: .*api\/checkout/);
    expect(dropped.log).toMatch(/rolled back to v6: every Deployment the release changed runs its previous images again/);
    expectAllOn('v6');
    expect(record()).toMatchObject({ current: 'v6', previous: 'v1' });
    expect(history().at(-1)).toBe(
      `${history().at(-1)?.split('\t')[0]}\tdeploy\tv8\tfailed, rolled back to v6\ttest run ${runs}\t${dropped.logPath}`,
    );
    // A later run shows how it ended, and where its log is.
    const list = await script('rollback.sh', {}, ['--list']);
    expect(list.stdout).toContain(`failed, rolled back to v6`);
    expect(list.stdout).toContain(`${dropped.logPath}  1`);
  }, 60_000);

  it('a deploy whose connection drops midway (the network) and would have succeeded is recorded; the next deploy gets the lock', async () => {
    faults({ rolloutDelayMs: 1500 });
    const dropped = await droppedDeploy('v9', 'network');
    expect(dropped.client.output).toContain(
      `the connection to ${host.user}@127.0.0.1:${host.port} dropped while the deploy ran (ssh's message above); it carries on there by itself`,
    );
    expect(dropped.client.output).not.toMatch(/nothing was run there/);
    expect(dropped.client.summary).toMatch(/\*\*Connection lost\*\*/);
    expect(dropped.status).toBe('0');
    expect(dropped.log).toMatch(/deployed v9; the release record: current=v9 previous=v6/);
    expectAllOn('v9');
    expect(record()).toMatchObject({ current: 'v9', previous: 'v6' });
    expect(history().at(-1)).toMatch(/\tdeploy\tv9\tdeployed\t/);
    faults({});
    const next = await deploy('v10');
    expect(next.code, next.output).toBe(0);
    expect(next.output).toMatch(/its log: \S+\/runs\/\S+-deploy-\d+\.log/);
    expect(next.summary).toMatch(/The host's log of this run: `\S+\/runs\/\S+\.log`/);
    expectAllOn('v10');
    expect(record()).toMatchObject({ current: 'v10', previous: 'v9' });
  }, 60_000);
});
