import { randomUUID } from 'node:crypto';
import { createServer as createHttpServer, type Server } from 'node:http';
import { CATEGORIES } from '@bfl/contract';
import { type ServiceDefinition, type Started, startService, type z } from '@bfl/kit';
import { Redis } from 'ioredis';
import knex, { type Knex } from 'knex';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { client, DATABASE_URL, freePort, quiet, REDIS_URL, request } from '../../../test/support.js';
import { service as adService } from '../../ad/src/app.js';
import { service as cartService } from '../../cart/src/app.js';
import { service as checkoutService } from '../../checkout/src/app.js';
import { service as currencyService } from '../../currency/src/app.js';
import { service as paymentService } from '../../payment/src/app.js';
import { service as catalogService } from '../../product-catalog/src/app.js';
import { service as recommendationService } from '../../recommendation/src/app.js';
import { service as shippingService } from '../../shipping/src/app.js';
import { service } from '../src/app.js';

/** Every user and cart of this file starts with RUN; their orders and carts are removed afterwards. */
const RUN = `test-${randomUUID()}`;
let ids = 0;
const newId = (what: string) => `${RUN}-${what}-${++ids}`;

const running: Started[] = [];
const downstream: Record<string, string> = {};
let frontend: Started;
let db: Knex;
let redis: Redis;

async function start<S extends z.ZodRawShape>(definition: ServiceDefinition<S>, env: Record<string, string> = {}): Promise<Started> {
  const started = await startService(definition, { ...quiet, DATABASE_URL, REDIS_URL, ...env });
  running.push(started);
  return started;
}

const http = client(() => frontend.url);

beforeAll(async () => {
  db = knex({ client: 'pg', connection: DATABASE_URL, pool: { min: 0, max: 2 } });
  redis = new Redis(REDIS_URL, { maxRetriesPerRequest: 1 });
  const recommendation = await start(recommendationService);
  const [cart, currency, ad, catalog, shipping, payment, checkout] = await Promise.all([
    start(cartService),
    start(currencyService),
    start(adService),
    start(catalogService, { RECOMMENDATION_URL: recommendation.url }),
    start(shippingService),
    start(paymentService),
    start(checkoutService),
  ]);
  Object.assign(downstream, {
    RECOMMENDATION_URL: recommendation.url,
    CART_URL: cart?.url,
    CURRENCY_URL: currency?.url,
    AD_URL: ad?.url,
    PRODUCT_CATALOG_URL: catalog?.url,
    SHIPPING_URL: shipping?.url,
    PAYMENT_URL: payment?.url,
    CHECKOUT_URL: checkout?.url,
  });
  frontend = await start(service, downstream);
});

afterAll(async () => {
  for (const started of running.reverse()) await started.close();
  const keys = await redis?.keys(`cart:${RUN}-*`);
  if (keys?.length) await redis.del(...keys);
  await redis?.quit();
  await db?.('orders').where('user_id', 'like', `${RUN}-%`).del();
  await db?.destroy();
});

describe('frontend: health', () => {
  it('GET /health answers 200', async () => {
    const { status, body } = await http('GET', '/health');
    expect(status).toBe(200);
    expect(body).toMatchObject({ status: 'ok', service: 'frontend' });
  });

  it('GET /ready answers 200 with every downstream ok', async () => {
    const { status, body } = await http('GET', '/ready');
    expect(status).toBe(200);
    expect(body.checks).toEqual({
      cart: 'ok',
      currency: 'ok',
      ad: 'ok',
      'product-catalog': 'ok',
      shipping: 'ok',
      payment: 'ok',
      checkout: 'ok',
    });
  });
});

