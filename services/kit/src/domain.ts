/** Product categories of the seeded catalogue (db/init-db.sql). */
export const CATEGORIES = [
  'electronics',
  'books',
  'clothing',
  'home',
  'toys',
  'sports',
  'beauty',
  'grocery',
  'garden',
  'automotive',
] as const;

export type Category = (typeof CATEGORIES)[number];

/** Identifiers that arrive in paths and bodies (user, cart): short and URL-safe. */
export const ID_PATTERN = /^[A-Za-z0-9_.:-]{1,64}$/;

/** Currencies the lab converts between (currency service) and shows prices in (frontend). */
export const CURRENCIES = ['USD', 'EUR', 'GBP', 'JPY', 'CAD', 'AUD', 'CHF', 'SEK', 'INR', 'BRL'] as const;

export type Currency = (typeof CURRENCIES)[number];
