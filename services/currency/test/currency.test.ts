import { describe, expect, it } from 'vitest';
import { serve } from '../../../test/support.js';
import { RATES, service } from '../src/app.js';

const { http } = serve(service);

describe('currency: health', () => {
  it('GET /health answers 200', async () => {
    const { status, body } = await http('GET', '/health');
    expect(status).toBe(200);
    expect(body).toMatchObject({ status: 'ok', service: 'currency' });
  });

  it('GET /ready answers 200 (no dependencies)', async () => {
    const { status, body } = await http('GET', '/ready');
    expect(status).toBe(200);
    expect(body).toMatchObject({ status: 'ready', service: 'currency', checks: {} });
  });
});

describe('currency: GET /convert', () => {
  it('converts USD to EUR with the fixed rate, rounded to cents', async () => {
    const { status, body } = await http('GET', '/convert?amount=100&from=USD&to=EUR');
    expect(status).toBe(200);
    expect(body).toEqual({ amount: 100, from: 'USD', to: 'EUR', converted: 92, rate: 0.92 });
  });

  it('converts across two non-USD currencies through the USD rates', async () => {
    const { status, body } = await http('GET', '/convert?amount=10&from=EUR&to=GBP');
    expect(status).toBe(200);
    const rate = (RATES.GBP as number) / (RATES.EUR as number);
    expect(body.rate).toBeCloseTo(rate, 6);
    expect(body.converted).toBe(Number((10 * rate).toFixed(2)));
  });

  it('rounds JPY to whole yen', async () => {
    const { status, body } = await http('GET', '/convert?amount=1.5&from=USD&to=JPY');
    expect(status).toBe(200);
    expect(body.converted).toBe(227);
    expect(Number.isInteger(body.converted)).toBe(true);
  });

  it('accepts lower-case currency codes and answers them upper-case', async () => {
    const { status, body } = await http('GET', '/convert?amount=1&from=usd&to=cad');
    expect(status).toBe(200);
    expect(body).toMatchObject({ from: 'USD', to: 'CAD', converted: 1.37 });
  });

  it('the same currency converts 1:1', async () => {
    const { body } = await http('GET', '/convert?amount=42.5&from=USD&to=USD');
    expect(body).toMatchObject({ converted: 42.5, rate: 1 });
  });

  it('GET /currencies lists every known code', async () => {
    const { status, body } = await http('GET', '/currencies');
    expect(status).toBe(200);
    expect(body.currencies).toEqual(Object.keys(RATES));
  });
});

describe('currency: bad input', () => {
  it.each([
    ['an unknown target currency', '/convert?amount=1&from=USD&to=XXX', 'to'],
    ['an unknown source currency', '/convert?amount=1&from=ABC&to=EUR', 'from'],
    ['a missing amount', '/convert?from=USD&to=EUR', 'amount'],
    ['a non-numeric amount', '/convert?amount=ten&from=USD&to=EUR', 'amount'],
    ['a negative amount', '/convert?amount=-5&from=USD&to=EUR', 'amount'],
    ['an amount out of range', '/convert?amount=1e13&from=USD&to=EUR', 'amount'],
    ['an infinite amount', '/convert?amount=Infinity&from=USD&to=EUR', 'amount'],
    ['a repeated amount', '/convert?amount=1&amount=2&from=USD&to=EUR', 'amount'],
    ['a missing target currency', '/convert?amount=1&from=USD', 'to'],
  ])('%s → 422 naming the field', async (_what, path, field) => {
    const { status, body } = await http('GET', path);
    expect(status).toBe(422);
    expect(body.error).toContain(field);
    expect(body.issues.map((issue: { field: string }) => issue.field)).toContain(field);
  });

  it('an unknown route → 404 with a JSON error', async () => {
    const { status, body } = await http('GET', '/nope');
    expect(status).toBe(404);
    expect(body.error).toMatch(/no route/);
  });

  it('a wrong method → 405', async () => {
    const { status, body } = await http('DELETE', '/convert?amount=1&from=USD&to=EUR');
    expect(status).toBe(405);
    expect(body.error).toBeTypeOf('string');
  });

  it('a malformed JSON body → 400', async () => {
    const { status, body } = await http('POST', '/convert', '{"amount":');
    expect(status).toBe(400);
    expect(body.error).toMatch(/malformed JSON/);
  });

  it('an oversized body → 413', async () => {
    const { status, body } = await http('POST', '/convert', { pad: 'x'.repeat(70_000) });
    expect(status).toBe(413);
    expect(body.error).toMatch(/too large/);
  });

  it('a non-JSON body → 415', async () => {
    const { status, body } = await http('POST', '/convert', 'amount=1', { 'content-type': 'text/plain' });
    expect(status).toBe(415);
    expect(body.error).toMatch(/JSON/);
  });
});
