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
port.on('message', async (message: { type: string }) => {
  if (message.type !== 'summarize') return;
  try {
    await collector.settle();
    port.postMessage({ type: 'summary', summary: collector.summary() });
  } catch (error) {
    port.postMessage({ type: 'error', message: (error as Error).message });
  }
});
