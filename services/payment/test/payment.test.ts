import { describe, expect, it } from 'vitest';
import { serve } from '../../../test/support.js';
import { service } from '../src/app.js';

const { http } = serve(service);

describe('payment: health', () => {
  it('GET /health answers 200', async () => {
    const { status, body } = await http('GET', '/health');
    expect(status).toBe(200);
    expect(body).toMatchObject({ status: 'ok', service: 'payment' });
  });

  it('GET /ready answers 200 (no dependencies)', async () => {
    const { status, body } = await http('GET', '/ready');
    expect(status).toBe(200);
    expect(body).toMatchObject({ status: 'ready', service: 'payment' });
  });
});

describe('payment: POST /api/payment/process', () => {
  it('approves a payment and returns a transaction id', async () => {
    const { status, body } = await http('POST', '/api/payment/process', { amount: 123.45, user_id: 'user-42' });
    expect(status).toBe(200);
    expect(body).toMatchObject({ status: 'approved', amount: 123.45, currency: 'USD', user_id: 'user-42' });
    expect(body.transaction_id).toMatch(/^txn_[0-9a-f-]{36}$/);
  });

  it('gives every payment its own transaction id', async () => {
    const [a, b] = await Promise.all([
      http('POST', '/api/payment/process', { amount: 10, user_id: 'u1' }),
      http('POST', '/api/payment/process', { amount: 10, user_id: 'u1' }),
    ]);
    expect(a?.body.transaction_id).not.toBe(b?.body.transaction_id);
  });

  it('keeps the currency it was given', async () => {
    const { status, body } = await http('POST', '/api/payment/process', { amount: 0.07, user_id: 'u1', currency: 'EUR' });
    expect(status).toBe(200);
    expect(body).toMatchObject({ currency: 'EUR', amount: 0.07 });
  });

  it('declines a charge over the single-charge limit with 402, not a 5xx', async () => {
    const { status, body } = await http('POST', '/api/payment/process', { amount: 50_000.01, user_id: 'big-spender' });
    expect(status).toBe(402);
    expect(body).toMatchObject({ reason: 'payment-declined', status: 'declined' });
    expect(body.error).toMatch(/declined/);
  });

  it('approves exactly the limit', async () => {
    const { status } = await http('POST', '/api/payment/process', { amount: 50_000, user_id: 'u1' });
    expect(status).toBe(200);
  });
});

describe('payment: bad input', () => {
  it.each([
    ['a missing amount', { user_id: 'u1' }, 'amount'],
    ['a string amount', { amount: '12.50', user_id: 'u1' }, 'amount'],
    ['a zero amount', { amount: 0, user_id: 'u1' }, 'amount'],
    ['a negative amount', { amount: -5, user_id: 'u1' }, 'amount'],
    ['more than two decimals', { amount: 1.234, user_id: 'u1' }, 'amount'],
    ['an amount out of range', { amount: 1_000_001, user_id: 'u1' }, 'amount'],
    ['a missing user_id', { amount: 10 }, 'user_id'],
    ['a user_id with spaces', { amount: 10, user_id: 'user one' }, 'user_id'],
    ['a numeric user_id', { amount: 10, user_id: 42 }, 'user_id'],
    ['a too long user_id', { amount: 10, user_id: 'u'.repeat(65) }, 'user_id'],
    ['a bad currency', { amount: 10, user_id: 'u1', currency: 'DOLLARS' }, 'currency'],
  ])('%s → 422 naming the field', async (_what, payload, field) => {
    const { status, body } = await http('POST', '/api/payment/process', payload);
    expect(status).toBe(422);
    expect(body.error).toContain(field);
    expect(body.issues.map((issue: { field: string }) => issue.field)).toContain(field);
  });

  it('malformed JSON → 400', async () => {
    const { status, body } = await http('POST', '/api/payment/process', '{amount: 1}');
    expect(status).toBe(400);
    expect(body.error).toMatch(/malformed JSON/);
  });

  it('an oversized body → 413', async () => {
    const { status, body } = await http('POST', '/api/payment/process', { amount: 1, user_id: 'u1', memo: 'x'.repeat(70_000) });
    expect(status).toBe(413);
    expect(body.error).toMatch(/too large/);
  });

  it('a non-JSON content type → 415', async () => {
    const { status } = await http('POST', '/api/payment/process', 'amount=1', { 'content-type': 'text/plain' });
    expect(status).toBe(415);
  });

  it('a wrong method → 405, an unknown route → 404', async () => {
    expect((await http('GET', '/api/payment/process')).status).toBe(405);
    expect((await http('POST', '/api/payment/refund', { amount: 1, user_id: 'u1' })).status).toBe(404);
  });
});
