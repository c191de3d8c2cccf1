import { describe, expect, it } from 'vitest';
import { CurrencySchema, IdSchema, ZipSchema } from '../src/index.js';

describe('the shared schemas', () => {
  it('IdSchema takes 1-64 URL-safe characters and names the field when it refuses', () => {
    expect(IdSchema('user_id').parse('u-1:a.b_c')).toBe('u-1:a.b_c');
    for (const bad of ['', 'x'.repeat(65), 'a b', 'a/b', 'é']) {
      const result = IdSchema('cart_id').safeParse(bad);
      expect(result.success, JSON.stringify(bad)).toBe(false);
      expect(result.error?.issues[0]?.message).toBe('cart_id must be 1-64 characters of A-Z a-z 0-9 _ . : -');
    }
  });

  it('ZipSchema takes a 5-digit ZIP code and ZIP+4 only', () => {
    expect(ZipSchema.parse('94105')).toBe('94105');
    expect(ZipSchema.parse('94105-1234')).toBe('94105-1234');
    for (const bad of ['9410', '941050', '94105-12', 'abcde', ' 94105']) expect(ZipSchema.safeParse(bad).success, bad).toBe(false);
  });

  it('CurrencySchema takes a known currency in any case, and lists the known ones when it refuses', () => {
    expect(CurrencySchema.parse('eur')).toBe('EUR');
    const result = CurrencySchema.safeParse('XYZ');
    expect(result.success).toBe(false);
    expect(result.error?.issues[0]?.message).toMatch(/^unknown currency; known: USD, EUR, /);
  });
});
