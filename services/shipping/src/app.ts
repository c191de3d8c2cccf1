import { ZipSchema } from '@bfl/contract';
import { createApp, defineService, LatencyModel, validateBody, z } from '@bfl/kit';

const Calculate = z.object({
  items: z
    .array(z.object({ product_id: z.number().int().positive(), quantity: z.number().int().min(1).max(99) }))
    .min(1, 'at least one item is needed')
    .max(100),
  zip: ZipSchema,
});

export interface Quote {
  cost_cents: number;
  currency: 'USD';
  carrier: string;
  estimated_days: number;
}

/** A deterministic quote: a base fee, a per-item fee, and a zone from the ZIP's first digit. */
export function quote(items: { quantity: number }[], zip: string): Quote {
  const units = items.reduce((sum, item) => sum + item.quantity, 0);
  const zone = Number(zip[0]);
  const cost = 499 + 150 * Math.max(0, units - 1) + 75 * zone;
  return {
    cost_cents: units >= 10 ? 0 : cost,
    currency: 'USD',
    carrier: zone < 5 ? 'UPS Ground' : 'FedEx Home',
    estimated_days: 2 + Math.floor(zone / 3),
  };
}

export const service = defineService({
  name: 'shipping',
  config: {},
  create(config, logger) {
    const latency = new LatencyModel({ calculate: { medianMs: 30, p95Ms: 80 } }, config);
    const app = createApp({
      name: 'shipping',
      logger,
      routes(router) {
        router.post('/calculate', async (ctx) => {
          const input = validateBody(Calculate, ctx);
          await latency.work('calculate');
          ctx.body = quote(input.items, input.zip);
        });
      },
    });
    return { app };
  },
});
