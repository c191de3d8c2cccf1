import { randomInt } from 'node:crypto';
import {
  CATEGORIES,
  type Cart,
  CurrencySchema,
  DEFAULT_REDIS_URL,
  defaultUrl,
  IdSchema,
  type Product,
  storyMinute,
  storyTrafficType,
  ZipSchema,
} from '@bfl/contract';
import {
  annotate,
  createApp,
  DownstreamError,
  defineService,
  env,
  errorResponse,
  HttpError,
  LatencyModel,
  ServiceClient,
  validateBody,
  z,
} from '@bfl/kit';
import { startScenarioReader } from '@bfl/kit/scenario-state';
import { labMeter } from '@bfl/telemetry';
import { propagation } from '@opentelemetry/api';

const Browse = z.object({
  user_id: IdSchema('user_id').default('anonymous'),
  cart_id: IdSchema('cart_id').optional(),
  category: z.enum(CATEGORIES).optional(),
  currency: CurrencySchema.default('USD'),
});

const Checkout = z.object({
  user_id: IdSchema('user_id'),
  cart_id: IdSchema('cart_id'),
  zip: ZipSchema.default('94105'),
});

const pick = <T>(values: readonly T[]): T => values[randomInt(values.length)] as T;

export const service = defineService({
  name: 'frontend',
  config: {
    CART_URL: env.url(defaultUrl('cart')),
    CURRENCY_URL: env.url(defaultUrl('currency')),
    AD_URL: env.url(defaultUrl('ad')),
    PRODUCT_CATALOG_URL: env.url(defaultUrl('product-catalog')),
    SHIPPING_URL: env.url(defaultUrl('shipping')),
    PAYMENT_URL: env.url(defaultUrl('payment')),
    CHECKOUT_URL: env.url(defaultUrl('checkout')),
    /** Timeout of each downstream call. */
    DOWNSTREAM_TIMEOUT_MS: env.int(3_000, 1),
    /** Timeout of the recommendations call on checkout: the Black Friday story's 5 s. */
    RECOMMENDATIONS_TIMEOUT_MS: env.int(5_000, 1),
    /** Orders can wait for the checkout service's pool; give them room. */
    CHECKOUT_TIMEOUT_MS: env.int(8_000, 1),
    /** Where the running scenario is read from (key lab:scenario), for the demo minute in errors. */
    REDIS_URL: env.url(DEFAULT_REDIS_URL),
  },
  create(config, logger) {
    const timeout = config.DOWNSTREAM_TIMEOUT_MS;
    const cart = new ServiceClient('cart', config.CART_URL, timeout);
    const currency = new ServiceClient('currency', config.CURRENCY_URL, timeout);
    const ad = new ServiceClient('ad', config.AD_URL, timeout);
    const catalog = new ServiceClient('product-catalog', config.PRODUCT_CATALOG_URL, timeout);
    const shipping = new ServiceClient('shipping', config.SHIPPING_URL, timeout);
    const payment = new ServiceClient('payment', config.PAYMENT_URL, timeout);
    const checkout = new ServiceClient('checkout', config.CHECKOUT_URL, config.CHECKOUT_TIMEOUT_MS);
    const latency = new LatencyModel({ browse: { medianMs: 190, p95Ms: 215 }, checkout: { medianMs: 30, p95Ms: 60 } }, config);
    const scenario = startScenarioReader(config.REDIS_URL, logger);
    const checkoutOutcomes = labMeter().createCounter('lab.checkout.outcomes', {
      description: 'Checkouts through the frontend, by traffic.type, outcome and failure.reason',
    });

    /** The demo minute of the request being served: its baggage, else the running scenario's. */
    function demoMinute(): number | undefined {
      return storyMinute(propagation.getActiveBaggage()?.getEntry('demo.minute')?.value) ?? scenario.current?.minute;
    }

    /** A shopper with an empty cart puts 1-3 random active products in it. */
    async function fillCart(cartId: string): Promise<Cart> {
      const { products } = await catalog.get<{ products: Product[] }>('/products', { query: { category: pick(CATEGORIES), limit: 50 } });
      if (!products.length) throw new HttpError(503, 'the catalogue has no active products', { reason: 'catalog-empty' });
      const chosen = new Map<number, Product>();
      const count = 1 + randomInt(3);
      while (chosen.size < Math.min(count, products.length)) {
        const product = pick(products);
        chosen.set(product.id, product);
      }
      await Promise.all(
        [...chosen.values()].map((product) =>
          cart.post<Cart>(`/cart/${encodeURIComponent(cartId)}/items`, {
            product_id: product.id,
            quantity: 1 + randomInt(2),
            unit_price_cents: product.price_cents,
            name: product.name,
            category: product.category,
          }),
        ),
      );
      return cart.get<Cart>(`/cart/${encodeURIComponent(cartId)}`);
    }

    async function recommendationsFor(category: string, userId: string) {
      try {
        return await catalog.get<{ products: Product[] }>('/products/recommendations', {
          query: { category, user_id: userId },
          timeoutMs: config.RECOMMENDATIONS_TIMEOUT_MS,
        });
      } catch (error) {
        // Out of time here, or further down (the catalogue's call ran out of the same
        // deadline, or the recommendation service saw it could not answer in time).
        if (error instanceof DownstreamError && (error.kind === 'timeout' || error.status === 504)) {
          const detail =
            error.kind === 'timeout' ? `did not answer within ${config.RECOMMENDATIONS_TIMEOUT_MS} ms` : `gave up: ${error.message}`;
          throw new HttpError(503, `recommendations ${detail}`, { reason: 'recommendations-timeout' });
        }
        throw error;
      }
    }

    const app = createApp({
      name: 'frontend',
      logger,
      decorateError: (body) => {
        const minute = demoMinute();
        return minute === undefined ? body : { ...body, demo_minute: minute };
      },
      ready: Object.fromEntries(
        [cart, currency, ad, catalog, shipping, payment, checkout].map((client) => [
          client.service,
          () => client.get('/health', { timeoutMs: 1_000 }),
        ]),
      ),
      routes(router) {
        router.post('/api/browse', async (ctx) => {
          const input = validateBody(Browse, ctx);
          const cartId = input.cart_id ?? `cart-${input.user_id}`;
          const category = input.category ?? pick(CATEGORIES);
          await latency.work('browse');
          const currentCart = await cart.get<Cart>(`/cart/${encodeURIComponent(cartId)}`);
          const [rate, ads, listing] = await Promise.all([
            currency.get<{ rate: number; to: string }>('/convert', { query: { amount: 1, from: 'USD', to: input.currency } }),
            ad.get<{ ads: unknown[] }>('/ads', { query: { category, count: 2 } }),
            catalog.get<{ products: Product[] }>('/products', { query: { category, limit: 12 } }),
          ]);
          ctx.body = {
            user_id: input.user_id,
            category,
            currency: rate.to,
            cart: { cart_id: cartId, item_count: currentCart.item_count },
            products: listing.products.map((p) => ({
              id: p.id,
              name: p.name,
              price: Number(((p.price_cents / 100) * rate.rate).toFixed(2)),
            })),
            ads: ads.ads,
          };
        });

        router.post('/api/checkout', async (ctx) => {
          // Only the story's classes become a label (the sampler counts what it drops).
          const traffic = storyTrafficType(propagation.getActiveBaggage()?.getEntry('traffic.type')?.value) ?? 'none';
          try {
            const input = validateBody(Checkout, ctx);
            const cartPath = `/cart/${encodeURIComponent(input.cart_id)}`;
            await latency.work('checkout');
            let currentCart = await cart.get<Cart>(cartPath);
            if (!currentCart.items.length) currentCart = await fillCart(input.cart_id);
            const items = currentCart.items.map(({ product_id, quantity }) => ({ product_id, quantity }));
            // The charge is priced from the catalogue, as the order will be, never from the cart's memory.
            const [priced, quote] = await Promise.all([
              catalog.get<{ products: Product[] }>('/products', { query: { ids: items.map((i) => i.product_id).join(',') } }),
              shipping.post<{ cost_cents: number }>('/calculate', { items, zip: input.zip }),
            ]);
            const prices = new Map(priced.products.filter((p) => p.is_active).map((p) => [p.id, p.price_cents]));
            const gone = items.filter((item) => !prices.has(item.product_id)).map((item) => item.product_id);
            if (gone.length) {
              throw new HttpError(422, `products no longer available: ${gone.join(', ')}`, {
                reason: 'product-unavailable',
                product_ids: gone,
              });
            }
            const subtotal = items.reduce((sum, item) => sum + item.quantity * (prices.get(item.product_id) as number), 0);
            const category = currentCart.items.find((item) => item.category)?.category ?? pick(CATEGORIES);
            const recommendations = await recommendationsFor(category, input.user_id);
            const amountCents = subtotal + quote.cost_cents;
            const charge = await payment
              .post<{ transaction_id: string; status: string }>('/api/payment/process', {
                amount: amountCents / 100,
                user_id: input.user_id,
                currency: 'USD',
              })
              .catch((error: unknown) => {
                // A decline is the shopper's problem, not an outage: pass it on as it is.
                if (error instanceof DownstreamError && error.status === 402) {
                  throw new HttpError(402, error.message, { reason: 'payment-declined' });
                }
                throw error;
              });
            // One payment makes at most one order, however often this call is retried.
            const order = await checkout.post<{ order_id: number; total_cents: number }>(
              '/orders/create',
              { user_id: input.user_id, items, shipping_cents: quote.cost_cents, currency: 'USD', payment_id: charge.transaction_id },
              { headers: { 'Idempotency-Key': `payment:${charge.transaction_id}` } },
            );
            await cart.delete(cartPath);
            annotate(ctx, {
              'cart.id': input.cart_id,
              'order.id': order.order_id,
              'order.total_cents': order.total_cents,
              'order.item_count': items.reduce((sum, item) => sum + item.quantity, 0),
              'recommendation.count': recommendations.products.length,
              'payment.outcome': charge.status,
              'checkout.failed': false,
            });
            ctx.body = {
              order,
              payment: charge,
              shipping: quote,
              recommendations: recommendations.products.map((p) => ({ id: p.id, name: p.name })),
            };
            checkoutOutcomes.add(1, { 'traffic.type': traffic, outcome: 'success' });
          } catch (error) {
            // The frontend's checkout span says that and why it failed (the kit records
            // the exception and sets the span's status).
            const reason = String(errorResponse(error).body.reason ?? 'error');
            annotate(ctx, { 'checkout.failed': true, 'failure.reason': reason });
            checkoutOutcomes.add(1, { 'traffic.type': traffic, outcome: 'failed', 'failure.reason': reason });
            throw error;
          }
        });
      },
    });
    return { app, close: () => scenario.close() };
  },
});
