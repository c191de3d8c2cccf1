import { randomUUID } from 'node:crypto';
import knex, { type Knex } from 'knex';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DATABASE_URL, freePort, request, serve } from '../../../test/support.js';
import { service } from '../src/app.js';

let db: Knex;

/** Every order this file writes belongs to a user under this prefix; all are deleted afterwards. */
const RUN = `test-${randomUUID()}`;
let users = 0;
const newUser = () => `${RUN}-${++users}`;

interface Row {
  id: number;
  price_cents: number;
}
let products: Row[];
let inactive: Row;
const UNKNOWN_ID = 2_000_000_000;

beforeAll(async () => {
  db = knex({ client: 'pg', connection: DATABASE_URL, pool: { min: 0, max: 3 } });
  products = await db('products').select('id', 'price_cents').where({ is_active: true }).orderBy('id').limit(3);
  inactive = await db('products').select('id', 'price_cents').where({ is_active: false }).orderBy('id').first();
  expect(products).toHaveLength(3);
  expect(inactive).toBeDefined();
});

afterAll(async () => {
  await db?.('orders').where('user_id', 'like', `${RUN}-%`).del();
  await db?.destroy();
});

// Registered after the hooks above, so (hooks stack) the service starts after the products are read and closes before the cleanup.
const { http } = serve(service, { DATABASE_URL });
const create = (body: unknown, key?: string) => http('POST', '/orders/create', body, key ? { 'idempotency-key': key } : {});
const ordersOf = async (userId: string) => Number((await db('orders').where({ user_id: userId }).count({ n: '*' }))[0]?.n);

describe('checkout: health', () => {
  it('GET /health answers 200', async () => {
    const { status, body } = await http('GET', '/health');
    expect(status).toBe(200);
    expect(body).toMatchObject({ status: 'ok', service: 'checkout' });
  });

  it('GET /ready answers 200 with postgres ok', async () => {
    const { status, body } = await http('GET', '/ready');
    expect(status).toBe(200);
    expect(body).toMatchObject({ status: 'ready', checks: { postgres: 'ok' } });
  });
});

