import { randomInt, randomUUID } from 'node:crypto';
import { context, propagation, ROOT_CONTEXT, SpanKind, SpanStatusCode, trace } from '@opentelemetry/api';
import { type OutcomeKind, sendOnce } from './engine.js';
import { knobsOf, type Scenario, TRAFFIC_CLASSES, type TrafficClass, targetRps } from './scenario.js';
import { type ClassRow, ClassStats } from './stats.js';

export interface MinuteRow {
  minute: number;
  label: string;
  phase: 'ramp' | 'recovery';
  knobs: Record<string, number>;
  traffic: Record<TrafficClass, ClassRow>;
}

export interface Progress {
  minute: number;
  minutes: number;
  /** 0..1 through the current minute. */
  fraction: number;
  sent: number;
  inFlight: number;
}

export interface RunOptions {
  scenario: Scenario;
  /** Base URL of the frontend. */
  target: string;
  /** Length of one demo minute in ms (60 000 for real time). */
  minuteMs: number;
  /** Multiplies every rate. */
  rateScale?: number;
  /** Per-request timeout. */
  timeoutMs?: number;
  /** Only these classes send traffic (the service's idle baseline uses ['baseline']). */
  classes?: readonly TrafficClass[];
  /** Ends the run early: no new requests; those in flight finish. */
  signal?: AbortSignal;
  /** Called as each minute starts, with its knobs (the incident issue publishes them). */
  onMinuteStart?: (minute: number, knobs: Record<string, number>) => void | Promise<void>;
  /** Called in order, once every request of a minute has ended. */
  onMinute?: (row: MinuteRow) => void;
  /**
   * Told when a callback fails (the run goes on: a failed knob publication is retried
   * while its minute lasts, a failed row callback is skipped). Default: one line on stderr.
   */
  onCallbackError?: (what: 'onMinuteStart' | 'onMinute', error: unknown, minute: number) => void;
}

export interface RunResult {
  scenario: string;
  minuteMs: number;
  rateScale: number;
  startedAt: string;
  finishedAt: string;
  stopped: boolean;
  minutes: MinuteRow[];
}

const tracer = trace.getTracer('load-generator');

/** Fills {{seq}}, {{uuid}} and {{pick:a,b,c}} placeholders in every string of a body template. */
export function renderBody(template: unknown, seq: number): unknown {
  if (typeof template === 'string') {
    return template.replace(/\{\{(seq|uuid|pick:([^}]*))\}\}/g, (_, what: string, options?: string) => {
      if (what === 'seq') return String(seq);
      if (what === 'uuid') return randomUUID();
      const choices = (options ?? '').split(',');
      return choices[randomInt(choices.length)] ?? '';
    });
  }
  if (Array.isArray(template)) return template.map((v) => renderBody(v, seq));
  if (template && typeof template === 'object') {
    return Object.fromEntries(Object.entries(template).map(([k, v]) => [k, renderBody(v, seq)]));
  }
  return template;
}

/**
 * Arrival times of one class in one minute: evenly spaced at the target rate, the phase
 * carried from minute to minute so the spacing holds across minute boundaries.
 */
export function arrivals(start: number, minuteMs: number, rps: number, phase: number): { times: number[]; phase: number } {
  if (rps <= 0) return { times: [], phase };
  const interval = 1000 / rps;
  const times: number[] = [];
  let t = start + phase * interval;
  while (t < start + minuteMs) {
    times.push(t);
    t += interval;
  }
  return { times, phase: (t - (start + minuteMs)) / interval };
}

const sleepUntil = (at: number, signal?: AbortSignal) =>
  new Promise<void>((resolve) => {
    if (signal?.aborted) return resolve();
    const timer = setTimeout(done, Math.max(0, at - performance.now()));
    function done() {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    }
    signal?.addEventListener('abort', done, { once: true });
  });

/**
 * Runs a scenario with open-model arrivals: every request is sent at its scheduled time
 * whether or not earlier ones have answered, and its latency is measured from that time.
 */
