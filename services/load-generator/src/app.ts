import { timingSafeEqual } from 'node:crypto';
import { createApp, DEFAULT_REDIS_URL, defaultUrl, defineService, env, HttpError, type Logger, validateBody, z } from '@bfl/kit';
import { KnobSharing } from './knobs.js';
import { parseDuration } from './options.js';
import { buildReport, type Report } from './report.js';
import { type MinuteRow, ScenarioRun } from './runner.js';
import { knobsOf, loadScenario, type Scenario, ScenarioError } from './scenario.js';

const Duration = z.string().refine(
  (text) => {
    try {
      parseDuration(text);
      return true;
    } catch {
      return false;
    }
  },
  { message: 'a duration such as 500ms, 5s or 1m' },
);

const StartBody = z.object({
  scenario: z.string().min(1).max(200).default('black-friday'),
  minute: Duration.default('60s'),
  rateScale: z.number().positive().max(100).default(1),
  timeout: Duration.default('10s'),
});

type State = 'idle' | 'running' | 'stopping' | 'finished';

const RelayedState = z.object({
  scenario: z.string().min(1).max(200),
  startedAt: z.string().min(1).max(64),
  minuteMs: z.number().int().positive(),
  minute: z.number().int().min(0),
  label: z.string().max(200).default(''),
  knobs: z.record(z.string(), z.number().finite()),
  rows: z.array(z.unknown()).max(10).optional(),
});

/** A one-minute scenario of baseline browsing only: what the service sends while no scenario runs. */
function idleScenario(base: Scenario, rpm: number): Scenario {
  return {
    ...base,
    name: 'idle-baseline',
    minutes: [{ label: 'idle', phase: 'ramp', rpm: { baseline: rpm, demo: 0 }, knobs: {} }],
    expectations: [],
  };
}

/**
 * The runner as a long-running service: baseline traffic by default, and a scenario on
 * demand through the control API.
 */
export class Controller {
  state: State = 'idle';
  private run?: { scenario: Scenario; runner: ScenarioRun; abort: AbortController; done: Promise<void>; startedAt: string };
  private idle?: { abort: AbortController; done: Promise<void> };
  private lastReport?: Report;

  constructor(
    private readonly target: string,
    private readonly baselineRpm: number,
    private readonly logger: Logger,
    private readonly knobs?: KnobSharing,
  ) {}

  /** Keeps baseline browsing going while no scenario runs (minute after minute). */
  startIdleBaseline(): void {
    if (this.baselineRpm <= 0 || this.idle) return;
    const abort = new AbortController();
    const scenario = idleScenario(loadScenario('black-friday'), this.baselineRpm);
    const done = (async () => {
      while (!abort.signal.aborted) {
        await new ScenarioRun({ scenario, target: this.target, minuteMs: 60_000, classes: ['baseline'], signal: abort.signal }).run();
      }
    })().catch((error: unknown) => this.logger.error({ err: error }, 'idle baseline traffic failed'));
    this.idle = { abort, done };
  }

  async stopIdleBaseline(): Promise<void> {
    if (!this.idle) return;
    this.idle.abort.abort();
    await this.idle.done;
    this.idle = undefined;
  }

  async start(input: z.infer<typeof StartBody>) {
    if (this.run) throw new HttpError(409, `scenario ${this.run.scenario.name} is already running; POST /scenario/stop first`);
    let scenario: Scenario;
    try {
      scenario = loadScenario(input.scenario);
    } catch (error) {
      throw new HttpError(422, error instanceof ScenarioError ? error.message : String(error));
    }
    await this.stopIdleBaseline();
    const abort = new AbortController();
    const minuteMs = parseDuration(input.minute);
    const runner = new ScenarioRun({
      scenario,
      target: this.target,
      minuteMs,
      rateScale: input.rateScale,
      timeoutMs: parseDuration(input.timeout),
      signal: abort.signal,
      onMinuteStart: this.knobs?.onMinuteStart(scenario, minuteMs),
      onMinute: (row) => {
        this.knobs?.addRow(row);
        this.logger.info({ minute: row.minute, traffic: row.traffic }, `scenario ${scenario.name}: minute ${row.minute} done`);
      },
    });
    const startedAt = new Date().toISOString();
    this.state = 'running';
    this.logger.info({ scenario: scenario.name, minuteMs, rateScale: input.rateScale }, `scenario ${scenario.name} started`);
    const done = runner
      .run()
      .then((result) => {
        this.lastReport = buildReport(scenario, result, this.target);
        this.logger.info({ ok: this.lastReport.ok, stopped: result.stopped }, `scenario ${scenario.name} finished`);
      })
      .catch((error: unknown) => this.logger.error({ err: error }, `scenario ${scenario.name} failed`))
      .finally(async () => {
        await this.knobs?.reset().catch((error: unknown) => this.logger.warn({ err: error }, 'could not reset the knobs'));
        this.run = undefined;
        this.state = 'finished';
        this.startIdleBaseline();
      });
    this.run = { scenario, runner, abort, done, startedAt };
    return this.status();
  }