describe('frontend: POST /api/browse', () => {
  it('returns products in the chosen currency, ads of the category and the cart', async () => {
    const user = newId('user');
    const cartId = newId('cart');
    await request(downstream.CART_URL as string, 'POST', `/cart/${cartId}/items`, { product_id: 1, quantity: 3 });
    const { status, body } = await http('POST', '/api/browse', { user_id: user, cart_id: cartId, category: 'books', currency: 'EUR' });
    expect(status).toBe(200);
    expect(body).toMatchObject({ user_id: user, category: 'books', currency: 'EUR', cart: { cart_id: cartId, item_count: 3 } });
    const rows = await db('products')
      .select('id', 'name', 'price_cents')
      .where({ category: 'books', is_active: true })
      .orderBy('id')
      .limit(12);
    expect(body.products).toEqual(
      rows.map((row) => ({ id: row.id, name: row.name, price: Number(((row.price_cents / 100) * 0.92).toFixed(2)) })),
    );
    expect(body.ads).toHaveLength(2);
    for (const ad of body.ads) expect(ad.category).toBe('books');
  });

  it('defaults: anonymous user, cart-<user>, a random category, USD', async () => {
    const { status, body } = await http('POST', '/api/browse', {});
    expect(status).toBe(200);
    expect(body).toMatchObject({ user_id: 'anonymous', currency: 'USD', cart: { cart_id: 'cart-anonymous' } });
    expect(CATEGORIES).toContain(body.category);
    expect(body.products.length).toBeGreaterThan(0);
    const row = await db('products').select('price_cents').where({ id: body.products[0].id }).first();
    expect(body.products[0].price).toBe(row.price_cents / 100);
  });

  it('an empty body is fine too', async () => {
    expect((await http('POST', '/api/browse')).status).toBe(200);
  });

  it.each([
    ['an unknown category', { category: 'weapons' }, 'category'],
    ['a bad currency', { currency: 'EURO' }, 'currency'],
    ['a bad cart_id', { cart_id: 'a/b' }, 'cart_id'],
    ['a numeric user_id', { user_id: 42 }, 'user_id'],
  ])('%s → 422 naming the field', async (_what, payload, field) => {
    const { status, body } = await http('POST', '/api/browse', payload);
    expect(status).toBe(422);
    expect(body.error).toContain(field);
    expect(body.issues.map((issue: { field: string }) => issue.field)).toContain(field);
  });

  // BUG (reported, services/frontend/src/app.ts Browse schema): a well-formed but unknown
  // currency passes the frontend's check (length 3), the currency service answers 422 and the
  // frontend turns it into 502 downstream-error. Unskip once the frontend validates the code.
  it('an unknown currency → 422 naming currency', async () => {
    const { status, body } = await http('POST', '/api/browse', { currency: 'XXX' });
    expect(status).toBe(422);
    expect(body.error).toContain('currency');
  });
});

