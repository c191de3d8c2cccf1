import { CATEGORIES } from '@bfl/contract';
import knex, { type Knex } from 'knex';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DATABASE_URL, freePort, request, serve } from '../../../test/support.js';
import { HISTORY_WINDOW, service } from '../src/app.js';

let db: Knex;

interface Recommendation {
  product_id: number;
  name: string;
  category: string;
  price_cents: number;
  score: number;
}

beforeAll(async () => {
  db = knex({ client: 'pg', connection: DATABASE_URL, pool: { min: 0, max: 2 } });
});

afterAll(async () => {
  await db?.destroy();
});

const { http } = serve(service, { DATABASE_URL });

describe('recommendation: health', () => {
  it('GET /health answers 200', async () => {
    const { status, body } = await http('GET', '/health');
    expect(status).toBe(200);
    expect(body).toMatchObject({ status: 'ok', service: 'recommendation' });
  });

  it('GET /ready answers 200 with postgres ok', async () => {
    const { status, body } = await http('GET', '/ready');
    expect(status).toBe(200);
    expect(body).toMatchObject({ status: 'ready', checks: { postgres: 'ok' } });
  });
});

describe('recommendation: POST /recommend', () => {
  it('returns `limit` active products sorted by score, best first', async () => {
    const { status, body } = await http('POST', '/recommend', { user_id: 'user-1', category: 'books', limit: 8 });
    expect(status).toBe(200);
    expect(body).toMatchObject({ user_id: 'user-1', category: 'books' });
    const recs = body.recommendations as Recommendation[];
    expect(recs).toHaveLength(8);
    for (const rec of recs) {
      expect(rec).toEqual({
        product_id: expect.any(Number),
        name: expect.any(String),
        category: expect.any(String),
        price_cents: expect.any(Number),
        score: expect.any(Number),
      });
      expect(Number.isInteger(rec.score)).toBe(true);
      expect(rec.score).toBeGreaterThan(0);
    }
    for (let i = 1; i < recs.length; i++) {
      const [previous, current] = [recs[i - 1] as Recommendation, recs[i] as Recommendation];
      expect(previous.score).toBeGreaterThanOrEqual(current.score);
      if (previous.score === current.score) expect(previous.product_id).toBeLessThan(current.product_id);
    }
    expect(new Set(recs.map((rec) => rec.product_id)).size).toBe(recs.length);
  });

  it('recommends only active products, with their catalogue name and price', async () => {
    const { body } = await http('POST', '/recommend', { user_id: 'user-1', category: 'toys', limit: 20 });
    const recs = body.recommendations as Recommendation[];
    expect(recs.length).toBe(20);
    const rows = await db('products')
      .select('id', 'name', 'category', 'price_cents', 'is_active')
      .whereIn(
        'id',
        recs.map((rec) => rec.product_id),
      );
    const byId = new Map(rows.map((row) => [row.id, row]));
    for (const rec of recs) {
      const row = byId.get(rec.product_id);
      expect(row, `product ${rec.product_id}`).toBeDefined();
      expect(row).toMatchObject({ name: rec.name, category: rec.category, price_cents: rec.price_cents, is_active: true });
    }
  });

  it('the top score matches the recent order history', async () => {
    const { body } = await http('POST', '/recommend', { user_id: 'user-1', category: 'garden', limit: 1 });
    const [top] = body.recommendations as Recommendation[];
    expect(top).toBeDefined();
    // Pairs (an active garden product, the recommended product) in the same order, among
    // the most recent HISTORY_WINDOW orders.
    const [latest] = await db('orders').max({ id: 'id' });
    const [counted] = await db('order_items as oi1')
      .join('products as p1', 'p1.id', 'oi1.product_id')
      .join('order_items as oi2', 'oi2.order_id', 'oi1.order_id')
      .where({ 'p1.category': 'garden', 'p1.is_active': true, 'oi2.product_id': top?.product_id })
      .whereNot('oi1.product_id', top?.product_id as number)
      .where('oi1.order_id', '>', Number(latest?.id) - HISTORY_WINDOW)
      .count({ pairs: '*' });
    expect(Number(counted?.pairs)).toBe(top?.score);
  });

  it('limit defaults to 5', async () => {
    const { status, body } = await http('POST', '/recommend', { user_id: 'u', category: 'electronics' });
    expect(status).toBe(200);
    expect(body.recommendations).toHaveLength(5);
  });

  it('every category of the seeded catalogue has recommendations', async () => {
    const replies = await Promise.all(CATEGORIES.map((category) => http('POST', '/recommend', { user_id: 'u', category, limit: 3 })));
    for (const reply of replies) {
      expect(reply.status).toBe(200);
      expect(reply.body.recommendations).toHaveLength(3);
    }
  });

  it('is deterministic for the same input', async () => {
    const input = { user_id: 'u', category: 'home', limit: 10 };
    const [a, b] = await Promise.all([http('POST', '/recommend', input), http('POST', '/recommend', input)]);
    expect(a.body).toEqual(b.body);
  });
});

