import { metrics } from '@opentelemetry/api';

/** The lab's own instruments (a no-op until telemetry is started). */
export const labMeter = () => metrics.getMeter('black-friday-lab');

export interface PoolLike {
  numUsed(): number;
  numFree(): number;
  numPendingAcquires(): number;
}

/** How often `observePool` looks whether requests are waiting (for the waiting time). */
export const POOL_SAMPLE_MS = 50;

/**
 * Pool gauges with the semantic-convention names: connections in use and idle
 * (`db.client.connection.count`), requests waiting for one
 * (`db.client.connection.pending_requests`) and the pool's size
 * (`db.client.connection.max`), so that an alert can say "as many waiting as half the
 * pool" without knowing how big the pool is.
 *
 * And one counter of the lab's own, `lab.db.client.connection.waiting_time`: the seconds
 * during which at least one request waited for a connection, looked at every
 * POOL_SAMPLE_MS. Its rate is the share of time the pool had a queue (0-1). The gauge
 * is one reading per metric export: a queue of twenty that drains in 0.2 s reads as
 * twenty if the export falls in those 0.2 s, and as nothing otherwise; the rate tells
 * such a burst (0.2 of one second) from a pool that stays dry (near 1).
 *
 * Returns a function that stops the sampling.
 */
export function observePool(poolName: string, pool: () => PoolLike | undefined, max: number): () => void {
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
  const waiting = new WaitingTime(() => (pool()?.numPendingAcquires() ?? 0) > 0);
  const timer = setInterval(() => waiting.sample(), POOL_SAMPLE_MS).unref();
  meter
    .createObservableCounter('lab.db.client.connection.waiting_time', {
      description: 'Time during which at least one request waited for a connection of the pool',
      unit: 's',
    })
    .addCallback((result) => result.observe(waiting.sample() / 1000, base));
  return () => clearInterval(timer);
}

/**
 * The time during which a condition held, from readings taken now and then: the time
 * between two readings counts by halves, one for each reading that found it true.
 */
export class WaitingTime {
  private totalMs = 0;
  private last: { at: number; holds: boolean } | undefined;

  constructor(
    private readonly holds: () => boolean,
    private readonly now: () => number = () => performance.now(),
  ) {}

  /** Takes a reading; returns the total so far, in ms. */
  sample(): number {
    const reading = { at: this.now(), holds: this.holds() };
    if (this.last) this.totalMs += ((reading.at - this.last.at) * (Number(this.last.holds) + Number(reading.holds))) / 2;
    this.last = reading;
    return this.totalMs;
  }
}