  async stop() {
    if (this.run) {
      this.state = 'stopping';
      this.run.abort.abort();
      await this.run.done;
    }
    return this.status();
  }

  status(): Record<string, unknown> {
    const run = this.run;
    if (!run) {
      return { state: this.state, baselineRpm: this.idle ? this.baselineRpm : 0, lastReport: this.lastReport ?? null };
    }
    const progress = run.runner.progress();
    const rows: readonly MinuteRow[] = run.runner.rowsSoFar;
    return {
      state: this.state,
      scenario: run.scenario.name,
      startedAt: run.startedAt,
      minute: progress.minute,
      minutes: progress.minutes,
      label: run.scenario.minutes[progress.minute]?.label ?? '',
      knobs: knobsOf(run.scenario, progress.minute),
      sent: progress.sent,
      inFlight: progress.inFlight,
      rows: rows.slice(-5),
    };
  }

  async close(): Promise<void> {
    await this.stop();
    await this.stopIdleBaseline();
    await this.knobs?.close();
  }
}

/** Constant-time comparison of the bearer token. */
function authorized(header: string | undefined, token: string): boolean {
  const given = Buffer.from(header?.replace(/^Bearer\s+/i, '') ?? '');
  const expected = Buffer.from(token);
  return given.length === expected.length && timingSafeEqual(given, expected);
}

export const service = defineService({
  name: 'load-generator',
  config: {
    FRONTEND_URL: env.url(defaultUrl('frontend')),
    /** Baseline browsing while no scenario runs; 0 turns it off. */
    BASELINE_RPM: env.number(100),
    /** When set, the control API wants `Authorization: Bearer <token>`. */
    LAB_CONTROL_TOKEN: z.string().min(8, 'LAB_CONTROL_TOKEN must be at least 8 characters').optional(),
    /** Where the scenario's knobs are published (key lab:scenario). */
    REDIS_URL: env.url(DEFAULT_REDIS_URL),
  },
  async create(config, logger) {
    // A stop request (npm run scenario -- stop) ends this service's run, and is passed on
    // to a runner that relays its knobs through this service.
    let relay = { startedAt: '', stopRequested: false };
    const knobs = await KnobSharing.connect(config.REDIS_URL, logger, false, () => {
      relay.stopRequested = true;
      void controller.stop();
    });
    const controller = new Controller(config.FRONTEND_URL.replace(/\/$/, ''), config.BASELINE_RPM, logger, knobs);
    const app = createApp({
      name: 'load-generator',
      logger,
      ready: {
        frontend: async () => {
          const response = await fetch(`${config.FRONTEND_URL.replace(/\/$/, '')}/health`, { signal: AbortSignal.timeout(1_000) });
          if (!response.ok) throw new Error(`frontend /health answered ${response.status}`);
        },
      },
      routes(router) {
        router.use('/scenario', async (ctx, next) => {
          if (config.LAB_CONTROL_TOKEN && !authorized(ctx.get('authorization'), config.LAB_CONTROL_TOKEN)) {
            ctx.set('WWW-Authenticate', 'Bearer');
            throw new HttpError(401, 'the control API needs Authorization: Bearer <LAB_CONTROL_TOKEN>');
          }
          await next();
        });
        router.post('/scenario/start', async (ctx) => {
          const input = validateBody(StartBody, ctx);
          ctx.status = 202;
          ctx.body = await controller.start(input);
        });
        router.post('/scenario/stop', async (ctx) => {
          ctx.body = await controller.stop();
        });
        // The knob relay for a runner outside the lab's network (the CLI on the host).
        router.put('/scenario/knobs', async (ctx) => {
          const state = validateBody(RelayedState, ctx);
          if (state.startedAt !== relay.startedAt) relay = { startedAt: state.startedAt, stopRequested: false };
          await knobs.publishState(state);
          ctx.body = { published: true, stopRequested: relay.stopRequested };
        });
        router.delete('/scenario/knobs', async (ctx) => {
          await knobs.reset();
          ctx.body = { published: false };
        });
        router.get('/scenario/status', (ctx) => {
          ctx.body = controller.status();
        });
      },
    });
    controller.startIdleBaseline();
    return { app, close: () => controller.close() };
  },
});
