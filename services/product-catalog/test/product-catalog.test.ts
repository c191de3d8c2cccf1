import type { Product as CatalogProduct } from '@bfl/contract';
import knex, { type Knex } from 'knex';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DATABASE_URL, freePort, request, serve } from '../../../test/support.js';
import { service as recommendationService } from '../../recommendation/src/app.js';
import { service } from '../src/app.js';

let db: Knex;

/** A product as the API answers it (recommendations add a score). */
type Product = CatalogProduct & { score?: number };

const COLUMNS = ['id', 'sku', 'name', 'description', 'category', 'price_cents', 'currency', 'is_active'];

beforeAll(async () => {
  db = knex({ client: 'pg', connection: DATABASE_URL, pool: { min: 0, max: 2 } });
});

afterAll(async () => {
  await db?.destroy();
});

// Hooks stack: the database, recommendation and the catalogue start in this order and close in the reverse one.
const recommendation = serve(recommendationService, { DATABASE_URL });
const { http } = serve(service, () => ({ DATABASE_URL, RECOMMENDATION_URL: recommendation.url }));

describe('product-catalog: health', () => {
  it('GET /health answers 200', async () => {
    const { status, body } = await http('GET', '/health');
    expect(status).toBe(200);
    expect(body).toMatchObject({ status: 'ok', service: 'product-catalog' });
  });

  it('GET /ready answers 200 with postgres and recommendation ok', async () => {
    const { status, body } = await http('GET', '/ready');
    expect(status).toBe(200);
    expect(body).toMatchObject({ status: 'ready', checks: { postgres: 'ok', recommendation: 'ok' } });
  });
});

describe('product-catalog: GET /products', () => {
  it('?category=books returns only active books, in id order, 20 by default', async () => {
    const { status, body } = await http('GET', '/products?category=books');
    expect(status).toBe(200);
    const products = body.products as Product[];
    expect(body).toMatchObject({ category: 'books', count: 20 });
    expect(products).toHaveLength(20);
    for (const product of products) expect(product).toMatchObject({ category: 'books', is_active: true, currency: 'USD' });
    const expected = await db('products').select(COLUMNS).where({ category: 'books', is_active: true }).orderBy('id').limit(20);
    expect(products).toEqual(expected);
  });

  it('limit and offset page through the category', async () => {
    const first = await http('GET', '/products?category=toys&limit=5');
    const second = await http('GET', '/products?category=toys&limit=5&offset=5');
    expect(first.status).toBe(200);
    expect(first.body.products).toHaveLength(5);
    expect(second.body.products).toHaveLength(5);
    const both = await http('GET', '/products?category=toys&limit=10');
    expect([...first.body.products, ...second.body.products]).toEqual(both.body.products);
  });

  it('limit=100 is allowed and never returns inactive products', async () => {
    const { status, body } = await http('GET', '/products?category=garden&limit=100');
    expect(status).toBe(200);
    expect(body.count).toBe(100);
    expect(body.products.every((p: Product) => p.is_active && p.category === 'garden')).toBe(true);
  });

  it('an offset past the end gives an empty list', async () => {
    const { status, body } = await http('GET', '/products?category=books&offset=10000');
    expect(status).toBe(200);
    expect(body).toEqual({ category: 'books', count: 0, products: [] });
  });

  it('without a category lists active products of any category', async () => {
    const { status, body } = await http('GET', '/products?limit=3');
    expect(status).toBe(200);
    expect(body.category).toBeNull();
    expect(body.products).toHaveLength(3);
    expect(body.products.every((p: Product) => p.is_active)).toBe(true);
  });
});

describe('product-catalog: GET /products/:id', () => {
  it('returns the product as stored', async () => {
    const row = await db('products').select(COLUMNS).where({ is_active: true, category: 'sports' }).orderBy('id').first();
    const { status, body } = await http('GET', `/products/${row.id}`);
    expect(status).toBe(200);
    expect(body).toEqual(row);
  });

  it('an inactive product is still shown, marked inactive', async () => {
    const row = await db('products').select('id').where({ is_active: false }).orderBy('id').first();
    const { status, body } = await http('GET', `/products/${row.id}`);
    expect(status).toBe(200);
    expect(body).toMatchObject({ id: row.id, is_active: false });
  });

  it('an unknown id → 404', async () => {
    const { status, body } = await http('GET', '/products/2000000000');
    expect(status).toBe(404);
    expect(body.error).toMatch(/product 2000000000 not found/);
  });

  it.each([
    ['abc', 'a word'],
    ['0', 'zero'],
    ['-3', 'a negative id'],
    ['1.5', 'a fraction'],
    ['99999999999', 'an id over int4'],
  ])('/products/%s (%s) → 422 naming the product id', async (id) => {
    const { status, body } = await http('GET', `/products/${id}`);
    expect(status).toBe(422);
    expect(body.error).toMatch(/product id/);
    expect(body.issues).toHaveLength(1);
  });
});

