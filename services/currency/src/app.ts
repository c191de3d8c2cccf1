import { type Currency, CurrencySchema } from '@bfl/contract';
import { createApp, defineService, LatencyModel, unprocessable, validate, z } from '@bfl/kit';

/** Units of each currency per 1 USD (a fixed table: the lab needs stable numbers, not a market). */
export const RATES: Record<Currency, number> = {
  USD: 1,
  EUR: 0.92,
  GBP: 0.79,
  JPY: 151.2,
  CAD: 1.37,
  AUD: 1.53,
  CHF: 0.88,
  SEK: 10.6,
  INR: 83.4,
  BRL: 5.05,
};

const currency = CurrencySchema;

const ConvertQuery = z.object({
  amount: z
    .string({ message: 'amount is required' })
    .regex(/^\d+(\.\d+)?$/, 'amount must be a non-negative decimal number')
    .transform(Number)
    .pipe(z.number().max(1e12)),
  from: currency,
  to: currency,
});

/** Converts an amount between currencies, rounded to the target currency's minor unit. */
function convert(amount: number, from: Currency, to: Currency): { converted: number; rate: number } {
  const fromRate = RATES[from];
  const toRate = RATES[to];
  if (fromRate === undefined || toRate === undefined) throw unprocessable(`cannot convert ${from} to ${to}`);
  const rate = toRate / fromRate;
  const digits = to === 'JPY' ? 0 : 2;
  return { converted: Number((amount * rate).toFixed(digits)), rate: Number(rate.toFixed(6)) };
}

export const service = defineService({
  name: 'currency',
  config: {},
  create(config, logger) {
    const latency = new LatencyModel({ convert: { medianMs: 15, p95Ms: 30 } }, config);
    const app = createApp({
      name: 'currency',
      logger,
      routes(router) {
        router.get('/convert', async (ctx) => {
          const query = validate(ConvertQuery, ctx.query, 'query');
          await latency.work('convert');
          ctx.body = { amount: query.amount, from: query.from, to: query.to, ...convert(query.amount, query.from, query.to) };
        });
        router.get('/currencies', (ctx) => {
          ctx.body = { currencies: Object.keys(RATES) };
        });
      },
    });
    return { app };
  },
});
