import { CATEGORIES, DEFAULT_DATABASE_URL, DEFAULT_REDIS_URL, IdSchema, STORY_POOLS, statementTimeoutFor } from '@bfl/contract';
import { annotate, createApp, defineService, env, HttpError, LatencyModel, remainingBudget, validateBody, z } from '@bfl/kit';
import { closeDb, createDb, type Knex, pingDb } from '@bfl/kit/db';
import { startScenarioReader } from '@bfl/kit/scenario-state';
import { type Span, SpanKind, SpanStatusCode, trace } from '@opentelemetry/api';

const Recommend = z.object({
  user_id: IdSchema('user_id'),
  category: z.enum(CATEGORIES),
  limit: z.number().int().min(1).max(20).default(5),
});

export interface Recommendation {
  product_id: number;
  name: string;
  category: string;
  price_cents: number;
  /** How many past orders contained this product together with one of the category. */
  score: number;
}

/** How many of the most recent orders the "bought together" ranking looks at. */
export const HISTORY_WINDOW = 4_000;

/**
 * "Bought together": products that appear in the same recent orders as active products
 * of the category, ranked by how often they were bought with them. Real work over the
 * order history. `costMs` is a server-side wait inside the same statement (the incident
 * knob), so the pg span shows the whole time and the connection stays busy for it.
 */
async function boughtTogether(db: Knex, category: string, limit: number, costMs = 0, connection?: unknown): Promise<Recommendation[]> {
  const query = db.raw<{ rows: Recommendation[] }>(
    `WITH cost AS MATERIALIZED (SELECT pg_sleep(?::float8 / 1000)),
     pairs AS (
       SELECT oi2.product_id, count(*)::int AS score
         FROM cost, products p1
         JOIN order_items oi1 ON oi1.product_id = p1.id
          AND oi1.order_id > (SELECT coalesce(max(id), 0) - ? FROM orders)
         JOIN order_items oi2 ON oi2.order_id = oi1.order_id AND oi2.product_id <> oi1.product_id
        WHERE p1.category = ? AND p1.is_active
        GROUP BY oi2.product_id)
     SELECT p.id AS product_id, p.name, p.category, p.price_cents, pairs.score
       FROM pairs JOIN products p ON p.id = pairs.product_id AND p.is_active
      ORDER BY pairs.score DESC, p.id
      LIMIT ?`,
    [costMs, HISTORY_WINDOW, category, limit],
  );
  if (connection) query.connection(connection);
  return (await query).rows;
}

const tracer = trace.getTracer('recommendation');

/**
 * Runs the query on a connection of the bounded pool. Waiting for the connection is a
 * span of its own (`pg.pool.acquire`, with `db.client.connection.wait_time`). A request
 * whose caller has given up by the time it gets a connection (its deadline, minus the
 * query's expected cost and the slack its caller needs afterwards, has passed) hands the
 * connection back unused: the pool's time goes to requests someone still waits for.
 */
export async function recommendWithinDeadline(
  db: Knex,
  category: string,
  limit: number,
  costMs: number,
  slackMs = 0,
  /** The request's server span: it gets the wait time too (`annotate`'s span). */
  serverSpan?: Span,
): Promise<Recommendation[]> {
  const connection = await tracer.startActiveSpan('pg.pool.acquire', { kind: SpanKind.INTERNAL }, async (span) => {
    const started = performance.now();
    try {
      return await db.client.acquireConnection();
    } catch (error) {
      span.recordException(error as Error);
      span.setStatus({ code: SpanStatusCode.ERROR, message: (error as Error).message });
      throw error;
    } finally {
      const waited = performance.now() - started;
      span.setAttribute('db.client.connection.wait_time', Math.round(waited));
      // Not trace.getActiveSpan(): inside startActiveSpan that is this acquire span.
      serverSpan?.setAttribute('db.client.connection.wait_time', Math.round(waited));
      span.end();
    }
  });
  try {
    trace.getActiveSpan()?.setAttribute('lab.knob.recommendation_query_cost_ms', costMs);
    const left = remainingBudget();
    if (left < costMs + slackMs) {
      throw new HttpError(
        504,
        `deadline passed while waiting for a database connection (${Math.round(left)} ms left, query needs ${costMs} ms)`,
        {
          reason: 'deadline-exceeded',
        },
      );
    }
    return await boughtTogether(db, category, limit, costMs, connection);
  } finally {
    await db.client.releaseConnection(connection);
  }
}

export const service = defineService({
  name: 'recommendation',
  config: {
    DATABASE_URL: env.url(DEFAULT_DATABASE_URL),
    /** The bounded pool the recommendation query runs through. */
    RECOMMENDATION_POOL_MAX: env.int(STORY_POOLS.RECOMMENDATION_POOL_MAX, 1, 100),
    RECOMMENDATION_POOL_ACQUIRE_TIMEOUT_MS: env.int(30_000, 1),
    /** Where the scenario's knobs are read from (key lab:scenario). */
    REDIS_URL: env.url(DEFAULT_REDIS_URL),
    /**
     * A query starts only if its caller's deadline leaves this much time after it: the
     * checkout still has to pay and write the order with the answer.
     */
    RECOMMENDATION_DEADLINE_SLACK_MS: env.int(500, 0),
  },
  create(config, logger) {
    const db = createDb({
      url: config.DATABASE_URL,
      statementTimeoutMs: statementTimeoutFor('recommendation_query_cost_ms'),
      poolMax: config.RECOMMENDATION_POOL_MAX,
      acquireTimeoutMs: config.RECOMMENDATION_POOL_ACQUIRE_TIMEOUT_MS,
      applicationName: 'recommendation',
      logger,
    });
    const latency = new LatencyModel({ recommend: { medianMs: 30, p95Ms: 80 } }, config);
    const scenario = startScenarioReader(config.REDIS_URL, logger);
    const app = createApp({
      name: 'recommendation',
      logger,
      ready: { postgres: () => pingDb(db) },
      routes(router) {
        router.post('/recommend', async (ctx) => {
          const input = validateBody(Recommend, ctx);
          // The cost of the work a request brings is the knob in force when it arrives
          // (requests already queued when the fix lands still carry their old cost).
          const costMs = scenario.knob('recommendation_query_cost_ms', 0);
          await latency.work('recommend');
          const recommendations = await recommendWithinDeadline(
            db,
            input.category,
            input.limit,
            costMs,
            config.RECOMMENDATION_DEADLINE_SLACK_MS,
            ctx.state.span,
          );
          annotate(ctx, { 'recommendation.count': recommendations.length, 'recommendation.category': input.category });
          ctx.body = { user_id: input.user_id, category: input.category, recommendations };
        });
      },
    });
    return {
      app,
      close: async () => {
        await scenario.close();
        await closeDb(db);
      },
    };
  },
});