describe('product-catalog: GET /products/recommendations', () => {
  it('returns catalogue products with a score, best first', async () => {
    const { status, body } = await http('GET', '/products/recommendations?category=books&user_id=u-1&limit=4');
    expect(status).toBe(200);
    expect(body).toMatchObject({ category: 'books', count: 4 });
    const products = body.products as Product[];
    expect(products).toHaveLength(4);
    const direct = await request(recommendation.url, 'POST', '/recommend', { user_id: 'u-1', category: 'books', limit: 4 });
    expect(products.map((p) => [p.id, p.score])).toEqual(
      direct.body.recommendations.map((r: { product_id: number; score: number }) => [r.product_id, r.score]),
    );
    const rows = await db('products')
      .select(COLUMNS)
      .whereIn(
        'id',
        products.map((p) => p.id),
      );
    for (const product of products) {
      expect(product.score).toBeGreaterThan(0);
      const { score: _score, ...rest } = product;
      expect(rest).toEqual(rows.find((row) => row.id === product.id));
    }
    const scores = products.map((p) => p.score as number);
    expect(scores).toEqual([...scores].sort((a, b) => b - a));
  });

  it('user_id and limit have defaults', async () => {
    const { status, body } = await http('GET', '/products/recommendations?category=electronics');
    expect(status).toBe(200);
    expect(body.count).toBe(5);
  });

  it.each([
    ['a missing category', '/products/recommendations', 'category'],
    ['an unknown category', '/products/recommendations?category=weapons', 'category'],
    ['a bad user_id', '/products/recommendations?category=books&user_id=a%20b', 'user_id'],
    ['a limit over 20', '/products/recommendations?category=books&limit=21', 'limit'],
  ])('%s → 422 naming the field', async (_what, path, field) => {
    const { status, body } = await http('GET', path);
    expect(status).toBe(422);
    expect(body.error).toContain(field);
  });
});

describe('product-catalog: bad input', () => {
  it.each([
    ['an unknown category', '/products?category=weapons', 'category'],
    ['an upper-case category', '/products?category=BOOKS', 'category'],
    ['a limit of 0', '/products?limit=0', 'limit'],
    ['a limit over 100', '/products?limit=101', 'limit'],
    ['a non-numeric limit', '/products?limit=ten', 'limit'],
    ['a negative offset', '/products?offset=-1', 'offset'],
    ['an offset over 10000', '/products?offset=10001', 'offset'],
    ['a repeated category', '/products?category=books&category=toys', 'category'],
  ])('%s → 422 naming the field', async (_what, path, field) => {
    const { status, body } = await http('GET', path);
    expect(status).toBe(422);
    expect(body.error).toContain(field);
    expect(body.issues.map((issue: { field: string }) => issue.field)).toContain(field);
  });

  it('malformed JSON → 400, oversized → 413, non-JSON → 415', async () => {
    expect((await http('POST', '/products', '{"x":')).status).toBe(400);
    expect((await http('POST', '/products', { pad: 'x'.repeat(70_000) })).status).toBe(413);
    expect((await http('POST', '/products', 'x', { 'content-type': 'text/plain' })).status).toBe(415);
  });

  it('a wrong method → 405, an unknown route → 404', async () => {
    expect((await http('DELETE', '/products/1')).status).toBe(405);
    const missing = await http('GET', '/catalog');
    expect(missing.status).toBe(404);
    expect(missing.body.error).toMatch(/no route/);
  });
});

describe('product-catalog: dependencies unreachable', () => {
  const noDb = serve(service, async () => ({
    DATABASE_URL: `postgres://lab:lab@127.0.0.1:${await freePort()}/lab`,
    RECOMMENDATION_URL: recommendation.url,
  }));
  const noRecommendation = serve(service, async () => ({ DATABASE_URL, RECOMMENDATION_URL: `http://127.0.0.1:${await freePort()}` }));

  it('PostgreSQL down: /health 200, /ready 503 naming postgres', async () => {
    expect((await request(noDb.url, 'GET', '/health')).status).toBe(200);
    const { status, body } = await request(noDb.url, 'GET', '/ready');
    expect(status).toBe(503);
    expect(body.checks.postgres).not.toBe('ok');
    expect(body.checks.recommendation).toBe('ok');
  });

  it('PostgreSQL down: a listing fails with a 5xx JSON error and the service keeps running', async () => {
    const { status, body } = await request(noDb.url, 'GET', '/products?category=books');
    expect(status).toBeGreaterThanOrEqual(500);
    expect(body.error).toBeTypeOf('string');
    expect((await request(noDb.url, 'GET', '/health')).status).toBe(200);
  });

  // BUG (reported, packages/kit/src/app.ts errorResponse): an unreachable database answers
  // 500 "internal error"; it should be 503 with reason 'postgres-unavailable'. Unskip once fixed.
  it('PostgreSQL down: a listing answers 503 postgres-unavailable', async () => {
    const { status, body } = await request(noDb.url, 'GET', '/products?category=books');
    expect(status).toBe(503);
    expect(body.reason).toBe('postgres-unavailable');
  });

  it('recommendation down: /ready 503 naming recommendation', async () => {
    const { status, body } = await request(noRecommendation.url, 'GET', '/ready');
    expect(status).toBe(503);
    expect(body.checks).toMatchObject({ postgres: 'ok' });
    expect(body.checks.recommendation).toMatch(/unreachable/);
  });

  it('recommendation down: /products/recommendations → 503 recommendation-unavailable, listings still work', async () => {
    const { status, body } = await request(noRecommendation.url, 'GET', '/products/recommendations?category=books');
    expect(status).toBe(503);
    expect(body).toMatchObject({ reason: 'recommendation-unavailable', service: 'recommendation' });
    expect((await request(noRecommendation.url, 'GET', '/products?category=books&limit=1')).status).toBe(200);
  });
});