describe('checkout: POST /orders/create', () => {
  it('writes the order and its items, priced from the catalogue', async () => {
    const [a, b] = products as [Row, Row];
    const user = newUser();
    const { status, body, headers } = await create({
      user_id: user,
      items: [
        { product_id: b.id, quantity: 1 },
        { product_id: a.id, quantity: 2 },
      ],
      shipping_cents: 499,
      payment_id: 'txn_test',
    });
    expect(status).toBe(201);
    expect(headers.get('idempotent-replayed')).toBeNull();
    const subtotal = 2 * a.price_cents + b.price_cents;
    expect(body).toMatchObject({
      user_id: user,
      status: 'placed',
      total_cents: subtotal + 499,
      shipping_cents: 499,
      currency: 'USD',
      payment_id: 'txn_test',
      idempotency_key: null,
      items: [
        { product_id: a.id, quantity: 2, unit_price_cents: a.price_cents },
        { product_id: b.id, quantity: 1, unit_price_cents: b.price_cents },
      ],
    });
    expect(body.order_id).toBeTypeOf('number');
    expect(Number.isNaN(Date.parse(body.created_at))).toBe(false);

    const order = await db('orders').where({ id: body.order_id }).first();
    expect(order).toMatchObject({ user_id: user, status: 'placed', total_cents: subtotal + 499, currency: 'USD', idempotency_key: null });
    const items = await db('order_items')
      .select('product_id', 'quantity', 'unit_price_cents')
      .where({ order_id: body.order_id })
      .orderBy('product_id');
    expect(items).toEqual(body.items);
    const sum = items.reduce((total, item) => total + item.quantity * item.unit_price_cents, 0);
    expect(order.total_cents).toBe(sum + order.shipping_cents);
  });

  it('shipping defaults to 0 and total is the item sum', async () => {
    const [a] = products as [Row];
    const { status, body } = await create({ user_id: newUser(), items: [{ product_id: a.id, quantity: 3 }] });
    expect(status).toBe(201);
    expect(body).toMatchObject({ shipping_cents: 0, total_cents: 3 * a.price_cents, payment_id: null });
  });

  it('duplicated product ids in one request are merged into one line', async () => {
    const [a, b] = products as [Row, Row];
    const { status, body } = await create({
      user_id: newUser(),
      items: [
        { product_id: a.id, quantity: 1 },
        { product_id: b.id, quantity: 1 },
        { product_id: a.id, quantity: 2 },
      ],
    });
    expect(status).toBe(201);
    expect(body.items).toEqual([
      { product_id: a.id, quantity: 3, unit_price_cents: a.price_cents },
      { product_id: b.id, quantity: 1, unit_price_cents: b.price_cents },
    ]);
    const rows = await db('order_items').where({ order_id: body.order_id });
    expect(rows).toHaveLength(2);
    expect(body.total_cents).toBe(3 * a.price_cents + b.price_cents);
  });

  it('GET /orders/:id returns the stored order', async () => {
    const [a] = products as [Row];
    const created = await create({ user_id: newUser(), items: [{ product_id: a.id, quantity: 1 }], shipping_cents: 100 });
    const { status, body } = await http('GET', `/orders/${created.body.order_id}`);
    expect(status).toBe(200);
    expect(body).toEqual(created.body);
  });

  it('an unknown product → 422 naming it, and no order is written', async () => {
    const [a] = products as [Row];
    const user = newUser();
    const { status, body } = await create({
      user_id: user,
      items: [
        { product_id: a.id, quantity: 1 },
        { product_id: UNKNOWN_ID, quantity: 1 },
      ],
    });
    expect(status).toBe(422);
    expect(body.error).toContain(String(UNKNOWN_ID));
    expect(body.product_ids).toEqual([UNKNOWN_ID]);
    expect(await ordersOf(user)).toBe(0);
  });

  it('an inactive product → 422 naming it, and no order is written', async () => {
    const [a] = products as [Row];
    const user = newUser();
    expect(await ordersOf(user)).toBe(0);
    const { status, body } = await create({
      user_id: user,
      items: [
        { product_id: inactive.id, quantity: 1 },
        { product_id: a.id, quantity: 1 },
      ],
    });
    expect(status).toBe(422);
    expect(body.product_ids).toEqual([inactive.id]);
    expect(await ordersOf(user)).toBe(0);
  });
});

