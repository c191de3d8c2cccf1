import type { Logger } from '@bfl/kit';
import { createRedis } from '@bfl/kit/redis';
import { ScenarioStatePublisher } from '@bfl/kit/scenario-state';
import type { Redis } from 'ioredis';
import type { RunOptions } from './runner.js';
import type { Scenario } from './scenario.js';

/**
 * Shares the current minute's knobs with every service through Redis (lab:scenario),
 * refreshed while the run lasts and removed when it ends.
 */
export class KnobSharing {
  private constructor(
    private readonly redis: Redis,
    private readonly publisher: ScenarioStatePublisher,
  ) {}

  /**
   * Connects to Redis. With `check` (the CLI), fails at once when Redis does not answer,
   * saying what to do; without it (the service), keeps retrying in the background.
   */
  static async connect(redisUrl: string, logger: Logger, check = true): Promise<KnobSharing> {
    const redis = createRedis(redisUrl, logger, 'load-generator');
    if (!check) return new KnobSharing(redis, new ScenarioStatePublisher(redis));
    try {
      await redis.ping();
    } catch (error) {
      redis.disconnect();
      const shown = redisUrl.replace(/\/\/[^@/]*@/, '//***@');
      throw new Error(
        `cannot share the scenario's knobs: Redis at ${shown} is unreachable (${(error as Error).message}); set REDIS_URL, or pass --no-knobs to send the traffic without the incident`,
      );
    }
    return new KnobSharing(redis, new ScenarioStatePublisher(redis));
  }

  /** The runner hook that publishes each minute's knobs as it starts. */
  onMinuteStart(scenario: Scenario, minuteMs: number): NonNullable<RunOptions['onMinuteStart']> {
    const startedAt = new Date().toISOString();
    return (minute, knobs) =>
      this.publisher.publish({ scenario: scenario.name, startedAt, minuteMs, minute, label: scenario.minutes[minute]?.label ?? '', knobs });
  }

  /** Back to healthy at once: the key goes. */
  async reset(): Promise<void> {
    await this.publisher.clear();
  }

  async close(): Promise<void> {
    await this.reset().catch(() => undefined);
    await this.redis.quit().catch(() => undefined);
  }
}
