import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort, type Json, REDIS_URL, serve } from '../../../test/support.js';
import { service } from '../src/app.js';

const TTL_SECONDS = 600;
const MAX_LINES = 3;
let redis: Redis;
const created: string[] = [];

/** A fresh cart id for this run; its key is removed after the file. */
function newCart(): string {
  const id = `test-${randomUUID()}`;
  created.push(`cart:${id}`);
  return id;
}

beforeAll(async () => {
  redis = new Redis(REDIS_URL, { maxRetriesPerRequest: 1 });
});

afterAll(async () => {
  if (created.length) await redis?.del(...created);
  await redis?.quit();
});

// Registered after the hooks above, so (hooks stack) the service starts after Redis connects and closes before the cleanup.
const { http } = serve(service, { REDIS_URL, CART_TTL_SECONDS: String(TTL_SECONDS), CART_MAX_LINES: String(MAX_LINES) });

describe('cart: health', () => {
  it('GET /health answers 200', async () => {
    const { status, body } = await http('GET', '/health');
    expect(status).toBe(200);
    expect(body).toMatchObject({ status: 'ok', service: 'cart' });
  });

  it('GET /ready answers 200 with redis ok', async () => {
    const { status, body } = await http('GET', '/ready');
    expect(status).toBe(200);
    expect(body).toMatchObject({ status: 'ready', service: 'cart', checks: { redis: 'ok' } });
  });
});

describe('cart: happy path', () => {
  it('an unknown cart is empty', async () => {
    const id = newCart();
    const { status, body } = await http('GET', `/cart/${id}`);
    expect(status).toBe(200);
    expect(body).toEqual({ cart_id: id, items: [], item_count: 0, total_cents: 0 });
    expect(await redis.exists(`cart:${id}`)).toBe(0);
  });

  it('POST /cart/:id/items stores the line in Redis under cart:<id> with a TTL', async () => {
    const id = newCart();
    const { status, body } = await http('POST', `/cart/${id}/items`, {
      product_id: 1001,
      quantity: 2,
      unit_price_cents: 1299,
      name: 'The Hidden Garden',
      category: 'books',
    });
    expect(status).toBe(201);
    expect(body).toEqual({
      cart_id: id,
      items: [{ product_id: 1001, quantity: 2, unit_price_cents: 1299, name: 'The Hidden Garden', category: 'books' }],
      item_count: 2,
      total_cents: 2598,
    });
    const stored = await redis.hgetall(`cart:${id}`);
    expect(stored['q:1001']).toBe('2');
    expect(JSON.parse(stored['i:1001'] as string)).toEqual({ unit_price_cents: 1299, name: 'The Hidden Garden', category: 'books' });
    const ttl = await redis.ttl(`cart:${id}`);
    expect(ttl).toBeGreaterThan(0);
    expect(ttl).toBeLessThanOrEqual(TTL_SECONDS);
  });

  it('quantity defaults to 1 and GET returns what was stored', async () => {
    const id = newCart();
    expect((await http('POST', `/cart/${id}/items`, { product_id: 7 })).status).toBe(201);
    const { status, body } = await http('GET', `/cart/${id}`);
    expect(status).toBe(200);
    expect(body).toEqual({ cart_id: id, items: [{ product_id: 7, quantity: 1 }], item_count: 1, total_cents: 0 });
  });

  it('adding the same product twice sums the quantities', async () => {
    const id = newCart();
    await http('POST', `/cart/${id}/items`, { product_id: 42, quantity: 2, unit_price_cents: 500 });
    const { status, body } = await http('POST', `/cart/${id}/items`, { product_id: 42, quantity: 3, unit_price_cents: 500 });
    expect(status).toBe(201);
    expect(body.items).toEqual([{ product_id: 42, quantity: 5, unit_price_cents: 500 }]);
    expect(body).toMatchObject({ item_count: 5, total_cents: 2500 });
    expect(await redis.hget(`cart:${id}`, 'q:42')).toBe('5');
  });

  it('concurrent adds of the same product lose no quantity', async () => {
    const id = newCart();
    await Promise.all(Array.from({ length: 10 }, () => http('POST', `/cart/${id}/items`, { product_id: 5, quantity: 1 })));
    const { body } = await http('GET', `/cart/${id}`);
    expect(body.items).toEqual([{ product_id: 5, quantity: 10 }]);
  });

  it('several products are listed in product id order with totals', async () => {
    const id = newCart();
    await http('POST', `/cart/${id}/items`, { product_id: 30, quantity: 1, unit_price_cents: 1000 });
    await http('POST', `/cart/${id}/items`, { product_id: 10, quantity: 3, unit_price_cents: 250 });
    const { body } = await http('GET', `/cart/${id}`);
    expect(body.items.map((item: { product_id: number }) => item.product_id)).toEqual([10, 30]);
    expect(body).toMatchObject({ item_count: 4, total_cents: 1750 });
  });

  it('every write renews the TTL', async () => {
    const id = newCart();
    await http('POST', `/cart/${id}/items`, { product_id: 1, quantity: 1 });
    await redis.expire(`cart:${id}`, 5);
    await http('POST', `/cart/${id}/items`, { product_id: 2, quantity: 1 });
    expect(await redis.ttl(`cart:${id}`)).toBeGreaterThan(5);
  });

  it('DELETE /cart/:id empties the cart and removes the key', async () => {
    const id = newCart();
    await http('POST', `/cart/${id}/items`, { product_id: 3, quantity: 1 });
    expect(await redis.exists(`cart:${id}`)).toBe(1);
    const { status, body } = await http('DELETE', `/cart/${id}`);
    expect(status).toBe(200);
    expect(body).toEqual({ cart_id: id, deleted: true });
    expect(await redis.exists(`cart:${id}`)).toBe(0);
    expect((await http('GET', `/cart/${id}`)).body.items).toEqual([]);
    expect((await http('DELETE', `/cart/${id}`)).body).toEqual({ cart_id: id, deleted: false });
  });

  it('accepts every character of the id alphabet', async () => {
    const id = `test.${randomUUID()}:A_b-9`;
    created.push(`cart:${id}`);
    const { status, body } = await http('POST', `/cart/${id}/items`, { product_id: 1 });
    expect(status).toBe(201);
    expect(body.cart_id).toBe(id);
    expect(await redis.exists(`cart:${id}`)).toBe(1);
  });
});

