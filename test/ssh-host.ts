/**
 * A real SSH host for the deploy tests: Debian's sshd (installed by npm run test-tools),
 * started as a child process on 127.0.0.1 with a throwaway host key and a throwaway
 * client key made by ssh-keygen in a temporary directory, and the stand-in kubectl
 * (test/fixtures/kubectl.cjs) as the kubectl on the remote side. The system's own sshd
 * and ~/.ssh are never touched.
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { connect, createServer } from 'node:net';
import { tmpdir, userInfo } from 'node:os';
import path from 'node:path';

const ROOT = path.resolve(__dirname, '..');
export const SSHD = '/usr/sbin/sshd';
/** Below the ephemeral range, away from the suite's other fixed ports. */
const PORTS = { first: 27400, last: 27499 };

export interface SshHost {
  dir: string;
  port: number;
  user: string;
  /** The client's private key (content) and its path. */
  key: string;
  keyPath: string;
  /** known_hosts line pinning this host's key, and one pinning a different key. */
  knownHosts: string;
  wrongKnownHosts: string;
  /** The stand-in kubectl on the host, and its state directory. */
  kubectl: string;
  cluster: string;
  sshdLog: () => string;
  /** The listening sshd's pid (its children serve the connections). */
  sshdPid: number;
  stop: () => Promise<void>;
}

function portFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer()
      .once('error', () => resolve(false))
      .listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
  });
}

/** Resolves when the port answers with an SSH banner. */
function banner(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    socket.setTimeout(2000);
    socket.once('data', (data) => {
      socket.destroy();
      resolve(data.toString().startsWith('SSH-2.0-'));
    });
    socket.once('error', () => resolve(false));
    socket.once('timeout', () => {
      socket.destroy();
      resolve(false);
    });
  });
}

const keygen = (file: string, comment: string) => execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', comment, '-f', file]);

export async function startSshHost(): Promise<SshHost> {
  if (!existsSync(SSHD)) throw new Error(`${SSHD} is missing: run npm run test-tools (it installs Debian's openssh-server)`);
  const dir = mkdtempSync(path.join(tmpdir(), 'bfl-ssh-host-'));
  chmodSync(dir, 0o700);
  const user = userInfo().username;
  keygen(path.join(dir, 'host_key'), 'throwaway host key');
  keygen(path.join(dir, 'other_host_key'), 'some other host');
  keygen(path.join(dir, 'client_key'), 'throwaway deploy key');
  writeFileSync(path.join(dir, 'authorized_keys'), readFileSync(path.join(dir, 'client_key.pub')));

  // The remote side's kubectl: the stand-in, with its state in dir/cluster.
  const cluster = path.join(dir, 'cluster');
  mkdirSync(cluster);
  mkdirSync(path.join(dir, 'bin'));
  const kubectl = path.join(dir, 'bin/kubectl');
  writeFileSync(
    kubectl,
    `#!/bin/sh\nKUBECTL_STAND_IN_DIR='${cluster}' exec '${process.execPath}' '${path.join(ROOT, 'test/fixtures/kubectl.cjs')}' "$@"\n`,
    { mode: 0o755 },
  );

  // sshd's privilege separation directory, normally made by the service unit.
  if (process.getuid?.() === 0 && !existsSync('/run/sshd')) mkdirSync('/run/sshd', { mode: 0o755 });

  let port = 0;
  let sshd: ChildProcess | undefined;
  let log = '';
  for (let candidate = PORTS.first; candidate <= PORTS.last && !sshd; candidate++) {
    if (!(await portFree(candidate))) continue;
    const config = path.join(dir, 'sshd_config');
    writeFileSync(
      config,
      [
        `Port ${candidate}`,
        'ListenAddress 127.0.0.1',
        `HostKey ${dir}/host_key`,
        `PidFile ${dir}/sshd.pid`,
        `AuthorizedKeysFile ${dir}/authorized_keys`,
        `AllowUsers ${user}`,
        'PubkeyAuthentication yes',
        'PasswordAuthentication no',
        'KbdInteractiveAuthentication no',
        'UsePAM no',
        'PermitRootLogin prohibit-password',
        // The keys live under /tmp, which is world-writable: no ownership walk.
        'StrictModes no',
        'PrintMotd no',
        'LogLevel VERBOSE',
        '',
      ].join('\n'),
    );
    const child = spawn(SSHD, ['-D', '-e', '-f', config], { stdio: ['ignore', 'pipe', 'pipe'] });
    log = '';
    child.stdout?.on('data', (d) => {
      log += d;
    });
    child.stderr?.on('data', (d) => {
      log += d;
    });
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    const deadline = Date.now() + 10_000;
    let up = false;
    while (Date.now() < deadline && child.exitCode === null) {
      if (await banner(candidate)) {
        up = true;
        break;
      }
      await Promise.race([exited, new Promise((r) => setTimeout(r, 100))]);
    }
    if (up) {
      sshd = child;
      port = candidate;
    } else if (/Address already in use|Cannot bind/.test(log)) {
      child.kill();
    } else {
      child.kill();
      throw new Error(`sshd did not start on 127.0.0.1:${candidate}:\n${log}`);
    }
  }
  if (!sshd) throw new Error(`no free port for sshd in ${PORTS.first}-${PORTS.last}`);
  const running = sshd;

  const publicKey = (file: string) => readFileSync(path.join(dir, file), 'utf8').split(' ').slice(0, 2).join(' ');
  return {
    dir,
    port,
    user,
    key: readFileSync(path.join(dir, 'client_key'), 'utf8'),
    keyPath: path.join(dir, 'client_key'),
    knownHosts: `[127.0.0.1]:${port} ${publicKey('host_key.pub')}\n`,
    wrongKnownHosts: `[127.0.0.1]:${port} ${publicKey('other_host_key.pub')}\n`,
    kubectl,
    cluster,
    sshdLog: () => log,
    sshdPid: running.pid ?? 0,
    stop: async () => {
      if (running.exitCode === null) {
        const exited = new Promise((resolve) => running.once('exit', resolve));
        running.kill('SIGTERM');
        await exited;
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/**
 * The environment a deploy script needs to reach `host`, like a CI step's: PATH, HOME and
 * USER, and the connection settings (DEPLOY_HOST, DEPLOY_PORT, DEPLOY_USER, SSH_KEY,
 * SSH_KNOWN_HOSTS). Nothing else of this process's environment.
 */
export function connectionEnv(host: SshHost): Record<string, string> {
  return {
    PATH: process.env.PATH ?? '/usr/bin:/bin',
    HOME: process.env.HOME ?? '/root',
    USER: host.user,
    DEPLOY_HOST: '127.0.0.1',
    DEPLOY_PORT: String(host.port),
    DEPLOY_USER: host.user,
    SSH_KEY: host.key,
    SSH_KNOWN_HOSTS: host.knownHosts,
  };
}
