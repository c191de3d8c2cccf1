/**
 * k8s/generated/: the committed kompose output must be exactly what the real kompose
 * makes of the Compose files today (scripts/k8s-generate.sh), and fit for a cluster.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { SERVICE_PORTS, type ServiceName } from '@bfl/contract';
import { afterAll, describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';

const root = path.resolve(__dirname, '..');
const committed = path.join(root, 'k8s/generated');
const run = promisify(execFile);
// biome-ignore lint/suspicious/noExplicitAny: manifests are checked field by field
type Doc = any;
const nodeServices = Object.keys(SERVICE_PORTS) as ServiceName[];

const yamlFiles = (dir: string) =>
  readdirSync(dir)
    .filter((f) => f.endsWith('.yaml'))
    .sort();
const objects: Doc[] = yamlFiles(committed).flatMap((file) =>
  parseAllDocuments(readFileSync(path.join(committed, file), 'utf8')).map((d) => {
    if (d.errors.length) throw new Error(`${file}: ${d.errors.map((e) => e.message).join('; ')}`);
    return d.toJS();
  }),
);
const find = (kind: string, name: string) => objects.find((o) => o.kind === kind && o.metadata.name === name);

describe('k8s/generated', () => {
  const fresh = mkdtempSync(path.join(tmpdir(), 'k8s-generate-'));
  afterAll(() => rmSync(fresh, { recursive: true, force: true }));

  it('is what `npm run k8s:generate` makes of compose.yaml + compose.otel.yaml today, byte for byte', async () => {
    // Runs the real kompose (built by npm run test-tools); a missing tool fails the script.
    await run('bash', [path.join(root, 'scripts/k8s-generate.sh'), '--out', fresh], {
      cwd: root,
      env: {
        ...process.env,
        REGISTRY: 'example.org/leak',
        IMAGE_TAG: 'leak',
        CORALOGIX_PRIVATE_KEY: 'leak',
        CORALOGIX_DOMAIN: 'leak.example.org',
        CORALOGIX_APPLICATION_NAME: 'leak',
        OTELCOL_EXTRA_CONFIG: '/etc/otelcol/leak.yaml',
      },
      timeout: 120_000,
    });
    const stale = 'k8s/generated is stale: run `npm run k8s:generate` and commit the result';
    expect(yamlFiles(committed), stale).toEqual(yamlFiles(fresh));
    for (const file of yamlFiles(fresh)) {
      expect(readFileSync(path.join(committed, file), 'utf8'), `${file}: ${stale}`).toBe(readFileSync(path.join(fresh, file), 'utf8'));
    }
    // The developer's environment (set above) did not leak in.
    expect(
      readdirSync(fresh)
        .map((f) => readFileSync(path.join(fresh, f), 'utf8'))
        .join('\n'),
    ).not.toMatch(/leak/);
  }, 180_000);

  it('holds one object per file, all in namespace black-friday-lab, without kompose annotations', () => {
    for (const file of yamlFiles(committed)) {
      const docs = parseAllDocuments(readFileSync(path.join(committed, file), 'utf8'));
      expect(docs.length, file).toBe(1);
    }
    expect(find('Namespace', 'black-friday-lab')).toBeTruthy();
    for (const o of objects) {
      // The Namespace object is cluster-scoped: no metadata.namespace of its own.
      expect(o.metadata.namespace, `${o.kind}/${o.metadata.name}`).toBe(o.kind === 'Namespace' ? undefined : 'black-friday-lab');
      expect(JSON.stringify(o.metadata.annotations ?? {}), `${o.kind}/${o.metadata.name}`).not.toMatch(/kompose/);
    }
  });

  it('binds nothing on the node: no hostIP, no hostPort (Compose publishes on 127.0.0.1 only; kompose must not carry it over)', () => {
    const keys = (value: unknown, found: string[] = []): string[] => {
      if (Array.isArray(value)) for (const v of value) keys(v, found);
      else if (value && typeof value === 'object')
        for (const [k, v] of Object.entries(value)) {
          found.push(k);
          keys(v, found);
        }
      return found;
    };
    for (const file of yamlFiles(committed)) {
      expect(readFileSync(path.join(committed, file), 'utf8'), file).not.toMatch(/hostIP|hostPort/i);
    }
    for (const o of objects) {
      const named = keys(o).filter((k) => /^host(IP|Port|Network)$/i.test(k));
      expect(named, `${o.kind}/${o.metadata.name}`).toEqual([]);
    }
  });

  it('names every service image by the placeholders deploy renders, and SERVICE_VERSION too', () => {
    for (const name of nodeServices) {
      const container = find('Deployment', name)?.spec.template.spec.containers[0];
      expect(container?.image, name).toBe(`__REGISTRY__/${name}:__IMAGE_TAG__`);
      expect(container.env.find((e: Doc) => e.name === 'SERVICE_VERSION')?.value, name).toBe('__IMAGE_TAG__');
    }
  });

  it('sorts the Namespace first: `kubectl apply -f k8s/generated/` on a fresh cluster applies it before what lives in it', () => {
    const files = yamlFiles(committed).sort();
    expect(readFileSync(path.join(committed, files[0] ?? ''), 'utf8')).toMatch(/^kind: Namespace$/m);
  });

  it('probes over HTTP and TCP, never by exec: readiness asks each service itself (/health), not its dependencies', () => {
    for (const name of nodeServices) {
      const container = find('Deployment', name)?.spec.template.spec.containers[0];
      const port = SERVICE_PORTS[name];
      expect(container.readinessProbe.httpGet, name).toEqual({ path: '/health', port });
      expect(container.livenessProbe.httpGet, name).toEqual({ path: '/health', port });
      // A minute of missed answers (10 s each) before a restart: slowness at the story's peak is not death.
      expect(container.livenessProbe, name).toMatchObject({
        initialDelaySeconds: 30,
        periodSeconds: 10,
        timeoutSeconds: 10,
        failureThreshold: 6,
      });
    }
    expect(find('Deployment', 'postgres')?.spec.template.spec.containers[0].readinessProbe.tcpSocket).toEqual({ port: 5432 });
    expect(find('Deployment', 'redis')?.spec.template.spec.containers[0].readinessProbe.tcpSocket).toEqual({ port: 6379 });
    expect(find('Deployment', 'otel-collector')?.spec.template.spec.containers[0].readinessProbe.httpGet).toEqual({
      path: '/',
      port: 13133,
    });
    expect(find('Deployment', 'jaeger')?.spec.template.spec.containers[0].readinessProbe.httpGet).toEqual({ path: '/status', port: 13133 });
    for (const o of objects.filter((d) => d.kind === 'Deployment'))
      for (const c of o.spec.template.spec.containers) expect(c.readinessProbe?.exec, `${o.metadata.name} readiness`).toBeUndefined();
  });

  it("keeps PostgreSQL's data on a PersistentVolumeClaim, recreated (never two servers on one data directory)", () => {
    const postgres = find('Deployment', 'postgres');
    expect(postgres.spec.strategy).toEqual({ type: 'Recreate' });
    expect(postgres.spec.template.spec.volumes).toEqual(
      expect.arrayContaining([{ name: 'postgres-data', persistentVolumeClaim: { claimName: 'postgres-data' } }]),
    );
    expect(postgres.spec.template.spec.containers[0].volumeMounts).toEqual(
      expect.arrayContaining([{ name: 'postgres-data', mountPath: '/var/lib/postgresql/data' }]),
    );
    const claim = find('PersistentVolumeClaim', 'postgres-data');
    expect(claim.spec).toMatchObject({ accessModes: ['ReadWriteOnce'], resources: { requests: { storage: '1Gi' } } });
    expect(claim.spec.storageClassName).toBeUndefined(); // the cluster's default (k3s: local-path)
  });

  it('gives memory in Mi and leaves progressDeadlineSeconds to deploy', () => {
    for (const o of objects.filter((d) => d.kind === 'Deployment')) {
      expect(o.spec.progressDeadlineSeconds, o.metadata.name).toBe('__PROGRESS_DEADLINE_SECONDS__');
      for (const c of o.spec.template.spec.containers)
        for (const side of ['limits', 'requests']) expect(c.resources[side].memory, `${o.metadata.name} ${side}`).toMatch(/^\d+Mi$/);
    }
    for (const name of ['postgres', 'redis', 'otel-collector', 'jaeger']) {
      expect(find('Deployment', name)?.spec.template.spec.containers[0].image, name).not.toMatch(/__/);
    }
  });

  it("leaves the collector's Coralogix switch to deploy: its second --config and the non-secret settings", () => {
    const container = find('Deployment', 'otel-collector').spec.template.spec.containers[0];
    expect(container.args).toEqual(['--config=/etc/otelcol/config.yaml', '--config=__OTELCOL_EXTRA_CONFIG__']);
    const env = Object.fromEntries(container.env.map((e: Doc) => [e.name, e.value ?? e.valueFrom]));
    expect(env).toMatchObject({
      CORALOGIX_DOMAIN: '__CORALOGIX_DOMAIN__',
      CORALOGIX_APPLICATION_NAME: '__CORALOGIX_APPLICATION_NAME__',
      CORALOGIX_SUBSYSTEM_NAME: '__CORALOGIX_SUBSYSTEM_NAME__',
    });
    // Nothing else carries them.
    const others = objects.filter((o) => !(o.kind === 'Deployment' && o.metadata.name === 'otel-collector'));
    expect(JSON.stringify(others)).not.toMatch(/__(OTELCOL|CORALOGIX)_/);
  });

  it('mounts the init script and the collector configuration from ConfigMaps', () => {
    const volumes = (name: string) => find('Deployment', name).spec.template.spec.volumes;
    for (const name of ['postgres', 'otel-collector']) {
      const [volume] = volumes(name);
      expect(volume.configMap?.name, name).toBeTruthy();
      expect(find('ConfigMap', volume.configMap.name), name).toBeTruthy();
    }
    const postgresConfig = find('ConfigMap', volumes('postgres')[0].configMap.name);
    expect(postgresConfig.data['init-db.sql']).toBe(readFileSync(path.join(root, 'db/init-db.sql'), 'utf8'));
    const collectorConfig = find('ConfigMap', volumes('otel-collector')[0].configMap.name);
    expect(Object.keys(collectorConfig.data)).toEqual(expect.arrayContaining(['config.yaml', 'coralogix.yaml', 'none.yaml']));
  });

  it('takes secrets from Kubernetes Secrets, never from a literal value', () => {
    const env = (name: string, variable: string) =>
      find('Deployment', name).spec.template.spec.containers[0].env.find((e: Doc) => e.name === variable);
    expect(env('otel-collector', 'CORALOGIX_PRIVATE_KEY')).toEqual({
      name: 'CORALOGIX_PRIVATE_KEY',
      valueFrom: { secretKeyRef: { name: 'coralogix', key: 'private-key', optional: true } },
    });
    expect(env('load-generator', 'LAB_CONTROL_TOKEN')).toEqual({
      name: 'LAB_CONTROL_TOKEN',
      valueFrom: { secretKeyRef: { name: 'lab-control', key: 'token', optional: true } },
    });
    for (const o of objects.filter((x) => x.kind === 'Deployment')) {
      for (const e of o.spec.template.spec.containers.flatMap((c: Doc) => c.env ?? [])) {
        if (/PRIVATE_KEY|TOKEN|SECRET/.test(e.name)) expect(e.value, `${o.metadata.name} ${e.name}`).toBeUndefined();
      }
    }
  });
});
