/**
 * End to end: the lab's nine services as real processes (as `npm run lab` starts them)
 * on real PostgreSQL and Redis, exporting OTLP through the lab's real collector
 * (otel-collector/config.yaml) to a receiver inside this test, as the trace UI.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { SHOP_SERVICES } from '@bfl/contract';
import { type Lab, startLab } from '@bfl/lab';
import { byTrace, OTLP_SPAN_KIND, OtlpReceiver, type ReceivedSpan, traceDepth } from '@bfl/traces/otlp-receiver';
import knex from 'knex';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type RunningCollector, startCollector } from './collector-support.js';

const DATABASE_URL = process.env.DATABASE_URL ?? 'postgres://lab:lab@localhost:5432/lab';
// Ports beside the usual ones, so a lab already running on this machine does not matter.
const ports = Object.fromEntries(SHOP_SERVICES.map((name, i) => [name, 28011 + i]));

const receiver = new OtlpReceiver();
let lab: Lab;
let collector: RunningCollector;
const logs: string[] = [];
const db = knex({ client: 'pg', connection: DATABASE_URL, pool: { min: 0, max: 2 } });

beforeAll(async () => {
  await receiver.start();
  collector = await startCollector({ TRACE_UI_OTLP_ENDPOINT: receiver.url });
  lab = await startLab({
    services: SHOP_SERVICES,
    ports,
    env: {
      // The services' defaults otherwise: OTLP/HTTP protobuf, metrics and logs too.
      OTEL_EXPORTER_OTLP_ENDPOINT: collector.httpEndpoint,
      OTEL_BSP_SCHEDULE_DELAY: '200',
      OTEL_METRIC_EXPORT_INTERVAL: '1000',
      DEPLOYMENT_ENVIRONMENT: 'e2e',
      LOG_LEVEL: 'debug',
    },
    onLine: (name, line) => logs.push(`${name} | ${line}`),
  });
}, 90_000);

afterAll(async () => {
  await lab?.stop();
  await collector?.stop();
  await receiver.stop();
  await db.destroy();
});

/** A W3C traceparent for a new trace we can find afterwards. */
function newTrace(): { traceId: string; header: string } {
  const traceId = randomBytes(16).toString('hex');
  return { traceId, header: `00-${traceId}-${randomBytes(8).toString('hex')}-01` };
}

const isDb = (span: ReceivedSpan, system: string) =>
  span.kind === 3 && (span.attributes['db.system.name'] === system || span.attributes['db.system'] === system);

