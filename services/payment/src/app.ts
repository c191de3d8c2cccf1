import { randomUUID } from 'node:crypto';
import { IdSchema } from '@bfl/contract';
import { annotate, createApp, defineService, HttpError, LatencyModel, validateBody, z } from '@bfl/kit';

const Payment = z.object({
  /** In major units of `currency` (e.g. dollars), at most two decimals. */
  amount: z
    .number()
    .positive()
    .max(1_000_000)
    .refine((n) => Math.abs(n * 100 - Math.round(n * 100)) < 1e-6, 'amount has more than two decimals'),
  user_id: IdSchema('user_id'),
  currency: z.string().length(3).default('USD'),
});

export const service = defineService({
  name: 'payment',
  config: {},
  create(config, logger) {
    const latency = new LatencyModel({ process: { medianMs: 80, p95Ms: 200 } }, config);
    const app = createApp({
      name: 'payment',
      logger,
      routes(router) {
        router.post('/api/payment/process', async (ctx) => {
          const payment = validateBody(Payment, ctx);
          await latency.work('process');
          // A card network's single-charge limit: a real, deterministic decline.
          annotate(ctx, { 'payment.amount': payment.amount, 'payment.currency': payment.currency });
          if (payment.amount > 50_000) {
            annotate(ctx, { 'payment.outcome': 'declined' });
            throw new HttpError(402, `payment declined: ${payment.amount} ${payment.currency} exceeds the single-charge limit`, {
              reason: 'payment-declined',
              status: 'declined',
            });
          }
          annotate(ctx, { 'payment.outcome': 'approved' });
          ctx.body = {
            transaction_id: `txn_${randomUUID()}`,
            status: 'approved',
            amount: payment.amount,
            currency: payment.currency,
            user_id: payment.user_id,
          };
        });
      },
    });
    return { app };
  },
});