describe('checkout: Idempotency-Key', () => {
  it('the same key twice returns the same order, once stored, the second marked replayed', async () => {
    const [a, b] = products as [Row, Row];
    const key = `key-${randomUUID()}`;
    const input = {
      user_id: newUser(),
      items: [
        { product_id: a.id, quantity: 1 },
        { product_id: b.id, quantity: 2 },
      ],
      shipping_cents: 250,
    };
    const first = await create(input, key);
    expect(first.status).toBe(201);
    expect(first.headers.get('idempotent-replayed')).toBeNull();
    expect(first.body.idempotency_key).toBe(key);
    const second = await create(input, key);
    expect(second.status).toBe(201);
    expect(second.headers.get('idempotent-replayed')).toBe('true');
    expect(second.body).toEqual(first.body);
    expect(await db('orders').where({ idempotency_key: key }).count({ n: '*' })).toEqual([{ n: '1' }]);
    expect(await ordersOf(input.user_id)).toBe(1);
  });

  it('a replay with the same lines split differently is the same request', async () => {
    const [a] = products as [Row];
    const key = `key-${randomUUID()}`;
    const user = newUser();
    const first = await create({ user_id: user, items: [{ product_id: a.id, quantity: 3 }] }, key);
    const second = await create(
      {
        user_id: user,
        items: [
          { product_id: a.id, quantity: 1 },
          { product_id: a.id, quantity: 2 },
        ],
      },
      key,
    );
    expect(second.status).toBe(201);
    expect(second.body.order_id).toBe(first.body.order_id);
  });

  it('5 concurrent requests with the same key make exactly one order', async () => {
    const [a, b, c] = products as [Row, Row, Row];
    const key = `key-${randomUUID()}`;
    const input = {
      user_id: newUser(),
      items: [
        { product_id: a.id, quantity: 1 },
        { product_id: b.id, quantity: 1 },
        { product_id: c.id, quantity: 1 },
      ],
    };
    const replies = await Promise.all(Array.from({ length: 5 }, () => create(input, key)));
    for (const reply of replies) {
      expect(reply.status, JSON.stringify(reply.body)).toBe(201);
      expect(reply.body.items).toHaveLength(3);
    }
    expect(new Set(replies.map((reply) => reply.body.order_id)).size).toBe(1);
    expect(replies.filter((reply) => reply.headers.get('idempotent-replayed') === 'true')).toHaveLength(4);
    expect(await db('orders').where({ idempotency_key: key }).count({ n: '*' })).toEqual([{ n: '1' }]);
    expect(await db('order_items').where({ order_id: replies[0]?.body.order_id }).count({ n: '*' })).toEqual([{ n: '3' }]);
  });

  it('the same key with a different body → 409 naming the existing order', async () => {
    const [a, b] = products as [Row, Row];
    const key = `key-${randomUUID()}`;
    const user = newUser();
    const first = await create({ user_id: user, items: [{ product_id: a.id, quantity: 1 }] }, key);
    expect(first.status).toBe(201);
    const otherItems = await create({ user_id: user, items: [{ product_id: b.id, quantity: 1 }] }, key);
    expect(otherItems.status).toBe(409);
    expect(otherItems.body).toMatchObject({ order_id: first.body.order_id });
    expect(otherItems.body.error).toMatch(/Idempotency-Key/);
    const otherQuantity = await create({ user_id: user, items: [{ product_id: a.id, quantity: 2 }] }, key);
    expect(otherQuantity.status).toBe(409);
    const otherUser = await create({ user_id: newUser(), items: [{ product_id: a.id, quantity: 1 }] }, key);
    expect(otherUser.status).toBe(409);
    expect(await db('orders').where({ idempotency_key: key }).count({ n: '*' })).toEqual([{ n: '1' }]);
  });

  it.each([
    ['with a space', 'a key'],
    ['over 200 characters', 'k'.repeat(201)],
  ])('a key %s → 422 naming the header, no order written', async (_what, key) => {
    const [a] = products as [Row];
    const user = newUser();
    const { status, body } = await create({ user_id: user, items: [{ product_id: a.id, quantity: 1 }] }, key);
    expect(status).toBe(422);
    expect(body.error).toMatch(/Idempotency-Key/);
    expect(await ordersOf(user)).toBe(0);
  });
});

describe('checkout: bad input', () => {
  const item = { product_id: 1, quantity: 1 };
  it.each([
    ['a missing user_id', { items: [item] }, 'user_id'],
    ['a bad user_id', { user_id: 'no spaces please', items: [item] }, 'user_id'],
    ['missing items', { user_id: 'u' }, 'items'],
    ['no items', { user_id: 'u', items: [] }, 'items'],
    ['more than 50 items', { user_id: 'u', items: Array.from({ length: 51 }, () => item) }, 'items'],
    ['a string product_id', { user_id: 'u', items: [{ product_id: '1', quantity: 1 }] }, 'items.0.product_id'],
    ['a product_id over int4', { user_id: 'u', items: [{ product_id: 2_147_483_648, quantity: 1 }] }, 'items.0.product_id'],
    ['a zero quantity', { user_id: 'u', items: [{ product_id: 1, quantity: 0 }] }, 'items.0.quantity'],
    ['a quantity over 99', { user_id: 'u', items: [{ product_id: 1, quantity: 100 }] }, 'items.0.quantity'],
    ['a missing quantity', { user_id: 'u', items: [{ product_id: 1 }] }, 'items.0.quantity'],
    ['negative shipping', { user_id: 'u', items: [item], shipping_cents: -1 }, 'shipping_cents'],
    ['fractional shipping', { user_id: 'u', items: [item], shipping_cents: 4.99 }, 'shipping_cents'],
    ['another currency', { user_id: 'u', items: [item], currency: 'EUR' }, 'currency'],
    ['a too long payment_id', { user_id: 'u', items: [item], payment_id: 'p'.repeat(101) }, 'payment_id'],
    ['a JSON array', [item], 'body'],
  ])('%s → 422 naming the field', async (_what, payload, field) => {
    const { status, body } = await create(payload);
    expect(status).toBe(422);
    expect(body.error).toContain(field);
    expect(body.issues.map((issue: { field: string }) => issue.field)).toContain(field);
  });

  it('malformed JSON → 400, oversized → 413, non-JSON → 415, and nothing is written', async () => {
    const user = newUser();
    const malformed = await http('POST', '/orders/create', `{"user_id": "${user}", "items": [`);
    expect(malformed.status).toBe(400);
    expect(malformed.body.error).toMatch(/malformed JSON/);
    const big = await create({ user_id: user, items: [{ product_id: products[0]?.id, quantity: 1 }], pad: 'x'.repeat(70_000) });
    expect(big.status).toBe(413);
    const text = await http('POST', '/orders/create', `user_id=${user}`, { 'content-type': 'text/plain' });
    expect(text.status).toBe(415);
    expect(await ordersOf(user)).toBe(0);
  });

  it.each([
    ['abc', 422],
    ['0', 422],
    ['-1', 422],
    ['1e400', 422],
    ['9007199254740991', 404],
  ])('GET /orders/%s → %i', async (id, expected) => {
    const { status, body } = await http('GET', `/orders/${id}`);
    expect(status).toBe(expected);
    expect(body.error).toMatch(expected === 422 ? /order id/ : /not found/);
  });

  it('a wrong method → 405, an unknown route → 404', async () => {
    expect((await http('PUT', '/orders/create', {})).status).toBe(405);
    expect((await http('POST', '/orders', {})).status).toBe(404);
  });
});

