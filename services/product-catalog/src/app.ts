import { CATEGORIES, DEFAULT_DATABASE_URL, defaultUrl, IdSchema, type Product, statementTimeoutFor } from '@bfl/contract';
import { annotate, createApp, defineService, env, LatencyModel, notFound, ServiceClient, validate, z } from '@bfl/kit';
import { closeDb, createDb, type Knex, pingDb } from '@bfl/kit/db';

const COLUMNS = ['id', 'sku', 'name', 'description', 'category', 'price_cents', 'currency', 'is_active'];

const ListQuery = z.object({
  category: z.enum(CATEGORIES).optional(),
  /** `ids=1,2,3`: exactly these products, active or not (prices for a cart). */
  ids: z
    .string()
    .regex(/^\d{1,9}(,\d{1,9}){0,99}$/, 'ids must be up to 100 comma-separated product ids')
    .transform((list) => [...new Set(list.split(',').map(Number))])
    .optional(),
  limit: z.coerce.number().int().min(1).max(100).default(20),
  offset: z.coerce.number().int().min(0).max(10_000).default(0),
});

const RecommendationsQuery = z.object({
  category: z.enum(CATEGORIES),
  user_id: IdSchema('user_id').default('anonymous'),
  limit: z.coerce.number().int().min(1).max(20).default(5),
});

const ProductId = z.coerce.number().int().positive().max(2_147_483_647);

/** Active products of a category, in id order (served by idx_products_category_active). */
async function listProducts(db: Knex, query: z.infer<typeof ListQuery>): Promise<Product[]> {
  const q = db('products').select(COLUMNS).where({ is_active: true });
  if (query.category) q.andWhere({ category: query.category });
  return (await q.orderBy('id').limit(query.limit).offset(query.offset)) as Product[];
}

function productsById(db: Knex, ids: number[]): Promise<Product[]> {
  return db('products').select(COLUMNS).whereIn('id', ids).orderBy('id') as Promise<Product[]>;
}

export const service = defineService({
  name: 'product-catalog',
  config: {
    DATABASE_URL: env.url(DEFAULT_DATABASE_URL),
    CATALOG_POOL_MAX: env.int(10, 1, 100),
    CATALOG_POOL_ACQUIRE_TIMEOUT_MS: env.int(5_000, 1),
    RECOMMENDATION_URL: env.url(defaultUrl('recommendation')),
    /** Longer than the frontend's own limit, so the frontend's timeout is the one that fires. */
    RECOMMENDATION_TIMEOUT_MS: env.int(8_000, 1),
  },
  create(config, logger) {
    const db = createDb({
      url: config.DATABASE_URL,
      statementTimeoutMs: statementTimeoutFor(),
      poolMax: config.CATALOG_POOL_MAX,
      acquireTimeoutMs: config.CATALOG_POOL_ACQUIRE_TIMEOUT_MS,
      applicationName: 'product-catalog',
      logger,
    });
    const recommendation = new ServiceClient('recommendation', config.RECOMMENDATION_URL, config.RECOMMENDATION_TIMEOUT_MS);
    const latency = new LatencyModel(
      {
        list: { medianMs: 60, p95Ms: 80 },
        get: { medianMs: 15, p95Ms: 40 },
        recommendations: { medianMs: 15, p95Ms: 40 },
      },
      config,
    );
    const app = createApp({
      name: 'product-catalog',
      logger,
      ready: {
        postgres: () => pingDb(db),
        recommendation: () => recommendation.get('/health', { timeoutMs: 1_000 }),
      },
      routes(router) {
        router.get('/products', async (ctx) => {
          const query = validate(ListQuery, ctx.query, 'query');
          await latency.work(query.ids ? 'get' : 'list');
          const products = query.ids ? await productsById(db, query.ids) : await listProducts(db, query);
          annotate(ctx, { 'product.count': products.length });
          ctx.body = { category: query.category ?? null, count: products.length, products };
        });
        router.get('/products/recommendations', async (ctx) => {
          const query = validate(RecommendationsQuery, ctx.query, 'query');
          await latency.work('recommendations');
          const answer = await recommendation.post<{ recommendations: { product_id: number; score: number }[] }>('/recommend', {
            user_id: query.user_id,
            category: query.category,
            limit: query.limit,
          });
          const ids = answer.recommendations.map((r) => r.product_id);
          const rows = ids.length ? await productsById(db, ids) : [];
          const byId = new Map(rows.map((p) => [p.id, p]));
          const products = answer.recommendations.flatMap((r) => {
            const product = byId.get(r.product_id);
            return product ? [{ ...product, score: r.score }] : [];
          });
          annotate(ctx, { 'recommendation.count': products.length });
          ctx.body = { category: query.category, count: products.length, products };
        });
        router.get('/products/:id', async (ctx) => {
          const id = validate(ProductId, ctx.params.id, 'product id');
          await latency.work('get');
          const [product] = await productsById(db, [id]);
          if (!product) throw notFound(`product ${id} not found`);
          ctx.body = product;
        });
      },
    });
    return { app, close: () => closeDb(db) };
  },
});
