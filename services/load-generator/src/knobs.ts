import { createLogger, type Logger } from '@bfl/kit';
import { createRedis } from '@bfl/kit/redis';
import { readScenarioState, requestStop, ScenarioStatePublisher } from '@bfl/kit/scenario-state';
import type { Redis } from 'ioredis';
import type { MinuteRow, RunOptions } from './runner.js';
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
  static async connect(redisUrl: string, logger: Logger, check = true, onStop?: () => void): Promise<KnobSharing> {
    const redis = createRedis(redisUrl, logger, 'load-generator');
    const sharing = new KnobSharing(redis, new ScenarioStatePublisher(redis, 3_000, () => sharing.stopRequested()));
    sharing.onStop = onStop;
    if (!check) return sharing;
    try {
      await redis.ping();
    } catch (error) {
      redis.disconnect();
      const shown = redisUrl.replace(/\/\/[^@/]*@/, '//***@');
      throw new Error(
        `cannot share the scenario's knobs: Redis at ${shown} is unreachable (${(error as Error).message}); set REDIS_URL, or pass --no-knobs to send the traffic without the incident`,
      );
    }
    return sharing;
  }

  /** Called when `npm run scenario -- stop` (or POST /scenario/stop elsewhere) asks runners to stop. */
  onStop?: () => void;

  private stopRequested(): void {
    this.onStop?.();
  }

  /** Keeps a finished minute's row in the shared state, for `status`. */
  addRow(row: MinuteRow): void {
    this.publisher.addRow(row);
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

/** `status` and `stop` through Redis: they reach any runner (CLI or service) that shares it. */
export async function sharedState(action: 'status' | 'stop', redisUrl: string): Promise<Record<string, unknown>> {
  const redis = createRedis(redisUrl, createLogger('load-generator', 'silent'), 'scenario-cli');
  try {
    await redis.ping().catch((error: Error) => {
      throw new Error(
        `Redis at ${redisUrl.replace(/\/\/[^@/]*@/, '//***@')} is unreachable (${error.message}); set REDIS_URL, or --url for a load-generator service`,
      );
    });
    const state = action === 'stop' ? await requestStop(redis) : await readScenarioState(redis);
    if (!state) return { state: 'idle', message: 'no scenario is running; the knobs are at their healthy defaults' };
    return action === 'stop' ? { state: 'stopping', message: 'stop requested; knobs reset', ...state } : { state: 'running', ...state };
  } finally {
    redis.disconnect();
  }
}