describe('cart: limits', () => {
  it(`a cart holds at most CART_MAX_LINES (${MAX_LINES}) different products → 422`, async () => {
    const id = newCart();
    for (let product = 1; product <= MAX_LINES; product++) {
      expect((await http('POST', `/cart/${id}/items`, { product_id: product })).status).toBe(201);
    }
    const before = await redis.hgetall(`cart:${id}`);
    const { status, body } = await http('POST', `/cart/${id}/items`, { product_id: 99 });
    expect(status).toBe(422);
    expect(body.error).toMatch(new RegExp(`${MAX_LINES} different products`));
    expect(await redis.hgetall(`cart:${id}`)).toEqual(before);
    // More of a product already in the cart is still fine.
    const more = await http('POST', `/cart/${id}/items`, { product_id: 1, quantity: 4 });
    expect(more.status).toBe(201);
    expect(more.body.items).toHaveLength(MAX_LINES);
    expect(more.body.items[0]).toEqual({ product_id: 1, quantity: 5 });
  });

  // BUG (reported, services/cart/src/app.ts): the line count is checked with HKEYS and written
  // in a separate MULTI, so concurrent adds of different products all pass the check and a
  // cart ends up with more than CART_MAX_LINES lines. Unskip once the check is atomic.
  it(`concurrent adds of different products never exceed CART_MAX_LINES`, async () => {
    const id = newCart();
    const replies = await Promise.all(Array.from({ length: 12 }, (_, i) => http('POST', `/cart/${id}/items`, { product_id: 100 + i })));
    for (const reply of replies) expect([201, 422]).toContain(reply.status);
    const lines = (await redis.hkeys(`cart:${id}`)).filter((field) => field.startsWith('q:'));
    expect(lines.length).toBeLessThanOrEqual(MAX_LINES);
    expect(replies.filter((reply) => reply.status === 201)).toHaveLength(lines.length);
  });

  // BUG (reported, services/cart/src/app.ts): a line is capped at 99 per request but not in
  // total, so 60 + 60 stores 120; shipping and checkout refuse quantities over 99 and the
  // frontend's checkout of that cart fails with 502. Unskip once the summed line is capped.
  it('a line never holds more than 99 units → 422 and the cart unchanged', async () => {
    const id = newCart();
    expect((await http('POST', `/cart/${id}/items`, { product_id: 8, quantity: 60 })).status).toBe(201);
    const { status, body } = await http('POST', `/cart/${id}/items`, { product_id: 8, quantity: 60 });
    expect(status).toBe(422);
    expect(body.error).toContain('quantity');
    expect(await redis.hget(`cart:${id}`, 'q:8')).toBe('60');
  });
});

