/** The lab's services and their ports, as DESIGN.md fixes them. */
export const SERVICE_PORTS = {
  'load-generator': 8010,
  recommendation: 8011,
  currency: 8012,
  cart: 8013,
  'product-catalog': 8014,
  shipping: 8015,
  checkout: 8016,
  payment: 8017,
  frontend: 8018,
  ad: 8019,
} as const;

export type ServiceName = keyof typeof SERVICE_PORTS;

/** The nine services of the shop (everything but the load generator). */
export const SHOP_SERVICES = Object.keys(SERVICE_PORTS).filter((name) => name !== 'load-generator') as Exclude<
  ServiceName,
  'load-generator'
>[];

/** `product-catalog` → `PRODUCT_CATALOG_URL`. */
export function urlVariable(service: ServiceName): string {
  return `${service.toUpperCase().replaceAll('-', '_')}_URL`;
}

/** The default base URL of a service on localhost. */
export function defaultUrl(service: ServiceName): string {
  return `http://localhost:${SERVICE_PORTS[service]}`;
}

export const DEFAULT_DATABASE_URL = 'postgres://lab:lab@localhost:5432/lab';
export const DEFAULT_REDIS_URL = 'redis://localhost:6379';

/**
 * The two database pools that tell the story, at their default sizes (the services'
 * defaults for CHECKOUT_POOL_MAX and RECOMMENDATION_POOL_MAX): the recommendation query
 * queues on one, the order transaction on the other.
 */
export const STORY_POOLS = { CHECKOUT_POOL_MAX: 4, RECOMMENDATION_POOL_MAX: 4 } as const;

/**
 * The story at a fraction of its load (`npm run lab -- --scale 0.5` with `npm run scenario
 * -- --rate-scale 0.5`): the story's pools sized with the rates, so that every queue is
 * as full, every timeout as likely and every alert as loud as at full scale, for that
 * fraction of the CPU. The pools stay whole: 0.25, 0.5, 0.75 or 1.
 */
export function scaledPoolEnv(scale: number): Record<keyof typeof STORY_POOLS, string> {
  const sizes = Object.entries(STORY_POOLS).map(([name, size]) => [name, size * scale] as const);
  if (!(scale > 0 && scale <= 1) || sizes.some(([, size]) => !Number.isInteger(size)))
    throw new Error(`the story's pools of 4 stay whole only at a scale of 0.25, 0.5, 0.75 or 1 (got ${scale})`);
  return Object.fromEntries(sizes.map(([name, size]) => [name, String(size)])) as Record<keyof typeof STORY_POOLS, string>;
}
