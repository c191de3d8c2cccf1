import { once } from 'node:events';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import { promisify } from 'node:util';
import { gunzip } from 'node:zlib';
import { decodeTraceRequest } from './otlp-proto.js';

const gunzipAsync = promisify(gunzip);

/**
 * OTLP's span kinds (opentelemetry.proto.trace.v1.Span.SpanKind), as the wire carries
 * them: each is one more than @opentelemetry/api's SpanKind (INTERNAL 0, SERVER 1,
 * CLIENT 2, ...), which the SDK numbers from 0 and its exporters shift.
 */
export const OTLP_SPAN_KIND = { unspecified: 0, internal: 1, server: 2, client: 3, producer: 4, consumer: 5 } as const;

/** One span, flattened from an OTLP/JSON export request. */
export interface ReceivedSpan {
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  name: string;
  /** OTLP's numbering: OTLP_SPAN_KIND. */
  kind: number;
  service: string;
  resource: Record<string, unknown>;
  attributes: Record<string, unknown>;
  /** OTLP status code: 0 unset, 1 ok, 2 error. */
  statusCode: number;
  startNs: bigint;
  endNs: bigint;
}

type AnyValue = {
  stringValue?: string;
  boolValue?: boolean;
  intValue?: string | number;
  doubleValue?: number;
  arrayValue?: { values?: AnyValue[] };
  kvlistValue?: { values?: KeyValue[] };
};
type KeyValue = { key: string; value?: AnyValue };

function value(v: AnyValue | undefined): unknown {
  if (!v) return undefined;
  if (v.stringValue !== undefined) return v.stringValue;
  if (v.boolValue !== undefined) return v.boolValue;
  if (v.intValue !== undefined) return Number(v.intValue);
  if (v.doubleValue !== undefined) return v.doubleValue;
  if (v.arrayValue) return (v.arrayValue.values ?? []).map(value);
  if (v.kvlistValue) return attributes(v.kvlistValue.values);
  return undefined;
}

function attributes(list: KeyValue[] | undefined): Record<string, unknown> {
  return Object.fromEntries((list ?? []).map((kv) => [kv.key, value(kv.value)]));
}

/** Flattens an OTLP/JSON ExportTraceServiceRequest. */
function flattenTraces(request: unknown): ReceivedSpan[] {
  const spans: ReceivedSpan[] = [];
  const resourceSpans = (request as { resourceSpans?: unknown[] })?.resourceSpans ?? [];
  for (const rs of resourceSpans as { resource?: { attributes?: KeyValue[] }; scopeSpans?: { spans?: unknown[] }[] }[]) {
    const resource = attributes(rs.resource?.attributes);
    for (const ss of rs.scopeSpans ?? []) {
      for (const s of (ss.spans ?? []) as Record<string, unknown>[]) {
        spans.push({
          traceId: String(s.traceId),
          spanId: String(s.spanId),
          parentSpanId: s.parentSpanId ? String(s.parentSpanId) : undefined,
          name: String(s.name),
          kind: Number(s.kind ?? 0),
          service: String(resource['service.name'] ?? 'unknown'),
          resource,
          attributes: attributes(s.attributes as KeyValue[]),
          statusCode: Number((s.status as { code?: number } | undefined)?.code ?? 0),
          startNs: BigInt(String(s.startTimeUnixNano ?? 0)),
          endNs: BigInt(String(s.endTimeUnixNano ?? 0)),
        });
      }
    }
  }
  return spans;
}

async function readBody(req: IncomingMessage, limit: number): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > limit) throw Object.assign(new Error('body too large'), { status: 413 });
    chunks.push(chunk as Buffer);
  }
  const body = Buffer.concat(chunks);
  return req.headers['content-encoding'] === 'gzip' ? gunzipAsync(body) : body;
}

/**
 * A minimal OTLP/HTTP receiver (protobuf or JSON): it keeps every span it is sent, and
 * counts metric and log exports. Point OTEL_EXPORTER_OTLP_ENDPOINT at `url`.
 */
