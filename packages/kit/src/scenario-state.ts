import { knobProblem } from '@bfl/contract';
import { labMeter, untraced } from '@bfl/telemetry';
import type { Redis } from 'ioredis';
import type { Logger } from './log.js';
import { createRedis } from './redis.js';

/** The Redis key holding the running scenario's state, shared by every replica of every service. */
export const SCENARIO_KEY = 'lab:scenario';
/** Set by `npm run scenario -- stop`: whichever runner is publishing stops. */
export const STOP_KEY = 'lab:scenario:stop';

/** What the runner publishes while a scenario runs. */
export interface ScenarioState {
  scenario: string;
  startedAt: string;
  minuteMs: number;
  minute: number;
  label: string;
  knobs: Record<string, number>;
  updatedAt: string;
  /** The last finished minutes' report rows, for `status` (optional). */
  rows?: unknown[];
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
 * Reads the scenario state from Redis twice a second, so a request never waits for
 * Redis. Knobs fall back to their healthy defaults when the key is absent (no scenario,
 * or a runner that stopped refreshing it) or Redis cannot be reached. Each change is
 * logged once.
 */
export class ScenarioStateReader {
  private state?: ScenarioState;
  private timer?: NodeJS.Timeout;
  private lastKnobs = '{}';
  private lastError = '';
  private lastRejected = '';

  constructor(
    private readonly redis: Redis,
    private readonly logger: Logger,
    private readonly refreshMs = 500,
    private readonly ownsRedis = false,
  ) {}

  /** Stops reading; closes the Redis connection if the reader opened it. */
  async close(): Promise<void> {
    this.stop();
    if (this.ownsRedis) await this.redis.quit().catch(() => undefined);
  }

  start(): this {
    if (this.timer) return this;
    labMeter()
      .createObservableGauge('lab.demo.minute', { description: 'The demo minute of the running scenario (-1: none)' })
      .addCallback((result) => result.observe(this.state?.minute ?? -1, { 'lab.scenario': this.state?.scenario ?? 'none' }));
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
      // Background polling is not traffic: no spans.
      next = parse(await untraced(() => this.redis.get(SCENARIO_KEY)));
      this.lastError = '';
      const problem = next && knobProblem(next.knobs);
      if (problem) {
        // Written by something other than a runner (knobs are checked before they are
        // published): ignored, healthy knobs, one log line per state written.
        if (problem !== this.lastRejected)
          this.logger.warn({ scenario: next?.scenario, problem }, `scenario state ignored: ${problem}; knobs at their healthy defaults`);
        this.lastRejected = problem;
        next = undefined;
      } else {
        this.lastRejected = '';
      }
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

  /** `onStop` is called when someone asks every runner to stop (STOP_KEY). */
  constructor(
    private readonly redis: Redis,
    readonly ttlMs = 3_000,
    private readonly onStop?: () => void,
  ) {}

  async publish(state: Omit<ScenarioState, 'updatedAt'>): Promise<void> {
    // A stop request left from an earlier run does not stop this one.
    if (!this.state) await this.redis.del(STOP_KEY);
    this.state = { ...state, rows: state.rows ?? this.state?.rows, updatedAt: new Date().toISOString() };
    await this.write();
    if (!this.timer) {
      this.timer = setInterval(() => void this.write().catch(() => undefined), Math.max(250, this.ttlMs / 3));
      this.timer.unref();
    }
  }

  /** Keeps the last few finished rows in the published state. */
  addRow(row: unknown, keep = 3): void {
    if (!this.state) return;
    this.state.rows = [...(this.state.rows ?? []), row].slice(-keep);
    void this.write().catch(() => undefined);
  }

  private async write(): Promise<void> {
    if (!this.state) return;
    this.state.updatedAt = new Date().toISOString();
    const [[, stop]] = (await this.redis
      .multi()
      .exists(STOP_KEY)
      .set(SCENARIO_KEY, JSON.stringify(this.state), 'PX', this.ttlMs)
      .exec()) as [[Error | null, number]];
    if (stop && this.onStop) {
      await this.clear();
      this.onStop();
    }
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
  return new ScenarioStateReader(createRedis(redisUrl, logger, 'scenario-state'), logger, 500, true).start();
}

/** Reads the published state once (for `status`). */
export async function readScenarioState(redis: Redis): Promise<ScenarioState | undefined> {
  return parse(await redis.get(SCENARIO_KEY));
}

/**
 * Asks whichever runner is publishing to stop, and resets the knobs at once (the key
 * goes now; the runner sees the request within a second and ends its run).
 */
export async function requestStop(redis: Redis): Promise<ScenarioState | undefined> {
  const state = await readScenarioState(redis);
  await redis.multi().set(STOP_KEY, '1', 'PX', 10_000).del(SCENARIO_KEY).exec();
  return state;
}