export class ScenarioRun {
  private readonly stats: Record<TrafficClass, ClassStats>[] = [];
  private readonly rows: MinuteRow[] = [];
  private readonly pending: Promise<void>[] = [];
  private current = 0;
  private ended = false;
  private minuteStartedAt = 0;
  private sent = 0;
  private inFlight = 0;
  private seq = 0;
  private emitted = 0;

  constructor(readonly options: RunOptions) {}

  get rowsSoFar(): readonly MinuteRow[] {
    return this.rows;
  }

  progress(): Progress {
    const fraction = Math.min(1, Math.max(0, (performance.now() - this.minuteStartedAt) / this.options.minuteMs));
    return { minute: this.current, minutes: this.options.scenario.minutes.length, fraction, sent: this.sent, inFlight: this.inFlight };
  }

  async run(): Promise<RunResult> {
    const { scenario, minuteMs, signal } = this.options;
    const rateScale = this.options.rateScale ?? 1;
    const classes = this.options.classes ?? TRAFFIC_CLASSES;
    const startedAt = new Date();
    const t0 = performance.now() + 50;
    const phase: Record<TrafficClass, number> = { baseline: 0.25, demo: 0.5 };

    for (let minute = 0; minute < scenario.minutes.length && !signal?.aborted; minute++) {
      const spec = scenario.minutes[minute]!;
      const start = t0 + minute * minuteMs;
      const stats = Object.fromEntries(
        TRAFFIC_CLASSES.map((cls) => [cls, new ClassStats(classes.includes(cls) ? targetRps(spec, cls, rateScale) : 0)]),
      ) as Record<TrafficClass, ClassStats>;
      this.stats[minute] = stats;
      const queue: { at: number; cls: TrafficClass }[] = [];
      for (const cls of classes) {
        const next = arrivals(start, minuteMs, stats[cls].targetRps, phase[cls]);
        phase[cls] = next.phase;
        stats[cls].scheduled = next.times.length;
        for (const at of next.times) queue.push({ at, cls });
      }
      queue.sort((a, b) => a.at - b.at);

      await sleepUntil(start, signal);
      this.current = minute;
      this.minuteStartedAt = start;
      await this.minuteStarts(minute, knobsOf(scenario, minute));
      for (const arrival of queue) {
        if (arrival.at > performance.now()) await sleepUntil(arrival.at, signal);
        if (signal?.aborted) {
          // Requests never sent are not part of the minute.
          for (const cls of classes) stats[cls].scheduled = stats[cls].sent;
          break;
        }
        this.dispatch(minute, arrival.cls, arrival.at);
      }
      if (!signal?.aborted) await sleepUntil(start + minuteMs, signal);
      this.flush();
    }
    if (signal?.aborted) {
      for (const stats of this.stats) for (const cls of TRAFFIC_CLASSES) if (stats) stats[cls].scheduled = stats[cls].sent;
    }
    await Promise.all(this.pending);
    this.ended = true;
    this.flush(true);
    return {
      scenario: scenario.name,
      minuteMs,
      rateScale,
      startedAt: startedAt.toISOString(),
      finishedAt: new Date().toISOString(),
      stopped: Boolean(signal?.aborted),
      minutes: this.rows,
    };
  }

