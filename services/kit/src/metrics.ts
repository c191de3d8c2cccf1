import { metrics } from '@opentelemetry/api';

/** The lab's own instruments (a no-op until telemetry is started). */
export const labMeter = () => metrics.getMeter('black-friday-lab');

export interface PoolLike {
  numUsed(): number;
  numFree(): number;
  numPendingAcquires(): number;
}

/**
 * Pool gauges with the semantic-convention names: connections in use and idle
 * (`db.client.connection.count`), requests waiting for one
 * (`db.client.connection.pending_requests`) and the pool's size
 * (`db.client.connection.max`), so that an alert can say "as many waiting as half the
 * pool" without knowing how big the pool is.
 */
export function observePool(poolName: string, pool: () => PoolLike | undefined, max: number): void {
  const meter = labMeter();
  const base = { 'db.client.connection.pool.name': poolName };
  meter
    .createObservableUpDownCounter('db.client.connection.max', {
      description: 'The largest number of connections the pool opens',
      unit: '{connection}',
    })
    .addCallback((result) => result.observe(max, base));
  meter
    .createObservableUpDownCounter('db.client.connection.count', { description: 'Connections of the pool, by state', unit: '{connection}' })
    .addCallback((result) => {
      const p = pool();
      if (!p) return;
      result.observe(p.numUsed(), { ...base, 'db.client.connection.state': 'used' });
      result.observe(p.numFree(), { ...base, 'db.client.connection.state': 'idle' });
    });
  meter
    .createObservableUpDownCounter('db.client.connection.pending_requests', {
      description: 'Requests waiting for a connection',
      unit: '{request}',
    })
    .addCallback((result) => {
      const p = pool();
      if (p) result.observe(p.numPendingAcquires(), base);
    });
}
