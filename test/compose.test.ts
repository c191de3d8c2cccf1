/**
 * The Compose files, checked without a Docker engine: their structure against DESIGN.md,
 * and their conversion by the real kompose (the source of the Kubernetes manifests).
 */
import { execFile, execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { SERVICE_PORTS, type ServiceName, urlVariable } from '@bfl/contract';
import { afterAll, describe, expect, it } from 'vitest';
import { parse, parseAllDocuments } from 'yaml';

const root = path.resolve(__dirname, '..');
const run = promisify(execFile);
// biome-ignore lint/suspicious/noExplicitAny: Compose documents are checked field by field
type Doc = any;
const load = (file: string): Doc => parse(readFileSync(path.join(root, file), 'utf8'), { merge: true });
const compose = load('compose.yaml');
const otel = load('compose.otel.yaml');
const grafana = load('compose.grafana.yaml');
const nodeServices = Object.keys(SERVICE_PORTS) as ServiceName[];

describe('compose.yaml and compose.otel.yaml', () => {
  it('define PostgreSQL, Redis, the nine services and the load generator; the overlays add the collector, Prometheus, the trace UI and Grafana', () => {
    expect(Object.keys(compose.services).sort()).toEqual(['postgres', 'redis', ...nodeServices].sort());
    expect(Object.keys(otel.services)).toEqual(expect.arrayContaining(['otel-collector', 'jaeger', 'prometheus', ...nodeServices]));
    expect(Object.keys(grafana.services)).toEqual(['grafana']);
  });

  it('pin Prometheus and Jaeger to the releases the tests build, and wire them to each other', () => {
    const tools = readFileSync(path.join(root, 'scripts/build-go-tools.sh'), 'utf8');
    const promModule = /PROMETHEUS_VERSION=v0\.(\d)(\d\d)\.(\d+)/.exec(tools);
    expect(promModule, 'PROMETHEUS_VERSION in build-go-tools.sh').not.toBeNull();
    const [, major, minor, patch] = promModule as unknown as string[];
    expect(otel.services.prometheus.image).toBe(`prom/prometheus:v${major}.${Number(minor)}.${patch}`);
    expect(otel.services.prometheus.command).toEqual(
      expect.arrayContaining(['--web.enable-otlp-receiver', '--config.file=/etc/prometheus/prometheus.yml']),
    );
    expect(otel.services['otel-collector'].environment.PROMETHEUS_OTLP_ENDPOINT).toBe('http://prometheus:9090/api/v1/otlp');
    expect(otel.services.jaeger.command).toEqual(['--config=/etc/jaeger/config.yaml']);
    expect(otel.services.jaeger.environment.JAEGER_PROMETHEUS_URL).toBe('http://prometheus:9090');
    const jaeger = /JAEGER_RELEASE=v(2\.\d+\.\d+)/.exec(tools);
    expect(jaeger, 'JAEGER_RELEASE in build-go-tools.sh').not.toBeNull();
    expect(otel.services.jaeger.image).toBe(`jaegertracing/jaeger:${jaeger?.[1]}`);
  });

  it('give every service a health check in exec-array form', () => {
    for (const [name, service] of Object.entries({ ...compose.services, 'otel-collector': undefined, jaeger: undefined })) {
      if (!service) continue;
      const test = (service as Doc).healthcheck?.test;
      expect(Array.isArray(test), name).toBe(true);
      expect(test[0], name).toBe('CMD');
    }
  });

  it('name images by REGISTRY and IMAGE_TAG, build them from the one Dockerfile', () => {
    for (const name of nodeServices) {
      const service = compose.services[name];
      expect(service.image, name).toBe(`\${REGISTRY:-ghcr.io/black-friday-lab}/${name}:\${IMAGE_TAG:-dev}`);
      expect(service.build, name).toMatchObject({ context: '.', target: 'runtime', args: { SERVICE: name } });
    }
    expect(existsSync(path.join(root, 'Dockerfile'))).toBe(true);
    const dockerfile = readFileSync(path.join(root, 'Dockerfile'), 'utf8');
    expect(dockerfile).toMatch(/^USER node$/m);
    // A `# syntax=` line makes BuildKit pull a frontend image first: offline builds fail.
    expect(dockerfile).not.toMatch(/^#\s*syntax\s*=/im);
  });

  it("use DESIGN.md's ports and variable names, and wait for what they need", () => {
    for (const name of nodeServices) {
      const service = compose.services[name];
      const port = String(SERVICE_PORTS[name]);
      expect(service.environment.PORT, name).toBe(port);
      expect([...(service.expose ?? []), ...(service.ports ?? []).map((p: string) => p.split(':').at(-1))], name).toContain(port);
      for (const other of nodeServices) {
        if (other === 'load-generator') continue;
        expect(service.environment[urlVariable(other)], `${name} ${urlVariable(other)}`).toBe(`http://${other}:${SERVICE_PORTS[other]}`);
      }
      expect(service.environment.REDIS_URL).toBe('redis://redis:6379');
      expect(otel.services[name].environment.OTEL_EXPORTER_OTLP_ENDPOINT).toBe('http://otel-collector:4318');
      expect(otel.services[name].environment.OTEL_SERVICE_NAME).toBe(name);
    }
    for (const name of ['recommendation', 'checkout', 'product-catalog']) {
      expect(compose.services[name].depends_on.postgres, name).toEqual({ condition: 'service_healthy' });
    }
    expect(compose.services.cart.depends_on.redis).toEqual({ condition: 'service_healthy' });
    // No service waits for another service's health, only for the data stores': each
    // level of health waits adds a check interval to `up --wait` (see compose.yaml).
    for (const name of nodeServices)
      for (const [dependency, { condition }] of Object.entries(compose.services[name].depends_on ?? {}) as [
        string,
        { condition: string },
      ][])
        expect(`${name} -> ${dependency}: ${condition}`).toBe(
          `${name} -> ${dependency}: ${['postgres', 'redis'].includes(dependency) ? 'service_healthy' : 'service_started'}`,
        );
  });

  it('publish only the frontend, the control API, the trace UI, Prometheus and Grafana to the host', () => {
    const published = [compose, otel, grafana].flatMap((file) =>
      Object.entries(file.services).flatMap(([name, s]) => ((s as Doc).ports ?? []).map((p: string) => `${name}:${p}`)),
    );
    expect(published.sort()).toEqual([
      'frontend:127.0.0.1:8018:8018',
      'grafana:127.0.0.1:3000:3000',
      'jaeger:127.0.0.1:16686:16686',
      'load-generator:127.0.0.1:8010:8010',
      'prometheus:127.0.0.1:9090:9090',
    ]);
  });

  it('bind every published port of every Compose file to 127.0.0.1 only', () => {
    // Every compose*.yaml at the root, so a new overlay is checked too; compose.override.yaml
    // is the developer's own, uncommitted file that opens a port on purpose (README).
    const files = readdirSync(root)
      .filter((f) => /^compose(\.[\w-]+)?\.ya?ml$/.test(f) && !/^compose\.override\.ya?ml$/.test(f))
      .sort();
    expect(files).toEqual(expect.arrayContaining(['compose.grafana.yaml', 'compose.otel.yaml', 'compose.yaml']));
    let count = 0;
    for (const file of files) {
      for (const [name, service] of Object.entries(load(file).services ?? {})) {
        for (const port of (service as Doc).ports ?? []) {
          const where = `${file} ${name} ${JSON.stringify(port)}`;
          count++;
          if (typeof port === 'object' && port !== null) {
            // Long syntax: host_ip must be set (its default is every interface).
            expect(port.host_ip, where).toBe('127.0.0.1');
            expect(port.published, where).toBeDefined();
          } else {
            // Short syntax: a bare "PORT" or "HOST:CONTAINER" publishes on every interface.
            expect(String(port), where).toMatch(/^127\.0\.0\.1:\d+(-\d+)?:\d+(-\d+)?(\/(tcp|udp))?$/);
          }
        }
      }
    }
    expect(count).toBeGreaterThanOrEqual(5);
  });

  it('provision Grafana read-only and anonymous, with the generated dashboards', () => {
    const service = grafana.services.grafana;
    expect(service.image).toMatch(/^grafana\/grafana:\d+\.\d+\.\d+$/);
    expect(service.environment).toMatchObject({
      GF_AUTH_ANONYMOUS_ENABLED: 'true',
      GF_AUTH_ANONYMOUS_ORG_ROLE: 'Viewer',
      GF_AUTH_DISABLE_LOGIN_FORM: 'true',
    });
    expect(service.volumes).toEqual([
      './observability/grafana/provisioning:/etc/grafana/provisioning:ro',
      './observability/grafana/dashboards:/var/lib/grafana/dashboards:ro',
    ]);
    for (const volume of service.volumes as string[])
      expect(existsSync(path.join(root, volume.split(':')[0] as string)), volume).toBe(true);
  });

  it('commit no secret: every credential comes from a variable, .env holds only the file list', () => {
    const env = readFileSync(path.join(root, '.env'), 'utf8');
    expect(env.split('\n').filter((line) => line.trim() && !line.startsWith('#'))).toEqual([
      'COMPOSE_FILE=compose.yaml:compose.otel.yaml:compose.grafana.yaml',
    ]);
    const text = readFileSync(path.join(root, 'compose.yaml'), 'utf8') + readFileSync(path.join(root, 'compose.otel.yaml'), 'utf8');
    const credentials = [...text.matchAll(/^\s+([A-Z_]*(?:PRIVATE_KEY|TOKEN|PASSWORD|SECRET)[A-Z_]*):\s*(\S+)$/gm)];
    expect(credentials.length).toBeGreaterThanOrEqual(3);
    // Only a variable reference, with at most the local development default `lab`.
    for (const [line, , value] of credentials) expect(value, line).toMatch(/^\$\{[A-Z_]+:-(lab)?\}$/);
    const example = readFileSync(path.join(root, '.env.example'), 'utf8');
    expect(example).toMatch(/^CORALOGIX_PRIVATE_KEY=$/m);
    expect(example).toMatch(/^LAB_CONTROL_TOKEN=$/m);
  });
});

describe('kompose', () => {
  const kompose = execFileSync('bash', [path.join(root, 'scripts/build-go-tools.sh'), '--print-path', 'kompose'], {
    encoding: 'utf8',
  }).trim();
  const out = mkdtempSync(path.join(tmpdir(), 'kompose-'));
  afterAll(() => rmSync(out, { recursive: true, force: true }));

  it('converts compose.yaml + compose.otel.yaml with no error and no warning', async () => {
    if (!existsSync(kompose)) throw new Error(`kompose is not built (${kompose}): run npm run test-tools`);
    const { stdout, stderr } = await run(
      kompose,
      [
        'convert',
        '-f',
        'compose.yaml',
        '-f',
        'compose.otel.yaml',
        '--out',
        out,
        '--namespace',
        'black-friday-lab',
        '--with-kompose-annotation=false',
      ],
      { cwd: root, env: { ...process.env, NO_COLOR: '1' } },
    );
    // The one warning expected: the named volume postgres-data has no host path to stat
    // (it becomes a PersistentVolumeClaim); scripts/k8s-generate.sh lets only that one pass.
    const log = `${stdout}${stderr}`
      .split('\n')
      .filter((line) => !/File don't exist or failed to check if the directory is empty: stat :\/var\/lib\/postgresql\/data/.test(line))
      .join('\n');
    expect(log).not.toMatch(/WARN|ERRO|FATA/);

    const objects = readdirSync(out).flatMap((file) =>
      parseAllDocuments(readFileSync(path.join(out, file), 'utf8')).map((d) => d.toJS() as Doc),
    );
    const named = (kind: string) => new Set(objects.filter((o) => o.kind === kind).map((o) => o.metadata.name));
    const deployments = named('Deployment');
    const services = named('Service');
    for (const name of [...nodeServices, 'postgres', 'redis', 'otel-collector', 'jaeger', 'prometheus'])
      expect(deployments, name).toContain(name);
    expect(deployments).not.toContain('grafana');
    // Everything that is called has a Service.
    for (const name of [
      ...nodeServices.filter((n) => n !== 'load-generator'),
      'postgres',
      'redis',
      'otel-collector',
      'jaeger',
      'prometheus',
    ]) {
      expect(services, name).toContain(name);
    }
    const cart = objects.find((o) => o.kind === 'Deployment' && o.metadata.name === 'cart');
    const container = cart.spec.template.spec.containers[0];
    expect(container.image).toBe('ghcr.io/black-friday-lab/cart:dev');
    expect(container.imagePullPolicy).toBe('IfNotPresent');
    // Readiness asks only the service itself (a pod whose dependency is slow stays in its
    // Service); validation asks /ready (scripts/release-host.sh).
    expect(container.readinessProbe.httpGet).toEqual({ path: '/health', port: 8013 });
    expect(container.readinessProbe.exec).toBeUndefined();
    // kompose's own conversion keeps Compose's exec health check for liveness; the
    // committed manifests turn it into an httpGet (test/k8s.test.ts).
    const liveness = container.livenessProbe.exec.command;
    expect(liveness.slice(0, 2)).toEqual(['bash', '-c']);
    // Compose's $$ reaches the probe as a single $: the container's own PORT.
    expect(liveness[2]).toContain('/dev/tcp/127.0.0.1/$PORT');
    expect(liveness[2]).toContain('GET /health ');
    expect(container.env).toEqual(expect.arrayContaining([{ name: 'PORT', value: '8013' }]));
    expect(container.resources).toMatchObject({ limits: { cpu: '500m' }, requests: { cpu: '50m' } });
    // The init script reaches Postgres as a ConfigMap.
    expect(named('ConfigMap').size).toBeGreaterThanOrEqual(1);
  });
});
