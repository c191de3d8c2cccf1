import { observePool, type PoolLike } from '@bfl/telemetry';
import knex, { type Knex } from 'knex';
import type { Logger } from './log.js';

export type { Knex };

export interface DbOptions {
  url: string;
  /** Largest number of connections the pool opens. */
  poolMax: number;
  /** How long a query waits for a free connection before failing with pool exhaustion. */
  acquireTimeoutMs: number;
  /** application_name seen by PostgreSQL (pg_stat_activity). */
  applicationName: string;
  /**
   * Server-side statement_timeout in ms (statementTimeoutFor: above the largest cost a
   * knob may add); a statement past it is cancelled and answered 503 `statement-timeout`.
   */
  statementTimeoutMs: number;
  /** Where knex's own warnings go (instead of the console). */
  logger?: Logger;
}

/**
 * A bounded PostgreSQL pool. It opens connections lazily (min 0), so a service starts
 * even while the database is still coming up, and /ready tells when it is reachable.
 */
export function createDb(options: DbOptions): Knex {
  const db = knex({
    client: 'pg',
    connection: {
      connectionString: options.url,
      application_name: options.applicationName,
      statement_timeout: options.statementTimeoutMs,
    },
    pool: { min: 0, max: options.poolMax, idleTimeoutMillis: 30_000 },
    acquireConnectionTimeout: options.acquireTimeoutMs,
    log: {
      warn: (message: unknown) => options.logger?.warn({ knex: message }, 'knex warning'),
      error: (message: unknown) => options.logger?.error({ knex: message }, 'knex error'),
      deprecate: (method: string, alternative: string) => options.logger?.warn(`knex: ${method} is deprecated, use ${alternative}`),
      debug: (message: unknown) => options.logger?.debug({ knex: message }, 'knex debug'),
    },
  });
  observers.set(
    db,
    observePool(options.applicationName, () => (db.client as unknown as { pool?: PoolLike }).pool, options.poolMax),
  );
  return db;
}

/** The pool observers of createDb's pools, stopped by closeDb (knex's own destroy is read-only). */
const observers = new WeakMap<Knex, () => void>();

/** Closes a pool from createDb: stops observing it, then destroys it (its connections closed). */
export async function closeDb(db: Knex): Promise<void> {
  observers.get(db)?.();
  observers.delete(db);
  await db.destroy();
}

/** Readiness: one round trip to the database. */
export async function pingDb(db: Knex): Promise<void> {
  await db.raw('select 1');
}