describe('frontend: POST /api/checkout', () => {
  it('an empty cart is filled with 1-3 products, paid, ordered, and the cart deleted', async () => {
    const user = newId('user');
    const cartId = newId('cart');
    const { status, body } = await http('POST', '/api/checkout', { user_id: user, cart_id: cartId });
    expect(status, JSON.stringify(body)).toBe(200);
    const { order, payment, shipping, recommendations } = body;
    expect(order).toMatchObject({ user_id: user, status: 'placed', payment_id: payment.transaction_id });
    expect(order.items.length).toBeGreaterThanOrEqual(1);
    expect(order.items.length).toBeLessThanOrEqual(3);
    for (const item of order.items) expect([1, 2]).toContain(item.quantity);
    expect(payment).toMatchObject({ status: 'approved', user_id: user, currency: 'USD' });
    expect(Math.round(payment.amount * 100)).toBe(order.total_cents);
    expect(order.shipping_cents).toBe(shipping.cost_cents);
    expect(Array.isArray(recommendations)).toBe(true);
    for (const rec of recommendations) expect(rec).toEqual({ id: expect.any(Number), name: expect.any(String) });

    const row = await db('orders').where({ id: order.order_id }).first();
    expect(row).toMatchObject({ user_id: user, total_cents: order.total_cents, idempotency_key: `payment:${payment.transaction_id}` });
    const items = await db('order_items').where({ order_id: order.order_id });
    expect(items).toHaveLength(order.items.length);
    expect(await redis.exists(`cart:${cartId}`)).toBe(0);
  });

  it('a filled cart is ordered as it is, priced from the catalogue', async () => {
    const user = newId('user');
    const cartId = newId('cart');
    const rows = await db('products')
      .select('id', 'name', 'category', 'price_cents')
      .where({ is_active: true, category: 'toys' })
      .orderBy('id')
      .limit(2);
    for (const [i, row] of rows.entries()) {
      const added = await request(downstream.CART_URL as string, 'POST', `/cart/${cartId}/items`, {
        product_id: row.id,
        quantity: i + 1,
        unit_price_cents: row.price_cents,
        name: row.name,
        category: row.category,
      });
      expect(added.status).toBe(201);
    }
    const { status, body } = await http('POST', '/api/checkout', { user_id: user, cart_id: cartId, zip: '10001' });
    expect(status, JSON.stringify(body)).toBe(200);
    expect(body.order.items).toEqual(rows.map((row, i) => ({ product_id: row.id, quantity: i + 1, unit_price_cents: row.price_cents })));
    // 3 units to zone 1: 499 + 2 * 150 + 75
    expect(body.shipping.cost_cents).toBe(874);
    const subtotal = rows.reduce((sum, row, i) => sum + (i + 1) * row.price_cents, 0);
    expect(body.order.total_cents).toBe(subtotal + 874);
    expect(body.payment.amount).toBeCloseTo((subtotal + 874) / 100, 2);
    expect(await redis.exists(`cart:${cartId}`)).toBe(0);
    expect(await db('orders').where({ user_id: user }).count({ n: '*' })).toEqual([{ n: '1' }]);
  });

  // BUG (reported, services/frontend/src/app.ts): the charge is computed from the prices the
  // cart remembers, the order from the catalogue, so a stale cart price charges one amount and
  // records another. Unskip once the charge uses the catalogue prices.
  it('the payment amount equals the order total even when the cart price is stale', async () => {
    const cartId = newId('cart');
    const row = await db('products').select('id', 'price_cents').where({ is_active: true }).orderBy('id').first();
    await request(downstream.CART_URL as string, 'POST', `/cart/${cartId}/items`, {
      product_id: row.id,
      unit_price_cents: row.price_cents + 1000,
    });
    const { status, body } = await http('POST', '/api/checkout', { user_id: newId('user'), cart_id: cartId });
    expect(status).toBe(200);
    expect(Math.round(body.payment.amount * 100)).toBe(body.order.total_cents);
  });

  it('a charge over the card limit → 402 payment-declined, and no order', async () => {
    const user = newId('user');
    const cartId = newId('cart');
    // 99 units of the dearest product are charged well over the $50,000 single-charge limit.
    const row = await db('products').select('id', 'price_cents').where({ is_active: true }).orderBy('price_cents', 'desc').first();
    expect(row.price_cents * 99).toBeGreaterThan(5_000_000);
    await request(downstream.CART_URL as string, 'POST', `/cart/${cartId}/items`, {
      product_id: row.id,
      quantity: 99,
      unit_price_cents: 99_999,
      category: 'toys',
    });
    const { status, body } = await http('POST', '/api/checkout', { user_id: user, cart_id: cartId });
    expect(status).toBe(402);
    expect(body.reason).toBe('payment-declined');
    expect(await db('orders').where({ user_id: user }).count({ n: '*' })).toEqual([{ n: '0' }]);
    expect(await redis.exists(`cart:${cartId}`)).toBe(1);
  });

  it.each([
    ['a missing user_id', { cart_id: 'c1' }, 'user_id'],
    ['a missing cart_id', { user_id: 'u1' }, 'cart_id'],
    ['a bad cart_id', { user_id: 'u1', cart_id: 'a b' }, 'cart_id'],
    ['a bad zip', { user_id: 'u1', cart_id: 'c1', zip: 'ABCDE' }, 'zip'],
    ['a numeric zip', { user_id: 'u1', cart_id: 'c1', zip: 94105 }, 'zip'],
  ])('%s → 422 naming the field', async (_what, payload, field) => {
    const { status, body } = await http('POST', '/api/checkout', payload);
    expect(status).toBe(422);
    expect(body.error).toContain(field);
    expect(body.issues.map((issue: { field: string }) => issue.field)).toContain(field);
  });

  it('malformed JSON → 400, oversized → 413, non-JSON → 415', async () => {
    const malformed = await http('POST', '/api/checkout', '{"user_id": "u1", "cart_id": ');
    expect(malformed.status).toBe(400);
    expect(malformed.body.error).toMatch(/malformed JSON/);
    const big = await http('POST', '/api/checkout', { user_id: 'u1', cart_id: 'c1', note: 'x'.repeat(70_000) });
    expect(big.status).toBe(413);
    const text = await http('POST', '/api/checkout', 'user_id=u1', { 'content-type': 'text/plain' });
    expect(text.status).toBe(415);
  });

  it('a wrong method → 405, an unknown route → 404', async () => {
    expect((await http('GET', '/api/checkout')).status).toBe(405);
    expect((await http('POST', '/api/cart', {})).status).toBe(404);
  });
});

