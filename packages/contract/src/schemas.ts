/**
 * The request values and the shapes more than one service speaks: each written once.
 * A service's own request schemas compose these (`user_id: IdSchema('user_id')`).
 */
import { z } from 'zod';
import { CURRENCIES, ID_PATTERN } from './domain.js';

/** A user or cart id (ID_PATTERN), its error message naming the field. */
export const IdSchema = (field: string) => z.string().regex(ID_PATTERN, `${field} must be 1-64 characters of A-Z a-z 0-9 _ . : -`);

/** A US ZIP code, 5 digits with an optional +4. */
export const ZipSchema = z.string().regex(/^\d{5}(-\d{4})?$/, 'zip must be a 5-digit US ZIP code (optionally ZIP+4)');

/** A currency the lab knows (CURRENCIES), in any letter case. */
export const CurrencySchema = z
  .string()
  .transform((code) => code.toUpperCase())
  .pipe(z.enum(CURRENCIES, { message: `unknown currency; known: ${CURRENCIES.join(', ')}` }));

/** A product as product-catalog answers it. */
export interface Product {
  id: number;
  sku: string;
  name: string;
  description: string;
  category: string;
  price_cents: number;
  currency: string;
  is_active: boolean;
}

/** One line of a cart; cart adds the price, name and category it read from the catalogue. */
export interface CartItem {
  product_id: number;
  quantity: number;
  unit_price_cents?: number;
  name?: string;
  category?: string;
}

/** A cart as cart answers it. */
export interface Cart {
  cart_id: string;
  items: CartItem[];
  item_count: number;
  total_cents: number;
}
