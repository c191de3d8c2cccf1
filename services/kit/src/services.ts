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
