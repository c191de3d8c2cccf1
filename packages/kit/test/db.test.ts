import { describe, expect, it } from 'vitest';
import { DEFAULT_DATABASE_URL } from '../../contract/src/services.js';
import { closeDb, createDb, pingDb } from '../src/db.js';

const url = process.env.DATABASE_URL ?? DEFAULT_DATABASE_URL;

describe('createDb / closeDb (the real PostgreSQL of npm run deps)', () => {
  it('opens a bounded pool that answers, and closes it with its observer', async () => {
    const db = createDb({ url, applicationName: 'kit-db-test', poolMax: 2, acquireTimeoutMs: 5_000, statementTimeoutMs: 5_000 });
    await pingDb(db);
    const { rows } = await db.raw<{ rows: { n: number }[] }>('select 1 + 1 as n');
    expect(rows[0]?.n).toBe(2);
    await closeDb(db);
    // Closed for good: a query after closeDb is refused, it does not reopen the pool.
    await expect(db.raw('select 1')).rejects.toThrow();
  });
});
