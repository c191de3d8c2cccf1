/**
 * The incident's mechanisms, one at a time, on real PostgreSQL and Redis: the knobs
 * published in lab:scenario change what the services really do.
 */
import { randomUUID } from 'node:crypto';
import { STORY_POOLS, statementTimeoutFor } from '@bfl/contract';
import { loadConfig, type Started, startService } from '@bfl/kit';
import { SCENARIO_KEY } from '@bfl/kit/scenario-state';
import { Redis } from 'ioredis';
import knex from 'knex';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { service as checkout } from '../services/checkout/src/app.js';
import { service as recommendation } from '../services/recommendation/src/app.js';
import { DATABASE_URL, quiet, REDIS_URL, request } from './support.js';

const redis = new Redis(REDIS_URL);
const knobs = async (values: Record<string, number>, minute = 4) => {
  await redis.set(
    SCENARIO_KEY,
    JSON.stringify({ scenario: 'test', startedAt: '', minuteMs: 5_000, minute, label: '', knobs: values, updatedAt: '' }),
    'PX',
    20_000,
  );
  await new Promise((resolve) => setTimeout(resolve, 1_300)); // services re-read it twice a second
};

let rec: Started;
let chk: Started;

beforeAll(async () => {
  rec = await startService(recommendation, { ...quiet, RECOMMENDATION_POOL_MAX: '1', RECOMMENDATION_DEADLINE_SLACK_MS: '0' });
  chk = await startService(checkout, { ...quiet, CHECKOUT_POOL_MAX: '1', CHECKOUT_POOL_ACQUIRE_TIMEOUT_MS: '100' });
});

afterEach(() => redis.del(SCENARIO_KEY));

afterAll(async () => {
  await rec?.close();
  await chk?.close();
  await redis.quit();
});

const recommend = (headers: Record<string, string> = {}) =>
  request(rec.url, 'POST', '/recommend', { user_id: 'incident', category: 'books', limit: 3 }, headers);

describe('recommendation under the query-cost knob', () => {
  it('is fast with healthy knobs, slow when the knob raises the query cost, and queues on its bounded pool', async () => {
    let started = performance.now();
    expect((await recommend()).status).toBe(200);
    expect(performance.now() - started).toBeLessThan(250);

    await knobs({ recommendation_query_cost_ms: 300 });
    started = performance.now();
    const replies = await Promise.all([recommend(), recommend(), recommend()]);
    const took = performance.now() - started;
    for (const reply of replies) expect(reply.status).toBe(200);
    // One connection: three 300 ms queries wait for each other.
    expect(took).toBeGreaterThan(850);
  });

  it('skips the query for a caller whose deadline will pass before it finishes', async () => {
    await knobs({ recommendation_query_cost_ms: 400 });
    const deadline = String(Date.now() + 200);
    const reply = await recommend({ 'x-request-deadline': deadline });
    expect(reply.status).toBe(504);
    expect(reply.body.reason).toBe('deadline-exceeded');
  });

  it('is healthy again as soon as the key is gone', async () => {
    await knobs({ recommendation_query_cost_ms: 500 });
    await redis.del(SCENARIO_KEY);
    await new Promise((resolve) => setTimeout(resolve, 1_300));
    const started = performance.now();
    expect((await recommend()).status).toBe(200);
    expect(performance.now() - started).toBeLessThan(250);
  });
});

describe('checkout under the write-delay knob', () => {
  it('runs its bounded pool dry: real pool-exhausted 503s, and the orders that got through are whole', async () => {
    await knobs({ checkout_write_delay_ms: 300 });
    const user = `incident-${randomUUID().slice(0, 8)}`;
    const replies = await Promise.all(
      Array.from({ length: 4 }, () =>
        request(chk.url, 'POST', '/orders/create', { user_id: user, items: [{ product_id: 1001, quantity: 1 }] }),
      ),
    );
    const statuses = replies.map((r) => r.status).sort();
    expect(statuses).toContain(201);
    expect(statuses).toContain(503);
    for (const reply of replies.filter((r) => r.status === 503)) expect(reply.body.reason).toBe('pool-exhausted');
    for (const reply of replies.filter((r) => r.status === 201)) expect(reply.body.items).toHaveLength(1);
  });
});

describe('statement_timeout', () => {
  it('cancels an order statement that waits past it: a 503 statement-timeout, the connection back in the pool', async () => {
    // A lock on orders holds the order's INSERT; lock waits count towards statement_timeout.
    const db = knex({ client: 'pg', connection: DATABASE_URL, pool: { min: 0, max: 1 } });
    const trx = await db.transaction();
    try {
      await trx.raw('LOCK TABLE orders IN ACCESS EXCLUSIVE MODE');
      const started = performance.now();
      const reply = await request(chk.url, 'POST', '/orders/create', {
        user_id: 'incident-lock',
        items: [{ product_id: 1001, quantity: 1 }],
      });
      const took = performance.now() - started;
      expect(reply.status).toBe(503);
      expect(reply.body.reason).toBe('statement-timeout');
      expect(took).toBeGreaterThanOrEqual(statementTimeoutFor('checkout_write_delay_ms') - 50);
    } finally {
      await trx.rollback();
      await db.destroy();
    }
    // The pool of one is not left holding a broken connection.
    const again = await request(chk.url, 'POST', '/orders/create', {
      user_id: 'incident-lock',
      items: [{ product_id: 1001, quantity: 1 }],
    });
    expect(again.status).toBe(201);
  });
});

describe('the story pools', () => {
  it('are the sizes the services default to (what npm run lab -- --scale scales)', () => {
    expect(loadConfig(checkout.config, {}).CHECKOUT_POOL_MAX).toBe(STORY_POOLS.CHECKOUT_POOL_MAX);
    expect(loadConfig(recommendation.config, {}).RECOMMENDATION_POOL_MAX).toBe(STORY_POOLS.RECOMMENDATION_POOL_MAX);
  });
});