describe('recommendation: bad input', () => {
  it.each([
    ['an unknown category', { user_id: 'u', category: 'weapons' }, 'category'],
    ['a missing category', { user_id: 'u' }, 'category'],
    ['a numeric category', { user_id: 'u', category: 3 }, 'category'],
    ['a missing user_id', { category: 'books' }, 'user_id'],
    ['a bad user_id', { user_id: 'a b', category: 'books' }, 'user_id'],
    ['a limit of 0', { user_id: 'u', category: 'books', limit: 0 }, 'limit'],
    ['a limit over 20', { user_id: 'u', category: 'books', limit: 21 }, 'limit'],
    ['a string limit', { user_id: 'u', category: 'books', limit: '5' }, 'limit'],
    ['a fractional limit', { user_id: 'u', category: 'books', limit: 2.5 }, 'limit'],
    ['a JSON array', [{ user_id: 'u', category: 'books' }], 'body'],
  ])('%s → 422 naming the field', async (_what, payload, field) => {
    const { status, body } = await http('POST', '/recommend', payload);
    expect(status).toBe(422);
    expect(body.error).toContain(field);
    expect(body.issues.map((issue: { field: string }) => issue.field)).toContain(field);
  });

  it('malformed JSON → 400, oversized → 413, non-JSON → 415', async () => {
    const malformed = await http('POST', '/recommend', '{"user_id": "u",');
    expect(malformed.status).toBe(400);
    expect(malformed.body.error).toMatch(/malformed JSON/);
    const big = await http('POST', '/recommend', { user_id: 'u', category: 'books', pad: 'x'.repeat(70_000) });
    expect(big.status).toBe(413);
    const text = await http('POST', '/recommend', 'category=books', { 'content-type': 'text/plain' });
    expect(text.status).toBe(415);
  });

  it('a wrong method → 405, an unknown route → 404', async () => {
    expect((await http('GET', '/recommend')).status).toBe(405);
    expect((await http('POST', '/recommendations', { user_id: 'u', category: 'books' })).status).toBe(404);
  });
});

describe('recommendation: PostgreSQL unreachable', () => {
  const down = serve(service, async () => ({ DATABASE_URL: `postgres://lab:lab@127.0.0.1:${await freePort()}/lab` }));

  it('/health 200, /ready 503 naming postgres', async () => {
    expect((await request(down.url, 'GET', '/health')).status).toBe(200);
    const { status, body } = await request(down.url, 'GET', '/ready');
    expect(status).toBe(503);
    expect(body.error).toBe('not ready');
    expect(body.checks.postgres).toBeTypeOf('string');
    expect(body.checks.postgres).not.toBe('ok');
  });

  it('a recommendation fails with a 5xx JSON error and the service keeps running', async () => {
    const { status, body } = await request(down.url, 'POST', '/recommend', { user_id: 'u', category: 'books' });
    expect(status).toBeGreaterThanOrEqual(500);
    expect(body.error).toBeTypeOf('string');
    expect((await request(down.url, 'GET', '/health')).status).toBe(200);
  });
});

describe('recommendation: the query plan', () => {
  it('runs serially: the lab database allows no parallel plan and no JIT (init-db.sql)', async () => {
    // A parallel plan starts worker processes for every query: 16 ms instead of 4 ms and
    // two more busy processes per recommendation on a two-core machine.
    const settings = await db.raw("SELECT current_setting('max_parallel_workers_per_gather') AS workers, current_setting('jit') AS jit");
    expect(settings.rows[0]).toEqual({ workers: '0', jit: 'off' });
    const plan = await db.raw(
      `EXPLAIN (FORMAT JSON) SELECT oi2.product_id, count(*) FROM order_items oi1
         JOIN order_items oi2 ON oi2.order_id = oi1.order_id AND oi2.product_id <> oi1.product_id
        WHERE oi1.order_id > (SELECT max(id) - ? FROM orders) GROUP BY oi2.product_id`,
      [HISTORY_WINDOW],
    );
    expect(JSON.stringify(plan.rows[0])).not.toMatch(/"Node Type":"Gather|"Parallel Aware":true/);
  });
});
