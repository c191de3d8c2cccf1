import { type Cart, type CartItem, DEFAULT_REDIS_URL, IdSchema } from '@bfl/contract';
import { annotate, createApp, defineService, env, LatencyModel, unprocessable, validate, validateBody, z } from '@bfl/kit';
import { createRedis, pingRedis, type Redis } from '@bfl/kit/redis';

const CartId = IdSchema('cart id');

const AddItem = z.object({
  product_id: z.number().int().positive(),
  quantity: z.number().int().min(1).max(99).default(1),
  /** The price the shopper saw, kept so the cart can show a total. */
  unit_price_cents: z.number().int().positive().optional(),
  name: z.string().max(200).optional(),
  category: z.string().max(50).optional(),
});

const key = (cartId: string) => `cart:${cartId}`;

/** Most units of one product a cart line holds (shipping and checkout accept up to 99). */
const MAX_LINE_QUANTITY = 99;

/**
 * Adds to a line atomically: the line-count limit and the per-line cap are checked and
 * the write done in one step, so concurrent adds cannot overshoot either. Returns the
 * new quantity, -1 when the cart is full, -2 when the line would exceed its cap.
 */
const CART_ADD = `
local qty = tonumber(redis.call('HGET', KEYS[1], ARGV[1]) or '0')
if qty == 0 then
  local lines = 0
  for _, field in ipairs(redis.call('HKEYS', KEYS[1])) do
    if string.sub(field, 1, 2) == 'q:' then lines = lines + 1 end
  end
  if lines >= tonumber(ARGV[5]) then return -1 end
end
if qty + tonumber(ARGV[3]) > tonumber(ARGV[7]) then return -2 end
redis.call('HINCRBY', KEYS[1], ARGV[1], ARGV[3])
if ARGV[4] ~= '' then redis.call('HSET', KEYS[1], ARGV[2], ARGV[4]) end
redis.call('EXPIRE', KEYS[1], ARGV[6])
return qty + tonumber(ARGV[3])
`;

type CartRedis = Redis & {
  cartAdd(
    key: string,
    quantityField: string,
    infoField: string,
    quantity: number,
    info: string,
    maxLines: number,
    ttlSeconds: number,
    maxQuantity: number,
  ): Promise<number>;
};

/**
 * One Redis hash per cart: `q:<product>` holds the quantity, `i:<product>` the price and
 * name the shopper saw. Every write renews the cart's TTL.
 */
async function readCart(redis: Redis, cartId: string): Promise<Cart> {
  const fields = await redis.hgetall(key(cartId));
  const items: CartItem[] = [];
  for (const [field, value] of Object.entries(fields)) {
    if (!field.startsWith('q:')) continue;
    const productId = Number(field.slice(2));
    const info = fields[`i:${productId}`];
    const extra = info ? (JSON.parse(info) as Pick<CartItem, 'unit_price_cents' | 'name' | 'category'>) : {};
    items.push({ product_id: productId, quantity: Number(value), ...extra });
  }
  items.sort((a, b) => a.product_id - b.product_id);
  return {
    cart_id: cartId,
    items,
    item_count: items.reduce((sum, item) => sum + item.quantity, 0),
    total_cents: items.reduce((sum, item) => sum + item.quantity * (item.unit_price_cents ?? 0), 0),
  };
}

export const service = defineService({
  name: 'cart',
  config: {
    REDIS_URL: env.url(DEFAULT_REDIS_URL),
    CART_TTL_SECONDS: env.int(86_400, 1),
    CART_MAX_LINES: env.int(50, 1),
  },
  create(config, logger) {
    const redis = createRedis(config.REDIS_URL, logger, 'cart');
    redis.defineCommand('cartAdd', { numberOfKeys: 1, lua: CART_ADD });
    const latency = new LatencyModel(
      { get: { medianMs: 8, p95Ms: 20 }, add: { medianMs: 12, p95Ms: 30 }, clear: { medianMs: 8, p95Ms: 20 } },
      config,
    );
    const app = createApp({
      name: 'cart',
      logger,
      ready: { redis: () => pingRedis(redis) },
      routes(router) {
        router.get('/cart/:id', async (ctx) => {
          const cartId = validate(CartId, ctx.params.id, 'cart id');
          await latency.work('get');
          const cart = await readCart(redis, cartId);
          annotate(ctx, { 'cart.id': cartId, 'cart.item_count': cart.item_count });
          ctx.body = cart;
        });
        router.post('/cart/:id/items', async (ctx) => {
          const cartId = validate(CartId, ctx.params.id, 'cart id');
          const item = validateBody(AddItem, ctx);
          await latency.work('add');
          const { product_id, quantity, ...info } = item;
          const result = await (redis as CartRedis).cartAdd(
            key(cartId),
            `q:${product_id}`,
            `i:${product_id}`,
            quantity,
            Object.keys(info).length ? JSON.stringify(info) : '',
            config.CART_MAX_LINES,
            config.CART_TTL_SECONDS,
            MAX_LINE_QUANTITY,
          );
          if (result === -1) throw unprocessable(`cart ${cartId} already has ${config.CART_MAX_LINES} different products`);
          if (result === -2) {
            throw unprocessable(`quantity: product ${product_id} would exceed ${MAX_LINE_QUANTITY} units in cart ${cartId}`);
          }
          const cart = await readCart(redis, cartId);
          annotate(ctx, { 'cart.id': cartId, 'cart.item_count': cart.item_count });
          ctx.status = 201;
          ctx.body = cart;
        });
        router.delete('/cart/:id', async (ctx) => {
          const cartId = validate(CartId, ctx.params.id, 'cart id');
          await latency.work('clear');
          const deleted = await redis.del(key(cartId));
          annotate(ctx, { 'cart.id': cartId });
          ctx.body = { cart_id: cartId, deleted: deleted > 0 };
        });
      },
    });
    return { app, close: async () => void (await redis.quit()) };
  },
});
