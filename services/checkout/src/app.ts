import { DEFAULT_DATABASE_URL, DEFAULT_REDIS_URL, IdSchema, STORY_POOLS, statementTimeoutFor } from '@bfl/contract';
import { annotate, createApp, defineService, env, HttpError, LatencyModel, unprocessable, validate, validateBody, z } from '@bfl/kit';
import { closeDb, createDb, type Knex, pingDb } from '@bfl/kit/db';
import { startScenarioReader } from '@bfl/kit/scenario-state';

const CreateOrder = z.object({
  user_id: IdSchema('user_id'),
  items: z
    .array(z.object({ product_id: z.number().int().positive().max(2_147_483_647), quantity: z.number().int().min(1).max(99) }))
    .min(1, 'an order needs at least one item')
    .max(50),
  shipping_cents: z.number().int().min(0).max(1_000_000).default(0),
  currency: z.literal('USD').default('USD'),
  payment_id: z.string().max(100).optional(),
});
type CreateOrder = z.infer<typeof CreateOrder>;

const IdempotencyKey = z
  .string()
  .min(1)
  .max(200)
  .regex(/^[\x21-\x7e]+$/, 'printable ASCII without spaces')
  .optional();

export interface OrderItem {
  product_id: number;
  quantity: number;
  unit_price_cents: number;
}

export interface Order {
  order_id: number;
  user_id: string;
  status: string;
  total_cents: number;
  shipping_cents: number;
  currency: string;
  payment_id: string | null;
  idempotency_key: string | null;
  created_at: string;
  items: OrderItem[];
}

/** Same product twice in one request becomes one line with the summed quantity. */
function mergeLines(items: CreateOrder['items']): Map<number, number> {
  const lines = new Map<number, number>();
  for (const item of items) lines.set(item.product_id, (lines.get(item.product_id) ?? 0) + item.quantity);
  return lines;
}

async function loadOrder(db: Knex, where: { id: number } | { idempotency_key: string }): Promise<Order | undefined> {
  const row = await db('orders').where(where).first();
  if (!row) return undefined;
  const items = (await db('order_items')
    .select('product_id', 'quantity', 'unit_price_cents')
    .where({ order_id: row.id })
    .orderBy('product_id')) as OrderItem[];
  return toOrder(row, items);
}

// biome-ignore lint/suspicious/noExplicitAny: a row of the orders table as pg returns it
function toOrder(row: any, items: OrderItem[]): Order {
  return {
    order_id: Number(row.id),
    user_id: row.user_id,
    status: row.status,
    total_cents: row.total_cents,
    shipping_cents: row.shipping_cents,
    currency: row.currency,
    payment_id: row.payment_id,
    idempotency_key: row.idempotency_key,
    created_at: new Date(row.created_at).toISOString(),
    items: [...items].sort((a, b) => a.product_id - b.product_id),
  };
}

/** A replayed request must be the same request: same user, same lines. */
function sameRequest(order: Order, input: CreateOrder): boolean {
  const lines = mergeLines(input.items);
  return (
    order.user_id === input.user_id &&
    order.items.length === lines.size &&
    order.items.every((item) => lines.get(item.product_id) === item.quantity)
  );
}

const isUniqueViolation = (error: unknown) => (error as { code?: string })?.code === '23505';

/**
 * Writes the order and its items in one transaction, priced from the catalogue. With an
 * idempotency key, a retried request returns the order the first one created.
 */
