import { CATEGORIES } from '@bfl/contract';
import { createApp, defineService, LatencyModel, validate, z } from '@bfl/kit';

export interface Ad {
  id: string;
  category: string;
  headline: string;
  redirect_url: string;
}

const HEADLINES = ['Doorbuster deal', 'Today only', 'Lowest price of the year', 'Bundle and save', 'Members get more'];

/** A small fixed inventory: a few ads per category, chosen deterministically. */
export function adsFor(category: string | undefined, count: number): Ad[] {
  const categories = category ? [category] : [...CATEGORIES];
  const ads: Ad[] = [];
  for (let i = 0; ads.length < count && i < count * categories.length; i++) {
    const cat = categories[i % categories.length] as string;
    const headline = HEADLINES[(i + cat.length) % HEADLINES.length] as string;
    ads.push({ id: `ad-${cat}-${i}`, category: cat, headline: `${headline}: ${cat}`, redirect_url: `/products?category=${cat}` });
  }
  return ads;
}

const AdsQuery = z.object({
  category: z.enum(CATEGORIES).optional(),
  count: z.coerce.number().int().min(1).max(10).default(2),
});

export const service = defineService({
  name: 'ad',
  config: {},
  create(config, logger) {
    const latency = new LatencyModel({ ads: { medianMs: 30, p95Ms: 45 } }, config);
    const app = createApp({
      name: 'ad',
      logger,
      routes(router) {
        router.get('/ads', async (ctx) => {
          const query = validate(AdsQuery, ctx.query, 'query');
          await latency.work('ads');
          ctx.body = { ads: adsFor(query.category, query.count) };
        });
      },
    });
    return { app };
  },
});
