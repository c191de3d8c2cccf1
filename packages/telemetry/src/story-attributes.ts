import { SERVICE_PORTS, type ServiceName, storyMinute, storyTrafficType, urlVariable } from '@bfl/contract';
import { type Attributes, type Context, type Counter, type Link, propagation, SpanKind } from '@opentelemetry/api';
import { AlwaysOnSampler, ParentBasedSampler, type Sampler, type SamplingResult } from '@opentelemetry/sdk-trace';
import { labMeter } from './metrics.js';

/** Baggage entries the load generator sends, recorded on every span of every service. */
const BAGGAGE_ATTRIBUTES = ['traffic.type', 'demo.minute'] as const;

/**
 * Maps `host:port` to the lab service listening there: from each `<SERVICE>_URL`
 * variable, DESIGN.md's localhost ports, and Compose/Kubernetes host names.
 */
function peerTable(env: NodeJS.ProcessEnv = process.env): Map<string, string> {
  const peers = new Map<string, string>();
  for (const [name, port] of Object.entries(SERVICE_PORTS) as [ServiceName, number][]) {
    for (const host of ['localhost', '127.0.0.1', name]) peers.set(`${host}:${port}`, name);
    const url = env[urlVariable(name)];
    if (url) {
      try {
        const parsed = new URL(url);
        peers.set(`${parsed.hostname}:${parsed.port || (parsed.protocol === 'https:' ? 443 : 80)}`, name);
      } catch {
        // A bad URL is reported by the service's own configuration check.
      }
    }
  }
  return peers;
}

/** `peer.service` of a client span, from the attributes it starts with. */
function peerService(attributes: Attributes, peers: Map<string, string>): string | undefined {
  const system = attributes['db.system.name'] ?? attributes['db.system'];
  if (system === 'postgresql') return 'postgresql';
  if (system === 'redis') return 'redis';
  const host = attributes['server.address'] ?? attributes['net.peer.name'];
  const port = attributes['server.port'] ?? attributes['net.peer.port'];
  if (host !== undefined && port !== undefined) return peers.get(`${host}:${port}`);
  const url = attributes['url.full'] ?? attributes['http.url'];
  if (typeof url === 'string') {
    try {
      const parsed = new URL(url);
      return peers.get(`${parsed.hostname}:${parsed.port || (parsed.protocol === 'https:' ? 443 : 80)}`);
    } catch {
      return undefined;
    }
  }
  return undefined;
}

/**
 * The only values the story's baggage may carry: a request from outside cannot invent a
 * traffic class (and pollute the story's numbers) or a minute (and the metrics'
 * cardinality). Anything else is dropped and counted in `lab.baggage.rejected` by key.
 */
let rejections: Counter | undefined;
function rejected(key: (typeof BAGGAGE_ATTRIBUTES)[number]): void {
  rejections ??= labMeter().createCounter('lab.baggage.rejected', {
    description: 'Baggage entries dropped because their value is not one the story sends',
    unit: '{entry}',
  });
  rejections.add(1, { 'baggage.key': key });
}

/**
 * Samples every trace (parent-based, always on) and adds the lab's attributes as each
 * span starts: `traffic.type` and `demo.minute` from the W3C baggage of its context (the
 * allowed values only), and
 * `peer.service` on client spans. A sampler is the SDK's hook for attributes at span
 * start that leaves the OTEL_* exporter configuration untouched.
 */
export class StoryAttributesSampler implements Sampler {
  private readonly inner = new ParentBasedSampler({ root: new AlwaysOnSampler() });

  constructor(private readonly peers: Map<string, string> = peerTable()) {}

  shouldSample(context: Context, traceId: string, name: string, kind: SpanKind, attributes: Attributes, links: Link[]): SamplingResult {
    const result = this.inner.shouldSample(context, traceId, name, kind, attributes, links);
    const extra: Attributes = {};
    const baggage = propagation.getBaggage(context);
    const traffic = baggage?.getEntry('traffic.type')?.value;
    if (traffic !== undefined) {
      const allowed = storyTrafficType(traffic);
      if (allowed) extra['traffic.type'] = allowed;
      else rejected('traffic.type');
    }
    const minute = baggage?.getEntry('demo.minute')?.value;
    if (minute !== undefined) {
      const allowed = storyMinute(minute);
      if (allowed !== undefined) extra['demo.minute'] = allowed;
      else rejected('demo.minute');
    }
    if (kind === SpanKind.CLIENT && attributes['peer.service'] === undefined) {
      const peer = peerService(attributes, this.peers);
      if (peer) extra['peer.service'] = peer;
    }
    return { ...result, attributes: { ...result.attributes, ...extra } };
  }

  toString(): string {
    return 'StoryAttributesSampler{ParentBased(AlwaysOn)}';
  }
}
