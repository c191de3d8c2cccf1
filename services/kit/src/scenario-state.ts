import type { Redis } from 'ioredis';
import type { Logger } from './log.js';
import { createRedis } from './redis.js';

/** The Redis key holding the running scenario's state, shared by every replica of every service. */
export const SCENARIO_KEY = 'lab:scenario';

/** What the runner publishes while a scenario runs. */
export interface ScenarioState {
  scenario: string;
  startedAt: string;
  minuteMs: number;
  minute: number;
  label: string;
  knobs: Record<string, number>;
  updatedAt: string;
}

function parse(text: string | null): ScenarioState | undefined {
  if (!text) return undefined;
  try {
    const state = JSON.parse(text) as ScenarioState;
    return typeof state === 'object' && state && typeof state.knobs === 'object' ? state : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Reads the scenario state from Redis about once a second, so a request never waits for
 * Redis. Knobs fall back to their healthy defaults when the key is absent (no scenario,
 * or a runner that stopped refreshing it) or Redis cannot be reached. Each change is
 * logged once.
 */
export class ScenarioStateReader {
  private state?: ScenarioState;
  private timer?: NodeJS.Timeout;
  private lastKnobs = '{}';
  private lastError = '';

  constructor(
    private readonly redis: Redis,
    private readonly logger: Logger,
    private readonly refreshMs = 1_000,
    private readonly ownsRedis = false,
  ) {}

  /** Stops reading; closes the Redis connection if the reader opened it. */
  async close(): Promise<void> {
    this.stop();
    if (this.ownsRedis) await this.redis.quit().catch(() => undefined);
  }

  start(): this {
    if (this.timer) return this;
    void this.refresh();
    this.timer = setInterval(() => void this.refresh(), this.refreshMs);
    this.timer.unref();
    return this;
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  async refresh(): Promise<void> {
    let next: ScenarioState | undefined;
    try {
      next = parse(await this.redis.get(SCENARIO_KEY));
      this.lastError = '';
    } catch (error) {
      const message = (error as Error).message;
      if (message !== this.lastError) this.logger.warn({ err: message }, 'scenario state unreadable: knobs at their healthy defaults');
      this.lastError = message;
    }
    this.state = next;
    const knobs = JSON.stringify(next?.knobs ?? {});
    if (knobs !== this.lastKnobs) {
      if (next) {
        this.logger.info({ scenario: next.scenario, minute: next.minute, knobs: next.knobs }, `knobs changed (demo minute ${next.minute})`);
      } else {
        this.logger.info('no scenario running: knobs back to their healthy defaults');
      }
      this.lastKnobs = knobs;
    }
  }

  /** The running scenario, if any. */
  get current(): ScenarioState | undefined {
    return this.state;
  }

  /** A knob's value, or `healthy` when no scenario sets it. */
  knob(name: string, healthy: number): number {
    const value = this.state?.knobs[name];
    return typeof value === 'number' && Number.isFinite(value) ? value : healthy;
  }
}

/**
 * Publishes the scenario state (the runner's side): SET with a TTL, refreshed while the
 * run lasts, so a stopped or crashed runner returns the lab to healthy within the TTL.
 */
export class ScenarioStatePublisher {
  private timer?: NodeJS.Timeout;
  private state?: ScenarioState;

  constructor(
    private readonly redis: Redis,
    readonly ttlMs = 3_000,
  ) {}

  async publish(state: Omit<ScenarioState, 'updatedAt'>): Promise<void> {
    this.state = { ...state, updatedAt: new Date().toISOString() };
    await this.write();
    if (!this.timer) {
      this.timer = setInterval(() => void this.write().catch(() => undefined), Math.max(250, this.ttlMs / 3));
      this.timer.unref();
    }
  }

  private async write(): Promise<void> {
    if (!this.state) return;
    this.state.updatedAt = new Date().toISOString();
    await this.redis.set(SCENARIO_KEY, JSON.stringify(this.state), 'PX', this.ttlMs);
  }

  /** Ends the run: the key goes at once, so every service is back to healthy knobs within a second. */
  async clear(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    this.state = undefined;
    await this.redis.del(SCENARIO_KEY);
  }
}

/** A started reader on its own Redis connection; `close()` stops it and closes the connection. */
export function startScenarioReader(redisUrl: string, logger: Logger): ScenarioStateReader {
  return new ScenarioStateReader(createRedis(redisUrl, logger, 'scenario-state'), logger, 1_000, true).start();
}
