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

/** The traffic classes the story's runner sends as baggage `traffic.type`. */
const TRAFFIC_TYPES = ['baseline', 'demo'] as const;

export type TrafficType = (typeof TRAFFIC_TYPES)[number];

/**
 * A baggage `traffic.type` the story sends, or undefined for anything else: a request
 * from outside cannot invent a class that becomes a span attribute or a metric label.
 */
export function storyTrafficType(value: string | undefined): TrafficType | undefined {
  return (TRAFFIC_TYPES as readonly string[]).includes(value ?? '') ? (value as TrafficType) : undefined;
}

/** A baggage `demo.minute` the story sends (an integer 0-59, as written), or undefined. */
export function storyMinute(value: string | undefined): number | undefined {
  return value !== undefined && /^\d{1,2}$/.test(value) && Number(value) <= 59 ? Number(value) : undefined;
}
