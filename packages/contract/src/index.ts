/**
 * @bfl/contract: what every service and tool of the lab agrees on, and nothing else.
 *
 * Belongs here: the service names, ports and URL variables (DESIGN.md), the domain's
 * values (categories, currencies, traffic classes, the story's baggage values), the zod
 * schemas and types more than one service speaks (ids, zip, currency, products, carts),
 * and the scenario knobs with their ranges. It depends on zod only and does no I/O.
 *
 * Does not belong here: anything that serves requests (@bfl/kit), telemetry
 * (@bfl/telemetry), or one service's own schemas (they stay in that service).
 */
export * from './domain.js';
export * from './knobs.js';
export * from './schemas.js';
export * from './services.js';
