import { CATEGORIES } from '@bfl/contract';
import { describe, expect, it } from 'vitest';
import { serve } from '../../../test/support.js';
import { adsFor, service } from '../src/app.js';

const { http } = serve(service);

describe('ad: health', () => {
  it('GET /health answers 200', async () => {
    const { status, body } = await http('GET', '/health');
    expect(status).toBe(200);
    expect(body).toMatchObject({ status: 'ok', service: 'ad' });
  });

  it('GET /ready answers 200 (no dependencies)', async () => {
    const { status, body } = await http('GET', '/ready');
    expect(status).toBe(200);
    expect(body).toMatchObject({ status: 'ready', service: 'ad' });
  });
});

describe('ad: GET /ads', () => {
  it('returns `count` ads of the requested category', async () => {
    const { status, body } = await http('GET', '/ads?category=books&count=3');
    expect(status).toBe(200);
    expect(body.ads).toHaveLength(3);
    for (const ad of body.ads) {
      expect(ad).toMatchObject({ category: 'books', redirect_url: '/products?category=books' });
      expect(ad.id).toMatch(/^ad-books-\d+$/);
      expect(ad.headline).toMatch(/books$/);
    }
    expect(new Set(body.ads.map((ad: { id: string }) => ad.id)).size).toBe(3);
  });

  it('defaults to 2 ads over all categories', async () => {
    const { status, body } = await http('GET', '/ads');
    expect(status).toBe(200);
    expect(body.ads).toHaveLength(2);
    for (const ad of body.ads) expect(CATEGORIES).toContain(ad.category);
    expect(body.ads).toEqual(adsFor(undefined, 2));
  });

  it('is deterministic', async () => {
    const first = await http('GET', '/ads?category=toys&count=10');
    const second = await http('GET', '/ads?category=toys&count=10');
    expect(first.body).toEqual(second.body);
    expect(first.body.ads).toHaveLength(10);
  });
});

describe('ad: bad input', () => {
  it.each([
    ['an unknown category', '/ads?category=weapons', 'category'],
    ['a count of 0', '/ads?count=0', 'count'],
    ['a count over 10', '/ads?count=11', 'count'],
    ['a non-numeric count', '/ads?count=many', 'count'],
    ['a fractional count', '/ads?count=1.5', 'count'],
  ])('%s → 422 naming the field', async (_what, path, field) => {
    const { status, body } = await http('GET', path);
    expect(status).toBe(422);
    expect(body.error).toContain(field);
    expect(body.issues.map((issue: { field: string }) => issue.field)).toContain(field);
  });

  it('malformed JSON → 400, oversized → 413, non-JSON → 415', async () => {
    expect((await http('POST', '/ads', '{')).status).toBe(400);
    expect((await http('POST', '/ads', { pad: 'x'.repeat(70_000) })).status).toBe(413);
    expect((await http('POST', '/ads', 'x', { 'content-type': 'text/plain' })).status).toBe(415);
  });

  it('a wrong method → 405, an unknown route → 404', async () => {
    const wrong = await http('POST', '/ads', {});
    expect(wrong.status).toBe(405);
    expect(wrong.body.error).toBeTypeOf('string');
    const missing = await http('GET', '/ads/1');
    expect(missing.status).toBe(404);
    expect(missing.body.error).toMatch(/no route/);
  });
});
