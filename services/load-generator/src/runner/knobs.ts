import { createLogger, type Logger } from '@bfl/kit';
import { createRedis } from '@bfl/kit/redis';
import { readScenarioState, requestStop, type ScenarioState, ScenarioStatePublisher } from '@bfl/kit/scenario-state';
import type { Redis } from 'ioredis';
import { controlRequest } from './control-client.js';
import type { MinuteRow, RunOptions } from './runner.js';
import type { Scenario } from './scenario.js';

/** How a runner shares each minute's knobs with the services. */
export interface KnobChannel {
  onMinuteStart(scenario: Scenario, minuteMs: number): NonNullable<RunOptions['onMinuteStart']>;
  addRow(row: MinuteRow): void;
  close(): Promise<void>;
}

/**
 * Shares the current minute's knobs with every service through Redis (lab:scenario),
 * refreshed while the run lasts and removed when it ends.
 */
export class KnobSharing implements KnobChannel {
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

  /** Publishes a state another runner sends (the control API's relay for a runner outside). */
  async publishState(state: Omit<ScenarioState, 'updatedAt'>): Promise<void> {
    await this.publisher.publish(state);
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

/**
 * For a runner outside the lab's network (the CLI on the host, Redis not published):
 * the knobs go through the load-generator service's control API, which writes them to
 * Redis. Refreshed every second; the answer says when someone asked the run to stop.
 */
class KnobRelay implements KnobChannel {
  private state?: Omit<ScenarioState, 'updatedAt'>;
  private timer?: NodeJS.Timeout;

  constructor(
    private readonly base: string,
    private readonly token: string | undefined,
    private readonly onStop?: () => void,
  ) {}

  /** A relay when the load generator answers at `base`; the error says what is missing. */
  static async connect(base: string, token: string | undefined, onStop?: () => void): Promise<KnobRelay> {
    await controlRequest(base, 'GET', '/health', token);
    return new KnobRelay(base, token, onStop);
  }

  private async send(): Promise<void> {
    if (!this.state) return;
    const answer = (await controlRequest(this.base, 'PUT', '/scenario/knobs', this.token, this.state)) as { stopRequested?: boolean };
    if (answer.stopRequested) this.onStop?.();
  }

  onMinuteStart(scenario: Scenario, minuteMs: number): NonNullable<RunOptions['onMinuteStart']> {
    const startedAt = new Date().toISOString();
    return async (minute, knobs) => {
      this.state = {
        scenario: scenario.name,
        startedAt,
        minuteMs,
        minute,
        label: scenario.minutes[minute]?.label ?? '',
        knobs,
        rows: this.state?.rows,
      };
      await this.send();
      this.timer ??= setInterval(() => void this.send().catch(() => undefined), 1_000);
      this.timer.unref();
    };
  }

  addRow(row: MinuteRow): void {
    if (!this.state) return;
    this.state.rows = [...(this.state.rows ?? []), row].slice(-3);
    void this.send().catch(() => undefined);
  }

  async close(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.state = undefined;
    await controlRequest(this.base, 'DELETE', '/scenario/knobs', this.token).catch(() => undefined);
  }
}

/**
 * The CLI's channel: Redis at REDIS_URL when it answers, else the load generator's
 * control API (LOAD_GENERATOR_URL, default http://localhost:8010), else a clear error.
 */
export async function connectKnobs(
  redisUrl: string,
  controlUrl: string,
  token: string | undefined,
  onStop: () => void,
): Promise<KnobChannel> {
  try {
    return await KnobSharing.connect(redisUrl, createLogger('load-generator', 'silent'), true, onStop);
  } catch (redisError) {
    try {
      return await KnobRelay.connect(controlUrl, token, onStop);
    } catch (relayError) {
      throw new Error(
        `${(redisError as Error).message}; the load generator's control API at ${controlUrl} did not answer either (${(relayError as Error).message})`,
      );
    }
  }
}
