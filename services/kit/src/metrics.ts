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
 * (`db.client.connection.count`) and requests waiting for one
 * (`db.client.connection.pending_requests`).
 */
export function observePool(poolName: string, pool: () => PoolLike | undefined): void {
  const meter = labMeter();
  const base = { 'db.client.connection.pool.name': poolName };
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
