/** The `--verify-traces` receiver, in its own thread (see TraceCollector). */
import { parentPort, workerData } from 'node:worker_threads';
import { TraceCollector } from './verify.js';

const port = parentPort;
if (!port) throw new Error('verify-worker runs as a worker thread');
const collector = new TraceCollector();
collector.start((workerData as { port: number }).port).then(
  () => port.postMessage({ type: 'listening', url: collector.receiver.url }),
  (error: Error) => port.postMessage({ type: 'error', message: error.message }),
);
port.on('message', async (message: { type: string; traceId?: string; service?: string; timeoutMs?: number }) => {
  if (message.type === 'wait') {
    // The preflight: has a span of `service` in trace `traceId` arrived? Its trace is then
    // left out of the summary (it is no part of the scenario).
    const { traceId = '', service = '', timeoutMs = 10_000 } = message;
    collector.ignore(traceId);
    const seen = await collector.receiver
      .waitFor((spans) => spans.some((s) => s.traceId === traceId && s.service === service), timeoutMs)
      .then(
        () => true,
        () => false,
      );
    port.postMessage({ type: 'seen', seen });
    return;
  }
  if (message.type !== 'summarize') return;
  try {
    await collector.settle();
    port.postMessage({ type: 'summary', summary: collector.summary() });
  } catch (error) {
    port.postMessage({ type: 'error', message: (error as Error).message });
  }
});