describe('checkout: a pool of one connection under load', () => {
  const tiny = serve(service, { DATABASE_URL, CHECKOUT_POOL_MAX: '1', CHECKOUT_POOL_ACQUIRE_TIMEOUT_MS: '50' });

  it('every order is either placed (201) or refused as pool-exhausted (503), never a 500', async () => {
    const [a, b] = products as [Row, Row];
    const user = newUser();
    const replies = await Promise.all(
      Array.from({ length: 20 }, (_, i) =>
        request(
          tiny.url,
          'POST',
          '/orders/create',
          {
            user_id: user,
            items: [
              { product_id: a.id, quantity: 1 + (i % 3) },
              { product_id: b.id, quantity: 1 },
            ],
          },
          { 'idempotency-key': `${RUN}-pool-${i}` },
        ),
      ),
    );
    for (const reply of replies) {
      if (reply.status === 201) continue;
      expect(reply.status, JSON.stringify(reply.body)).toBe(503);
      expect(reply.body.reason).toBe('pool-exhausted');
    }
    // Whatever was written is whole: every order of the user has both of its lines.
    const placed = replies.filter((reply) => reply.status === 201).length;
    const orders = await db('orders').where({ user_id: user }).select('id');
    expect(orders.length).toBeGreaterThanOrEqual(placed);
    for (const order of orders) {
      expect(await db('order_items').where({ order_id: order.id }).count({ n: '*' })).toEqual([{ n: '2' }]);
    }
    expect((await request(tiny.url, 'GET', '/health')).status).toBe(200);
  });
});

describe('checkout: PostgreSQL unreachable', () => {
  const down = serve(service, async () => ({ DATABASE_URL: `postgres://lab:lab@127.0.0.1:${await freePort()}/lab` }));

  it('/health 200, /ready 503 naming postgres', async () => {
    expect((await request(down.url, 'GET', '/health')).status).toBe(200);
    const { status, body } = await request(down.url, 'GET', '/ready');
    expect(status).toBe(503);
    expect(body.checks.postgres).toBeTypeOf('string');
    expect(body.checks.postgres).not.toBe('ok');
  });

  it('an order fails with a 5xx JSON error and the service keeps running', async () => {
    const { status, body } = await request(down.url, 'POST', '/orders/create', { user_id: 'u', items: [{ product_id: 1, quantity: 1 }] });
    expect(status).toBeGreaterThanOrEqual(500);
    expect(body.error).toBeTypeOf('string');
    expect((await request(down.url, 'GET', '/health')).status).toBe(200);
  });
});
