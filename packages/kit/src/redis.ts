import { Redis } from 'ioredis';
import type { Logger } from './log.js';

export { Redis };

/**
 * A Redis client that keeps retrying its connection (so a service outlives a Redis
 * restart) but fails commands fast instead of queueing them: once it has been connected,
 * a command sent while the connection is down fails at once (`Stream isn't writeable`, a
 * 503 redis-unavailable) rather than waiting for the next reconnect attempt, which is up
 * to 2 s away. Until the first connection, commands queue, so nothing fails at boot.
 */
export function createRedis(url: string, logger: Logger, name = 'redis'): Redis {
  const redis = new Redis(url, {
    connectionName: name,
    maxRetriesPerRequest: 1,
    connectTimeout: 2_000,
    commandTimeout: 2_000,
    retryStrategy: (attempt) => Math.min(attempt * 200, 2_000),
  });
  let lastError = '';
  redis.on('error', (error: Error) => {
    if (error.message !== lastError) logger.warn({ err: error.message }, 'redis connection error');
    lastError = error.message;
  });
  redis.on('ready', () => {
    lastError = '';
    // ioredis reads this option at each command.
    redis.options.enableOfflineQueue = false;
  });
  return redis;
}

/** Readiness: PING answers PONG. */
export async function pingRedis(redis: Redis): Promise<void> {
  const pong = await redis.ping();
  if (pong !== 'PONG') throw new Error(`unexpected PING answer ${pong}`);
}