  private dispatch(minute: number, cls: TrafficClass, scheduledAt: number): void {
    const { scenario, target } = this.options;
    const request = scenario.traffic[cls].request;
    const seq = ++this.seq;
    const url = new URL(request.path, target).toString();
    const span = tracer.startSpan(
      `${request.method} ${request.path}`,
      {
        kind: SpanKind.CLIENT,
        root: true,
        attributes: {
          'traffic.type': cls,
          'demo.minute': minute,
          'http.request.method': request.method,
          'url.full': url,
          'lab.scenario': scenario.name,
        },
      },
      ROOT_CONTEXT,
    );
    let ctx = trace.setSpan(ROOT_CONTEXT, span);
    ctx = propagation.setBaggage(
      ctx,
      propagation.createBaggage({ 'traffic.type': { value: cls }, 'demo.minute': { value: String(minute) } }),
    );
    const headers: Record<string, string> = { 'content-type': 'application/json', accept: 'application/json' };
    propagation.inject(ctx, headers);
    const body = request.body === undefined ? undefined : JSON.stringify(renderBody(request.body, seq));

    const stats = this.stats[minute]![cls];
    stats.recordSend(scheduledAt, performance.now());
    this.sent++;
    this.inFlight++;
    const done = context
      .with(ctx, () => sendOnce({ url, method: request.method, headers, body, timeoutMs: this.options.timeoutMs ?? 10_000 }))
      .then((outcome) => {
        this.inFlight--;
        stats.recordOutcome(outcome.kind, outcome.endedAt - scheduledAt, outcome.reason, outcome.service);
        endSpan(span, outcome.kind, outcome.status, outcome.error);
        this.flush();
      });
    this.pending.push(done);
  }

  /** Emits the rows of finished minutes, in order. */
  private flush(final = false): void {
    while (this.emitted < this.stats.length) {
      const minute = this.emitted;
      const stats = this.stats[minute]!;
      const timeUp = final || minute < this.current || (minute === this.current && this.minuteOver());
      if (!timeUp || !TRAFFIC_CLASSES.every((cls) => stats[cls].done)) return;
      const spec = this.options.scenario.minutes[minute]!;
      const row: MinuteRow = {
        minute,
        label: spec.label,
        phase: spec.phase,
        knobs: knobsOf(this.options.scenario, minute),
        traffic: Object.fromEntries(TRAFFIC_CLASSES.map((cls) => [cls, stats[cls].row()])) as Record<TrafficClass, ClassRow>,
      };
      for (const cls of TRAFFIC_CLASSES) stats[cls].destroy();
      this.rows.push(row);
      this.emitted++;
      try {
        this.options.onMinute?.(row);
      } catch (error) {
        this.callbackFailed('onMinute', error, minute);
      }
    }
  }

  /**
   * The minute-start callback (publishing the knobs). A failure (Redis hiccuping) does not
   * hold the minute's traffic or end the run: it is reported, and retried every 250 ms in
   * the background while the minute lasts.
   */
  private async minuteStarts(minute: number, knobs: Record<string, number>): Promise<void> {
    const hook = this.options.onMinuteStart;
    if (!hook) return;
    try {
      await hook(minute, knobs);
      return;
    } catch (error) {
      this.callbackFailed('onMinuteStart', error, minute);
    }
    void (async () => {
      while (this.current === minute && !this.ended && !this.options.signal?.aborted) {
        await new Promise((resolve) => setTimeout(resolve, 250));
        if (this.current !== minute) return;
        try {
          await hook(minute, knobs);
          return;
        } catch {
          // Reported once above; keep trying while the minute lasts.
        }
      }
    })();
  }

  private callbackFailed(what: 'onMinuteStart' | 'onMinute', error: unknown, minute: number): void {
    if (this.options.onCallbackError) this.options.onCallbackError(what, error, minute);
    else
      process.stderr.write(
        `scenario: ${what} failed in minute ${minute}: ${(error as Error)?.message ?? String(error)}; the run goes on\n`,
      );
  }

  private minuteOver(): boolean {
    return performance.now() >= this.minuteStartedAt + this.options.minuteMs || Boolean(this.options.signal?.aborted);
  }
}

function endSpan(span: ReturnType<typeof tracer.startSpan>, kind: OutcomeKind, status?: number, error?: string): void {
  if (status !== undefined) span.setAttribute('http.response.status_code', status);
  if (kind !== 'ok') {
    span.setAttribute('error.type', status !== undefined ? String(status) : kind);
    span.setStatus({ code: SpanStatusCode.ERROR, message: error ?? `HTTP ${status}` });
  }
  span.end();
}