async function createOrder(
  db: Knex,
  input: CreateOrder,
  key: string | undefined,
  writeDelayMs = 0,
): Promise<{ order: Order; replayed: boolean }> {
  if (key) {
    const existing = await loadOrder(db, { idempotency_key: key });
    if (existing) return { order: checkReplay(existing, input), replayed: true };
  }
  const lines = mergeLines(input.items);
  try {
    const order = await db.transaction(async (trx) => {
      // The incident knob: slower writes (a server-side wait, visible as its own pg span)
      // hold the pool's connection for longer.
      if (writeDelayMs > 0) await trx.raw('SELECT pg_sleep(?::float8 / 1000)', [writeDelayMs]);
      const products = (await trx('products')
        .select('id', 'price_cents', 'is_active')
        .whereIn('id', [...lines.keys()])) as { id: number; price_cents: number; is_active: boolean }[];
      const byId = new Map(products.map((p) => [p.id, p]));
      const unavailable = [...lines.keys()].filter((id) => !byId.get(id)?.is_active);
      if (unavailable.length) {
        throw unprocessable(`products not available: ${unavailable.join(', ')}`, { product_ids: unavailable });
      }
      const items = [...lines].map(([productId, quantity]) => ({
        product_id: productId,
        quantity,
        unit_price_cents: (byId.get(productId) as { price_cents: number }).price_cents,
      }));
      const subtotal = items.reduce((sum, item) => sum + item.quantity * item.unit_price_cents, 0);
      const [row] = await trx('orders')
        .insert({
          user_id: input.user_id,
          status: 'placed',
          total_cents: subtotal + input.shipping_cents,
          shipping_cents: input.shipping_cents,
          currency: input.currency,
          payment_id: input.payment_id ?? null,
          idempotency_key: key ?? null,
        })
        .returning('*');
      await trx('order_items').insert(items.map((item) => ({ order_id: row.id, ...item })));
      return toOrder(row, items);
    });
    return { order, replayed: false };
  } catch (error) {
    // Two requests with the same key raced: the loser returns the winner's order.
    if (key && isUniqueViolation(error)) {
      const existing = await loadOrder(db, { idempotency_key: key });
      if (existing) return { order: checkReplay(existing, input), replayed: true };
    }
    throw error;
  }
}

function checkReplay(order: Order, input: CreateOrder): Order {
  if (!sameRequest(order, input)) {
    throw new HttpError(409, 'Idempotency-Key was already used for a different order', { order_id: order.order_id });
  }
  return order;
}

export const service = defineService({
  name: 'checkout',
  config: {
    DATABASE_URL: env.url(DEFAULT_DATABASE_URL),
    CHECKOUT_POOL_MAX: env.int(STORY_POOLS.CHECKOUT_POOL_MAX, 1, 100),
    /** How long an order waits for a pool connection before failing fast with `pool-exhausted`. */
    CHECKOUT_POOL_ACQUIRE_TIMEOUT_MS: env.int(300, 1),
    /** Where the scenario's knobs are read from (key lab:scenario). */
    REDIS_URL: env.url(DEFAULT_REDIS_URL),
  },
  create(config, logger) {
    const db = createDb({
      url: config.DATABASE_URL,
      statementTimeoutMs: statementTimeoutFor('checkout_write_delay_ms'),
      poolMax: config.CHECKOUT_POOL_MAX,
      acquireTimeoutMs: config.CHECKOUT_POOL_ACQUIRE_TIMEOUT_MS,
      applicationName: 'checkout',
      logger,
    });
    const latency = new LatencyModel({ create: { medianMs: 40, p95Ms: 100 } }, config);
    const scenario = startScenarioReader(config.REDIS_URL, logger);
    const app = createApp({
      name: 'checkout',
      logger,
      ready: { postgres: () => pingDb(db) },
      routes(router) {
        router.post('/orders/create', async (ctx) => {
          const key = validate(IdempotencyKey, ctx.get('idempotency-key') || undefined, 'Idempotency-Key header');
          const input = validateBody(CreateOrder, ctx);
          await latency.work('create');
          const { order, replayed } = await createOrder(db, input, key, scenario.knob('checkout_write_delay_ms', 0));
          if (replayed) ctx.set('Idempotent-Replayed', 'true');
          annotate(ctx, {
            'order.id': order.order_id,
            'order.total_cents': order.total_cents,
            'order.item_count': order.items.reduce((sum, item) => sum + item.quantity, 0),
            'order.replayed': replayed,
          });
          ctx.status = 201;
          ctx.body = order;
        });
        router.get('/orders/:id', async (ctx) => {
          const id = validate(z.coerce.number().int().positive().max(Number.MAX_SAFE_INTEGER), ctx.params.id, 'order id');
          const order = await loadOrder(db, { id });
          if (!order) throw new HttpError(404, `order ${id} not found`);
          ctx.body = order;
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