async function post(path: string, body: unknown, traceparent: string, traffic: string) {
  const response = await fetch(`${lab.url('frontend')}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', traceparent, baggage: `traffic.type=${traffic},demo.minute=3` },
    body: JSON.stringify(body),
  });
  return { status: response.status, body: (await response.json()) as Record<string, unknown> };
}

describe('the lab end to end', () => {
  const browse = newTrace();
  const checkout = newTrace();
  const user = `e2e-${randomUUID().slice(0, 8)}`;
  let order: { order_id: number; total_cents: number };

  it('brings all nine services to ready', () => {
    expect(lab.processes.map((p) => p.name).sort()).toEqual([...SHOP_SERVICES].sort());
    expect(lab.processes.every((p) => p.readyMs !== undefined)).toBe(true);
  });

  it('answers a browse and a checkout through the frontend', async () => {
    const browsed = await post('/api/browse', { user_id: user, cart_id: `cart-${user}`, category: 'books' }, browse.header, 'baseline');
    expect(browsed.status).toBe(200);
    expect((browsed.body.products as unknown[]).length).toBeGreaterThan(0);

    const checkedOut = await post('/api/checkout', { user_id: user, cart_id: `cart-${user}` }, checkout.header, 'demo');
    expect(checkedOut.status, JSON.stringify(checkedOut.body)).toBe(200);
    order = checkedOut.body.order as typeof order;
    const row = await db('orders').where({ id: order.order_id }).first();
    expect(row).toMatchObject({ user_id: user, total_cents: order.total_cents });
    const items = await db('order_items').where({ order_id: order.order_id });
    expect(items.length).toBeGreaterThanOrEqual(1);
    expect(items.length).toBeLessThanOrEqual(3);
  });

  it('exports each request as one trace spanning the services it touched', async () => {
    const serviceOf = (traceId: string) => new Set(receiver.spans.filter((s) => s.traceId === traceId).map((s) => s.service));
    const checkoutServices = ['frontend', 'cart', 'shipping', 'product-catalog', 'recommendation', 'payment', 'checkout'];
    await receiver.waitFor(() => {
      const seen = serviceOf(checkout.traceId);
      return (
        checkoutServices.every((s) => seen.has(s)) &&
        ['cart', 'currency', 'ad', 'product-catalog'].every((s) => serviceOf(browse.traceId).has(s))
      );
    }, 20_000);
    // Let the last batches arrive.
    await new Promise((resolve) => setTimeout(resolve, 1_000));

    const traces = byTrace(receiver.spans);
    const browseSpans = traces.get(browse.traceId) ?? [];
    const checkoutSpans = traces.get(checkout.traceId) ?? [];

    // Every server span of the lab belongs to one of the two requests: nothing was cut into separate traces.
    const serverSpans = receiver.spans.filter((s) => s.kind === OTLP_SPAN_KIND.server);
    const stray = serverSpans.filter((s) => s.traceId !== browse.traceId && s.traceId !== checkout.traceId);
    expect(stray.map((s) => `${s.service} ${s.name}`)).toEqual([]);

    expect(new Set(browseSpans.map((s) => s.service))).toEqual(new Set(['frontend', 'cart', 'currency', 'ad', 'product-catalog']));
    expect(browseSpans.some((s) => isDb(s, 'redis'))).toBe(true);
    expect(browseSpans.some((s) => isDb(s, 'postgresql'))).toBe(true);

    const services = new Set(checkoutSpans.map((s) => s.service));
    for (const service of checkoutServices) expect(services, service).toContain(service);
    expect(checkoutSpans.some((s) => isDb(s, 'postgresql') && s.service === 'recommendation')).toBe(true);
    expect(checkoutSpans.some((s) => isDb(s, 'postgresql') && s.service === 'checkout')).toBe(true);
    expect(checkoutSpans.some((s) => isDb(s, 'redis') && s.service === 'cart')).toBe(true);
    expect(traceDepth(checkoutSpans)).toBeGreaterThanOrEqual(7);
    expect(checkoutSpans.filter((s) => s.statusCode === 2)).toEqual([]);
  });

  it('puts the lab attributes on every span: baggage, peer.service, resource', () => {
    for (const [trace, traffic] of [
      [browse.traceId, 'baseline'],
      [checkout.traceId, 'demo'],
    ] as const) {
      const spans = receiver.spans.filter((s) => s.traceId === trace);
      const missing = spans.filter((s) => s.attributes['traffic.type'] !== traffic || s.attributes['demo.minute'] !== 3);
      expect(missing.map((s) => `${s.service} ${s.name}`)).toEqual([]);
      const clients = spans.filter((s) => s.kind === OTLP_SPAN_KIND.client);
      expect(clients.length).toBeGreaterThan(3);
      expect(clients.filter((s) => typeof s.attributes['peer.service'] !== 'string').map((s) => `${s.service} ${s.name}`)).toEqual([]);
      for (const span of spans) {
        expect(span.resource).toMatchObject({
          'service.name': span.service,
          'service.namespace': 'black-friday-lab',
          'deployment.environment.name': 'e2e',
        });
        expect(span.resource['service.version']).toBeTypeOf('string');
      }
    }
    const checkoutSpans = receiver.spans.filter((s) => s.traceId === checkout.traceId);
    const frontend = checkoutSpans.find((s) => s.service === 'frontend' && s.kind === OTLP_SPAN_KIND.server);
    expect(frontend?.attributes).toMatchObject({ 'checkout.failed': false, 'order.id': order.order_id, 'payment.outcome': 'approved' });
    const pg = checkoutSpans.find((s) => s.service === 'checkout' && s.attributes['peer.service'] === 'postgresql');
    expect(pg?.attributes['db.query.text']).toMatch(/insert into|select/i);
    expect(
      checkoutSpans.some((s) => s.name === 'pg.pool.acquire' && typeof s.attributes['db.client.connection.wait_time'] === 'number'),
    ).toBe(true);
  });

  it('writes JSON logs that carry the trace id', () => {
    const lines = logs.filter((line) => line.includes(checkout.traceId));
    expect(lines.length).toBeGreaterThan(0);
    const record = JSON.parse(lines[0]!.slice(lines[0]!.indexOf('|') + 2)) as Record<string, unknown>;
    expect(record).toMatchObject({ trace_id: checkout.traceId });
    expect(record.span_id).toMatch(/^[0-9a-f]{16}$/);
  });
});

describe('metrics and logs over OTLP', () => {
  it('a service exports its metrics and its log records next to its spans', async () => {
    const direct = new OtlpReceiver();
    await direct.start();
    const one = await startLab({
      services: ['payment'],
      ports: { payment: 28100 },
      env: {
        OTEL_EXPORTER_OTLP_ENDPOINT: direct.url,
        OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json',
        OTEL_METRIC_EXPORT_INTERVAL: '500',
        OTEL_BLRP_SCHEDULE_DELAY: '200',
        OTEL_BSP_SCHEDULE_DELAY: '200',
        LOG_LEVEL: 'debug',
      },
    });
    try {
      const { traceId, header } = newTrace();
      const response = await fetch(`${one.url('payment')}/api/payment/process`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', traceparent: header },
        body: JSON.stringify({ amount: 12.5, user_id: 'otlp-logs' }),
      });
      expect(response.status).toBe(200);
      await direct.waitFor(
        () => direct.counts.metrics > 0 && direct.counts.logs > 0 && direct.spans.some((s) => s.traceId === traceId),
        15_000,
      );
      expect(direct.spans.find((s) => s.traceId === traceId && s.kind === OTLP_SPAN_KIND.server)?.attributes).toMatchObject({
        'payment.outcome': 'approved',
      });
    } finally {
      await one.stop();
      await direct.stop();
    }
  }, 40_000);
});