export class OtlpReceiver {
  readonly spans: ReceivedSpan[] = [];
  readonly counts = { traces: 0, metrics: 0, logs: 0, rejected: 0 };
  private server?: Server;
  private listeners = new Set<() => void>();
  url = '';

  async start(port = 0, host = '127.0.0.1'): Promise<this> {
    this.server = createServer((req, res) => {
      const protobuf = String(req.headers['content-type'] ?? '').includes('protobuf');
      this.handle(req)
        .then((status) => {
          // An empty Export*ServiceResponse, in the encoding the exporter used.
          if (protobuf) res.writeHead(status, { 'content-type': 'application/x-protobuf' }).end();
          else res.writeHead(status, { 'content-type': 'application/json' }).end('{}');
        })
        .catch((error: { status?: number; message?: string }) => {
          this.counts.rejected++;
          res.writeHead(error.status ?? 400, { 'content-type': 'application/json' }).end(JSON.stringify({ error: error.message }));
        });
    });
    this.server.listen(port, host);
    await once(this.server, 'listening');
    const address = this.server.address();
    this.url = `http://${host}:${typeof address === 'object' && address ? address.port : port}`;
    return this;
  }

  private async handle(req: IncomingMessage): Promise<number> {
    if (req.method !== 'POST') return 405;
    const body = await readBody(req, 64 * 1024 * 1024);
    const type = String(req.headers['content-type'] ?? '');
    const json = type.includes('json');
    if (!json && !type.includes('protobuf')) {
      throw Object.assign(new Error('OTLP/HTTP wants application/x-protobuf or application/json'), { status: 415 });
    }
    if (req.url?.startsWith('/v1/traces')) {
      this.counts.traces++;
      this.spans.push(...flattenTraces(json ? JSON.parse(body.toString('utf8')) : decodeTraceRequest(body)));
    } else if (req.url?.startsWith('/v1/metrics')) this.counts.metrics++;
    else if (req.url?.startsWith('/v1/logs')) this.counts.logs++;
    else return 404;
    for (const listener of [...this.listeners]) listener();
    return 200;
  }

  /** Waits until `predicate` holds over the spans received so far. */
  async waitFor(predicate: (spans: ReceivedSpan[]) => boolean, timeoutMs = 15_000): Promise<void> {
    if (predicate(this.spans)) return;
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.listeners.delete(check);
        reject(
          new Error(
            `OTLP receiver: condition not met within ${timeoutMs} ms (${this.spans.length} spans, ${this.counts.metrics} metric and ${this.counts.logs} log exports received)`,
          ),
        );
      }, timeoutMs);
      const check = () => {
        if (!predicate(this.spans)) return;
        clearTimeout(timer);
        this.listeners.delete(check);
        resolve();
      };
      this.listeners.add(check);
    });
  }

  async stop(): Promise<void> {
    if (!this.server) return;
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server?.close(() => resolve()));
  }
}

/** Spans grouped by trace id. */
export function byTrace(spans: ReceivedSpan[]): Map<string, ReceivedSpan[]> {
  const traces = new Map<string, ReceivedSpan[]>();
  for (const span of spans) {
    const list = traces.get(span.traceId) ?? [];
    list.push(span);
    traces.set(span.traceId, list);
  }
  return traces;
}

/** The number of spans on the longest root-to-leaf path of one trace. */
export function traceDepth(spans: ReceivedSpan[]): number {
  const children = new Map<string, ReceivedSpan[]>();
  const ids = new Set(spans.map((s) => s.spanId));
  for (const span of spans) {
    const parent = span.parentSpanId && ids.has(span.parentSpanId) ? span.parentSpanId : '';
    const list = children.get(parent) ?? [];
    list.push(span);
    children.set(parent, list);
  }
  const depth = (id: string): number => Math.max(0, ...(children.get(id) ?? []).map((c) => 1 + depth(c.spanId)));
  return depth('');
}
