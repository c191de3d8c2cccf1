import { createHash, timingSafeEqual } from 'node:crypto';
import { BlockList, isIPv4 } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { DEFAULT_REDIS_URL, defaultUrl, KnobValues } from '@bfl/contract';
import { createApp, defineService, env, HttpError, type Logger, validateBody, z } from '@bfl/kit';
import { untraced } from '@bfl/telemetry';
import { buildReport, type Report } from '../report/report.js';
import { KnobSharing } from '../runner/knobs.js';
import { type MinuteRow, ScenarioRun } from '../runner/runner.js';
import { knobsOf, loadScenario, type Scenario, ScenarioError } from '../runner/scenario.js';
import { parseDuration } from './options.js';

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
  knobs: KnobValues,
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
class Controller {
  state: State = 'idle';
  private run?: { scenario: Scenario; runner: ScenarioRun; abort: AbortController; done: Promise<void>; startedAt: string };
  private idle?: { abort: AbortController; done: Promise<void> };
  /** Set while the idle baseline waits for the frontend's /ready (shown by GET /scenario/status). */
  private waitingForFrontend = false;
  private lastReport?: Report;
  /** The scenario being started (between the check and the run being set). */
  private starting?: string;

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
      await this.untilFrontendReady(abort.signal);
      while (!abort.signal.aborted) {
        await new ScenarioRun({ scenario, target: this.target, minuteMs: 60_000, classes: ['baseline'], signal: abort.signal }).run();
      }
    })().catch((error: unknown) => this.logger.error({ err: error }, 'idle baseline traffic failed'));
    this.idle = { abort, done };
  }

  /**
   * Waits until the frontend answers its /ready (every service it calls answers): browsing
   * a shop that is still starting would only count errors, and in Compose and Kubernetes
   * the services start side by side (no service waits for the others' health). Polled
   * once a second, untraced; says once that it waits and once that it stopped waiting.
   */
  private async untilFrontendReady(signal: AbortSignal): Promise<void> {
    while (!signal.aborted) {
      const answer = await untraced(() =>
        fetch(`${this.target}/ready`, { signal: AbortSignal.any([signal, AbortSignal.timeout(1_000)]) }).then(
          async (response) => {
            await response.arrayBuffer();
            return `${response.status}`;
          },
          (error: Error) => error.message,
        ),
      );
      if (answer === '200') {
        if (this.waitingForFrontend) this.logger.info(`${this.target}/ready answers 200: baseline browsing starts`);
        break;
      }
      if (!this.waitingForFrontend) this.logger.info(`baseline browsing waits for ${this.target}/ready (answered: ${answer})`);
      this.waitingForFrontend = true;
      await sleep(1_000, undefined, { signal }).catch(() => undefined);
    }
    this.waitingForFrontend = false;
  }

  async stopIdleBaseline(): Promise<void> {
    if (!this.idle) return;
    this.idle.abort.abort();
    await this.idle.done;
    this.idle = undefined;
  }

  async start(input: z.infer<typeof StartBody>) {
    if (this.run || this.starting)
      throw new HttpError(409, `scenario ${this.run?.scenario.name ?? this.starting} is already running; POST /scenario/stop first`);
    let scenario: Scenario;
    try {
      scenario = loadScenario(input.scenario);
    } catch (error) {
      throw new HttpError(422, error instanceof ScenarioError ? error.message : String(error));
    }
    // Claimed before the first await: a second start arriving meanwhile gets its 409.
    this.starting = scenario.name;
    try {
      await this.stopIdleBaseline();
    } finally {
      this.starting = undefined;
    }
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
      onCallbackError: (what, error, minute) =>
        this.logger.warn({ err: error, minute }, `scenario ${scenario.name}: ${what} failed in minute ${minute}; the run goes on`),
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
      return {
        state: this.state,
        baselineRpm: this.idle && !this.waitingForFrontend ? this.baselineRpm : 0,
        ...(this.waitingForFrontend ? { waitingFor: `${this.target}/ready` } : {}),
        lastReport: this.lastReport ?? null,
      };
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

/**
 * The bearer token, compared in constant time: both sides are hashed first, so neither
 * the comparison nor an early length check tells anything about the token.
 */
export function authorized(header: string | undefined, token: string): boolean {
  const digest = (text: string) => createHash('sha256').update(text).digest();
  return timingSafeEqual(digest(header?.replace(/^Bearer\s+/i, '') ?? ''), digest(token));
}

/** Who may change the lab's state without a token (LAB_CONTROL_TRUSTED). */
export type Trust = 'loopback' | 'private';

const LOOPBACK = new BlockList();
LOOPBACK.addSubnet('127.0.0.0', 8, 'ipv4');
LOOPBACK.addAddress('::1', 'ipv6');
const PRIVATE = new BlockList();
PRIVATE.addSubnet('10.0.0.0', 8, 'ipv4');
PRIVATE.addSubnet('172.16.0.0', 12, 'ipv4');
PRIVATE.addSubnet('192.168.0.0', 16, 'ipv4');
PRIVATE.addSubnet('fc00::', 7, 'ipv6');

/** Whether a peer address (as the socket gives it) is trusted without a token. */
export function peerTrusted(address: string | undefined, trust: Trust): boolean {
  if (!address) return false;
  const plain = address.startsWith('::ffff:') && isIPv4(address.slice(7)) ? address.slice(7) : address;
  const family = isIPv4(plain) ? 'ipv4' : 'ipv6';
  return LOOPBACK.check(plain, family) || (trust === 'private' && PRIVATE.check(plain, family));
}

/** The names the control API answers to: a request for any other Host is a rebound DNS name. */
const OWN_HOSTS = new Set(['localhost', '127.0.0.1', '[::1]', 'load-generator']);

/** `localhost:8010` -> `localhost`; `[::1]:8010` -> `[::1]`. */
function hostName(host: string): string {
  return host.startsWith('[') ? host.slice(0, host.indexOf(']') + 1) : host.replace(/:\d*$/, '');
}

/**
 * Why a state-changing call (POST, PUT, DELETE under /scenario) is refused, or undefined:
 * a Host that is not the control API's (DNS rebinding), an Origin other than its own
 * (a web page's cross-site request), a body that is not JSON (the form and text/plain
 * posts a browser sends without asking), and, without a token configured, a peer the
 * runtime does not trust.
 */
export function refusal(
  request: { host: string; origin?: string; contentType?: string; peer?: string },
  options: { token?: string; trust: Trust },
): { status: number; error: string } | undefined {
  const name = hostName(request.host.toLowerCase());
  if (!OWN_HOSTS.has(name))
    return { status: 403, error: `Host "${request.host}" is not this control API's (localhost, 127.0.0.1 or load-generator): refused` };
  if (request.origin !== undefined) {
    let origin: string | undefined;
    try {
      origin = new URL(request.origin).host.toLowerCase();
    } catch {
      origin = undefined;
    }
    if (origin !== request.host.toLowerCase())
      return { status: 403, error: `cross-origin request from ${JSON.stringify(request.origin)} refused` };
  }
  if (!/^application\/json\s*(;|$)/i.test(request.contentType ?? ''))
    return { status: 415, error: 'state-changing calls take content-type: application/json (send {} when there is nothing to say)' };
  if (!options.token && !peerTrusted(request.peer, options.trust))
    return {
      status: 403,
      error: `a state-changing call from ${request.peer ?? 'an unknown peer'} needs a token: set LAB_CONTROL_TOKEN on the load generator and pass it to the runner`,
    };
  return undefined;
}

export const service = defineService({
  name: 'load-generator',
  config: {
    FRONTEND_URL: env.url(defaultUrl('frontend')),
    /** Baseline browsing while no scenario runs; 0 turns it off. */
    BASELINE_RPM: env.number(100),
    /** When set, the control API wants `Authorization: Bearer <token>`. */
    LAB_CONTROL_TOKEN: z.string().min(8, 'LAB_CONTROL_TOKEN must be at least 8 characters').optional(),
    /**
     * Without a token, whose state-changing calls are taken: `loopback` (this machine or
     * pod only: npm run lab, a kubectl port-forward) or `private` (also private networks:
     * Compose, whose published ports bind the host's 127.0.0.1 and whose network holds
     * only the lab). Inside Kubernetes it is always `loopback`.
     */
    LAB_CONTROL_TRUSTED: z.enum(['loopback', 'private']).default('loopback'),
    /** Where the scenario's knobs are published (key lab:scenario). */
    REDIS_URL: env.url(DEFAULT_REDIS_URL),
  },
  async create(config, logger) {
    let trust: Trust = config.LAB_CONTROL_TRUSTED;
    if (trust === 'private' && process.env.KUBERNETES_SERVICE_HOST) {
      logger.warn(
        'LAB_CONTROL_TRUSTED=private is ignored in Kubernetes: without LAB_CONTROL_TOKEN only loopback (a port-forward) may change state',
      );
      trust = 'loopback';
    }
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
          if (ctx.method !== 'GET' && ctx.method !== 'HEAD') {
            const refused = refusal(
              {
                host: ctx.get('host'),
                origin: ctx.get('origin') || undefined,
                contentType: ctx.get('content-type'),
                peer: ctx.req.socket.remoteAddress,
              },
              { token: config.LAB_CONTROL_TOKEN, trust },
            );
            if (refused) throw new HttpError(refused.status, refused.error);
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