describe('frontend: recommendations that never answer', () => {
  let hanging: Server;
  let slow: Started;

  beforeAll(async () => {
    // Proxies everything to the real catalogue but never answers /products/recommendations.
    hanging = createHttpServer((req, res) => {
      if (req.url?.startsWith('/products/recommendations')) return;
      fetch(`${downstream.PRODUCT_CATALOG_URL}${req.url}`, { method: req.method }).then(
        async (answer) => {
          res.writeHead(answer.status, { 'content-type': answer.headers.get('content-type') ?? 'application/json' });
          res.end(await answer.text());
        },
        () => {
          res.writeHead(502).end();
        },
      );
    });
    await new Promise<void>((resolve) => hanging.listen(0, '127.0.0.1', resolve));
    const address = hanging.address();
    const port = typeof address === 'object' && address ? address.port : 0;
    slow = await start(service, { ...downstream, PRODUCT_CATALOG_URL: `http://127.0.0.1:${port}`, RECOMMENDATIONS_TIMEOUT_MS: '300' });
  });

  afterAll(async () => {
    await slow?.close();
    hanging?.closeAllConnections();
    await new Promise((resolve) => hanging?.close(resolve));
  });

  it('checkout → 503 recommendations-timeout; nothing is charged or ordered', async () => {
    const user = newId('user');
    const cartId = newId('cart');
    const started = performance.now();
    const { status, body } = await request(slow.url, 'POST', '/api/checkout', { user_id: user, cart_id: cartId });
    expect(status).toBe(503);
    expect(body.reason).toBe('recommendations-timeout');
    expect(body.error).toMatch(/300 ms/);
    expect(performance.now() - started).toBeGreaterThanOrEqual(290);
    expect(await db('orders').where({ user_id: user }).count({ n: '*' })).toEqual([{ n: '0' }]);
  });

  it('during a scenario the error says which demo minute it belongs to', async () => {
    const state = { scenario: 'test', startedAt: '', minuteMs: 5_000, minute: 6, label: '', knobs: {}, updatedAt: '' };
    await redis.set('lab:scenario', JSON.stringify(state), 'PX', 10_000);
    try {
      await new Promise((resolve) => setTimeout(resolve, 1_300)); // the frontend re-reads about once a second
      const { status, body } = await request(slow.url, 'POST', '/api/checkout', { user_id: newId('user'), cart_id: newId('cart') });
      expect(status).toBe(503);
      expect(body).toMatchObject({ reason: 'recommendations-timeout', demo_minute: 6 });
    } finally {
      await redis.del('lab:scenario');
    }
  });

  it('browse does not use recommendations and still works', async () => {
    const { status, body } = await request(slow.url, 'POST', '/api/browse', { category: 'home' });
    expect(status).toBe(200);
    expect(body.products.length).toBeGreaterThan(0);
  });
});

describe('frontend: a downstream that is down', () => {
  let noCart: Started;

  beforeAll(async () => {
    noCart = await start(service, { ...downstream, CART_URL: `http://127.0.0.1:${await freePort()}` });
  });

  it('/ready → 503 naming cart', async () => {
    const { status, body } = await request(noCart.url, 'GET', '/ready');
    expect(status).toBe(503);
    expect(body.checks.cart).toMatch(/unreachable/);
    expect(body.checks.currency).toBe('ok');
  });

  it('checkout → 503 cart-unavailable, not 500', async () => {
    const { status, body } = await request(noCart.url, 'POST', '/api/checkout', { user_id: newId('user'), cart_id: newId('cart') });
    expect(status).toBe(503);
    expect(body).toMatchObject({ reason: 'cart-unavailable', service: 'cart' });
  });

  it('browse → 503 cart-unavailable, not 500', async () => {
    const { status, body } = await request(noCart.url, 'POST', '/api/browse', {});
    expect(status).toBe(503);
    expect(body.reason).toBe('cart-unavailable');
  });

  it('/health still answers 200', async () => {
    expect((await request(noCart.url, 'GET', '/health')).status).toBe(200);
  });
});
