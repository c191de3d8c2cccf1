import { describe, expect, it } from 'vitest';
import { serve } from '../../../test/support.js';
import { quote, service } from '../src/app.js';

const { http } = serve(service);

describe('shipping: health', () => {
  it('GET /health answers 200', async () => {
    const { status, body } = await http('GET', '/health');
    expect(status).toBe(200);
    expect(body).toMatchObject({ status: 'ok', service: 'shipping' });
  });

  it('GET /ready answers 200 (no dependencies)', async () => {
    const { status, body } = await http('GET', '/ready');
    expect(status).toBe(200);
    expect(body).toMatchObject({ status: 'ready', service: 'shipping' });
  });
});

describe('shipping: POST /calculate', () => {
  it('quotes base + per-unit + zone fees for a West Coast ZIP', async () => {
    const { status, body } = await http('POST', '/calculate', {
      items: [
        { product_id: 1, quantity: 2 },
        { product_id: 7, quantity: 1 },
      ],
      zip: '94105',
    });
    expect(status).toBe(200);
    // 3 units, zone 9: 499 + 2 * 150 + 9 * 75
    expect(body).toEqual({ cost_cents: 1474, currency: 'USD', carrier: 'FedEx Home', estimated_days: 5 });
  });

  it('quotes an East Coast ZIP+4 with the other carrier', async () => {
    const { status, body } = await http('POST', '/calculate', { items: [{ product_id: 3, quantity: 1 }], zip: '02139-4307' });
    expect(status).toBe(200);
    expect(body).toEqual({ cost_cents: 499, currency: 'USD', carrier: 'UPS Ground', estimated_days: 2 });
  });

  it('ships 10 or more units for free', async () => {
    const { status, body } = await http('POST', '/calculate', { items: [{ product_id: 3, quantity: 10 }], zip: '60601' });
    expect(status).toBe(200);
    expect(body.cost_cents).toBe(0);
  });

  it('answers the same as the quote function', async () => {
    const items = [
      { product_id: 11, quantity: 3 },
      { product_id: 12, quantity: 4 },
    ];
    const { body } = await http('POST', '/calculate', { items, zip: '30301' });
    expect(body).toEqual(quote(items, '30301'));
  });
});

describe('shipping: bad input', () => {
  const item = { product_id: 1, quantity: 1 };
  it.each([
    ['a missing zip', { items: [item] }, 'zip'],
    ['a malformed zip', { items: [item], zip: '9410' }, 'zip'],
    ['a numeric zip', { items: [item], zip: 94105 }, 'zip'],
    ['missing items', { zip: '94105' }, 'items'],
    ['an empty item list', { items: [], zip: '94105' }, 'items'],
    ['items that are not an array', { items: 'abc', zip: '94105' }, 'items'],
    ['a string quantity', { items: [{ product_id: 1, quantity: '2' }], zip: '94105' }, 'items.0.quantity'],
    ['a zero quantity', { items: [{ product_id: 1, quantity: 0 }], zip: '94105' }, 'items.0.quantity'],
    ['a quantity over 99', { items: [{ product_id: 1, quantity: 100 }], zip: '94105' }, 'items.0.quantity'],
    ['a fractional product id', { items: [{ product_id: 1.5, quantity: 1 }], zip: '94105' }, 'items.0.product_id'],
    ['a negative product id', { items: [item, { product_id: -1, quantity: 1 }], zip: '94105' }, 'items.1.product_id'],
    ['too many items', { items: Array.from({ length: 101 }, () => item), zip: '94105' }, 'items'],
    ['a JSON array body', [item], 'body'],
  ])('%s → 422 naming the field', async (_what, payload, field) => {
    const { status, body } = await http('POST', '/calculate', payload);
    expect(status).toBe(422);
    expect(body.error).toContain(field);
    expect(body.issues.map((issue: { field: string }) => issue.field)).toContain(field);
  });

  it('an empty body → 422', async () => {
    const { status, body } = await http('POST', '/calculate');
    expect(status).toBe(422);
    expect(body.issues.length).toBeGreaterThan(0);
  });

  it('malformed JSON → 400', async () => {
    const { status, body } = await http('POST', '/calculate', '{"items": [');
    expect(status).toBe(400);
    expect(body.error).toMatch(/malformed JSON/);
  });

  it('an oversized body → 413', async () => {
    const { status, body } = await http('POST', '/calculate', { items: [item], zip: '94105', pad: 'x'.repeat(70_000) });
    expect(status).toBe(413);
    expect(body.error).toMatch(/too large/);
  });

  it('a non-JSON content type → 415', async () => {
    const { status, body } = await http('POST', '/calculate', 'zip=94105', { 'content-type': 'application/x-www-form-urlencoded' });
    expect(status).toBe(415);
    expect(body.error).toMatch(/JSON/);
  });

  it('GET /calculate → 405, an unknown route → 404', async () => {
    expect((await http('GET', '/calculate')).status).toBe(405);
    const missing = await http('POST', '/quote', { items: [item], zip: '94105' });
    expect(missing.status).toBe(404);
    expect(missing.body.error).toBeTypeOf('string');
  });
});