describe('cart: bad input never changes a stored cart', () => {
  let id: string;
  let stored: Record<string, string>;

  beforeAll(async () => {
    id = newCart();
    await http('POST', `/cart/${id}/items`, { product_id: 11, quantity: 2, unit_price_cents: 999, name: 'Kite' });
    stored = await redis.hgetall(`cart:${id}`);
    expect(stored['q:11']).toBe('2');
  });

  it.each([
    ['a missing product_id', { quantity: 1 }, 'product_id'],
    ['a string product_id', { product_id: '11', quantity: 1 }, 'product_id'],
    ['a fractional product_id', { product_id: 11.5 }, 'product_id'],
    ['a negative product_id', { product_id: -11 }, 'product_id'],
    ['a zero quantity', { product_id: 11, quantity: 0 }, 'quantity'],
    ['a quantity over 99', { product_id: 11, quantity: 100 }, 'quantity'],
    ['a string quantity', { product_id: 11, quantity: 'two' }, 'quantity'],
    ['a negative price', { product_id: 11, unit_price_cents: -1 }, 'unit_price_cents'],
    ['a too long name', { product_id: 11, name: 'n'.repeat(201) }, 'name'],
    ['a JSON array', [{ product_id: 11 }], 'body'],
  ])('%s → 422 naming the field', async (_what, payload, field) => {
    const { status, body } = await http('POST', `/cart/${id}/items`, payload);
    expect(status).toBe(422);
    expect(body.error).toContain(field);
    expect(body.issues.map((issue: { field: string }) => issue.field)).toContain(field);
    expect(await redis.hgetall(`cart:${id}`)).toEqual(stored);
  });

  it('an empty body → 422 naming product_id', async () => {
    const { status, body } = await http('POST', `/cart/${id}/items`);
    expect(status).toBe(422);
    expect(body.error).toContain('product_id');
    expect(await redis.hgetall(`cart:${id}`)).toEqual(stored);
  });

  it('malformed JSON → 400', async () => {
    const { status, body } = await http('POST', `/cart/${id}/items`, '{"product_id": 11, "quantity": ');
    expect(status).toBe(400);
    expect(body.error).toMatch(/malformed JSON/);
    expect(await redis.hgetall(`cart:${id}`)).toEqual(stored);
  });

  it('an oversized body → 413', async () => {
    const { status, body } = await http('POST', `/cart/${id}/items`, { product_id: 11, name: 'x'.repeat(70_000) });
    expect(status).toBe(413);
    expect(body.error).toMatch(/too large/);
    expect(await redis.hgetall(`cart:${id}`)).toEqual(stored);
  });

  it('a non-JSON content type → 415', async () => {
    const { status } = await http('POST', `/cart/${id}/items`, 'product_id=11', { 'content-type': 'text/plain' });
    expect(status).toBe(415);
    expect(await redis.hgetall(`cart:${id}`)).toEqual(stored);
  });

  it('the cart still reads back the same', async () => {
    const { body } = await http('GET', `/cart/${id}`);
    expect(body.items).toEqual([{ product_id: 11, quantity: 2, unit_price_cents: 999, name: 'Kite' }]);
  });
});

describe('cart: bad path params and routes', () => {
  it.each([
    ['a space', 'bad%20id'],
    ['a slash', 'a%2Fb'],
    ['65 characters', 'c'.repeat(65)],
    ['a star', 'cart*'],
  ])('a cart id with %s → 422 naming the cart id', async (_what, badId) => {
    for (const [method, path, payload] of [
      ['GET', `/cart/${badId}`, undefined],
      ['POST', `/cart/${badId}/items`, { product_id: 1 }],
      ['DELETE', `/cart/${badId}`, undefined],
    ] as const) {
      const { status, body } = await http(method, path, payload);
      expect(status, `${method} ${path}`).toBe(422);
      expect(body.error).toMatch(/cart id/);
    }
  });

  it('a wrong method → 405, an unknown route → 404', async () => {
    expect((await http('PUT', `/cart/${newCart()}`, {})).status).toBe(405);
    const missing = await http('GET', '/carts');
    expect(missing.status).toBe(404);
    expect(missing.body.error).toBeTypeOf('string');
  });
});

describe('cart: Redis unreachable', () => {
  const down = serve(service, async () => ({ REDIS_URL: `redis://127.0.0.1:${await freePort()}` }));

  it('/health still answers 200', async () => {
    const response = await fetch(`${down.url}/health`);
    expect(response.status).toBe(200);
  });

  it('/ready answers 503 naming the redis check', async () => {
    const response = await fetch(`${down.url}/ready`);
    expect(response.status).toBe(503);
    const body: Json = await response.json();
    expect(body.error).toBe('not ready');
    expect(body.checks.redis).toBeTypeOf('string');
    expect(body.checks.redis).not.toBe('ok');
  });

  // BUG (reported, packages/kit/src/app.ts errorResponse): a Redis that is down answers
  // 500 "internal error"; it should be 503 with reason 'redis-unavailable'. Unskip once fixed.
  it('a cart request answers 503 redis-unavailable', async () => {
    const response = await fetch(`${down.url}/cart/${newCart()}`);
    expect(response.status).toBe(503);
    expect(((await response.json()) as Json).reason).toBe('redis-unavailable');
  });

  it('a cart request fails with a 5xx JSON error and the service keeps running', async () => {
    const response = await fetch(`${down.url}/cart/${newCart()}`);
    expect(response.status).toBeGreaterThanOrEqual(500);
    expect(((await response.json()) as Json).error).toBeTypeOf('string');
    expect((await fetch(`${down.url}/health`)).status).toBe(200);
  });
});
