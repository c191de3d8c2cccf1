/**
 * `--verify-traces`: the lab's spans, received over OTLP/HTTP while the scenario runs,
 * checked against DESIGN.md's call graph and the lab's attribute contract.
 */
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Worker } from 'node:worker_threads';
import type { ExpectationResult } from '@bfl/load-generator/report';
import type { TracesSection } from '@bfl/load-generator/report-schema';
import type { MinuteRow } from '@bfl/load-generator/runner';
import { OtlpReceiver } from '@bfl/traces/otlp-receiver';
import { exampleFailedCheckout, summarizeTraces, waterfall } from '@bfl/traces/trace-analysis';

/** The ten services of DESIGN.md and the two datastores. */
const EXPECTED_SERVICES = [
  'ad',
  'cart',
  'checkout',
  'currency',
  'frontend',
  'load-generator',
  'payment',
  'postgresql',
  'product-catalog',
  'recommendation',
  'redis',
  'shipping',
];

/** DESIGN.md's call graph, caller → callee. */
const CALL_GRAPH: [string, string][] = [
  ['load-generator', 'frontend'],
  ['frontend', 'cart'],
  ['cart', 'redis'],
  ['frontend', 'currency'],
  ['frontend', 'ad'],
  ['frontend', 'product-catalog'],
  ['product-catalog', 'postgresql'],
  ['frontend', 'shipping'],
  ['product-catalog', 'recommendation'],
  ['recommendation', 'postgresql'],
  ['frontend', 'payment'],
  ['frontend', 'checkout'],
  ['checkout', 'postgresql'],
];

/**
 * The receiving end, run in a worker thread (verify-worker.ts) so that decoding a few
 * hundred thousand spans never delays the runner's schedule on the main thread.
 */
export class TraceCollector {
  readonly receiver = new OtlpReceiver();
  private readonly ignored = new Set<string>();

  /** Leaves a trace (the preflight's) out of the summary. */
  ignore(traceId: string): void {
    this.ignored.add(traceId);
  }

  async start(port: number): Promise<string> {
    await this.receiver.start(port, '0.0.0.0');
    return `http://localhost:${port}`;
  }

  /** Waits until spans stop arriving (the services export in batches every few seconds). */
  async settle(quietMs = 6_000, maxMs = 30_000): Promise<void> {
    const deadline = Date.now() + maxMs;
    let last = -1;
    let since = Date.now();
    while (Date.now() < deadline) {
      if (this.receiver.spans.length !== last) {
        last = this.receiver.spans.length;
        since = Date.now();
      } else if (Date.now() - since >= quietMs) {
        return;
      }
      await sleep(250);
    }
  }

  summary(): TracesSection {
    const spans = this.ignored.size ? this.receiver.spans.filter((s) => !this.ignored.has(s.traceId)) : this.receiver.spans;
    const example = exampleFailedCheckout(spans);
    return {
      receiver: this.receiver.url,
      ...summarizeTraces(spans),
      example: example ? { traceId: example[0]!.traceId, rows: waterfall(example) } : undefined,
    };
  }

  async stop(): Promise<void> {
    await this.receiver.stop();
  }
}

type WorkerReply =
  | { type: 'listening'; url: string }
  | { type: 'error'; message: string }
  | { type: 'summary'; summary: TracesSection }
  | { type: 'seen'; seen: boolean };

/** The main thread's handle on the receiving worker. */
export class TraceVerifier {
  private worker?: Worker;

  private next(): Promise<WorkerReply> {
    return new Promise((resolve, reject) => {
      const worker = this.worker as Worker;
      const onMessage = (reply: WorkerReply) => {
        worker.off('error', onError);
        resolve(reply);
      };
      const onError = (error: Error) => {
        worker.off('message', onMessage);
        reject(error);
      };
      worker.once('message', onMessage);
      worker.once('error', onError);
    });
  }

  /** Listens on `port` (0: any free port) and resolves with the receiver's URL. */
  async start(port: number): Promise<string> {
    this.worker = new Worker(path.join(__dirname, 'verify-worker.js'), { workerData: { port } });
    const reply = await this.next();
    if (reply.type !== 'listening') {
      await this.stop();
      throw new Error(reply.type === 'error' ? reply.message : 'the trace receiver did not start');
    }
    return reply.url;
  }

  /** Whether a span of `service` in trace `traceId` arrives within `timeoutMs` (that trace stays out of the summary). */
  async waitForTrace(traceId: string, service: string, timeoutMs: number): Promise<boolean> {
    const answer = this.next();
    this.worker?.postMessage({ type: 'wait', traceId, service, timeoutMs });
    const reply = await answer;
    return reply.type === 'seen' && reply.seen;
  }

  /** Waits for the last spans, then summarizes them. */
  async summarize(): Promise<TracesSection> {
    const answer = this.next();
    this.worker?.postMessage({ type: 'summarize' });
    const reply = await answer;
    if (reply.type !== 'summary') throw new Error(reply.type === 'error' ? reply.message : 'the trace receiver gave no summary');
    return reply.summary;
  }

  async stop(): Promise<void> {
    await this.worker?.terminate();
    this.worker = undefined;
  }
}

const result = (name: string, ok: boolean, actual: number | null, expected: string): ExpectationResult => ({
  name,
  ok,
  actual,
  minute: null,
  expected,
  values: [],
});

/** The trace expectations that join the scenario's verdict. */
export function traceExpectations(traces: TracesSection, minutes: MinuteRow[]): ExpectationResult[] {
  const seen = new Set(traces.services);
  const missingServices = EXPECTED_SERVICES.filter((s) => !seen.has(s));
  const edges = new Set(traces.edges.map(([a, b]) => `${a}>${b}`));
  const missingEdges = CALL_GRAPH.filter(([a, b]) => !edges.has(`${a}>${b}`));
  const results = [
    result(
      'traces: all ten services and both datastores seen',
      missingServices.length === 0,
      EXPECTED_SERVICES.length - missingServices.length,
      `${EXPECTED_SERVICES.length} of ${EXPECTED_SERVICES.join(', ')}${missingServices.length ? `; missing ${missingServices.join(', ')}` : ''}`,
    ),
    result(
      "traces: every edge of DESIGN.md's call graph seen",
      missingEdges.length === 0,
      CALL_GRAPH.length - missingEdges.length,
      `${CALL_GRAPH.length} edges${missingEdges.length ? `; missing ${missingEdges.map((e) => e.join('→')).join(', ')}` : ''}`,
    ),
    result('traces: a checkout trace at least 7 deep', traces.maxDepth >= 7, traces.maxDepth, 'maxDepth >= 7'),
  ];
  for (const [name, coverage] of Object.entries(traces.attributeCoverage)) {
    results.push(result(`traces: every span carries ${name}`, coverage === 1, coverage, `share of ${traces.spans} spans = 1`));
  }
  for (const cls of ['baseline', 'demo'] as const) {
    const requests = minutes.reduce((sum, m) => sum + m.traffic[cls].requests, 0);
    const errors = minutes.reduce((sum, m) => sum + m.traffic[cls].errors, 0);
    if (!requests) continue;
    const measured = errors / requests;
    const fromSpans = traces.frontendErrorRate[cls];
    const ok = fromSpans !== undefined && Math.abs(fromSpans - measured) <= 0.02;
    results.push(
      result(
        `traces: ${cls} error rate from the frontend's spans matches the runner's within 2 points`,
        ok,
        fromSpans ?? null,
        `within 0.02 of ${measured.toFixed(4)}`,
      ),
    );
  }
  return results;
}
