/**
 * A LOCAL STAND-IN for Coralogix's OTLP ingress (`ingress.<domain>:443`), for the contract
 * test of the collector's Coralogix exporter and for `npm run coralogix:check`. It is not
 * Coralogix: it keeps the ingress's documented contract as far as a sender can see it:
 *
 *   - OTLP over gRPC with TLS, the three OTLP export services
 *     (opentelemetry.proto.collector.{trace,metrics,logs}.v1.*Service/Export);
 *   - the Send-Your-Data key as `authorization: Bearer <key>` metadata: a request without
 *     it or with another key is refused with UNAUTHENTICATED;
 *   - the application and subsystem as the resource attributes `cx.application.name` and
 *     `cx.subsystem.name` (what the collector's coralogix exporter writes; the SDKs' direct
 *     route sends them as `cx-application-name` / `cx-subsystem-name` metadata instead).
 *
 * It records every request (metadata and decoded body) and can be switched into the
 * failures an ingress has: down (the port closed), UNAVAILABLE, or accepting a request and
 * never answering it.
 *
 * Its certificate comes from a throwaway CA made with openssl for the test (`throwawayCa`).
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { decodeOtlpRequest, encodeOtlpResponse, OTLP_SIGNALS, type OtlpSignal } from '@bfl/traces/otlp-proto';
import * as grpc from '@grpc/grpc-js';

export interface ThrowawayCa {
  dir: string;
  /** PEM files: the CA's certificate (what a client trusts) and the server's key pair. */
  caFile: string;
  certFile: string;
  keyFile: string;
}

/** A CA and a `localhost` / 127.0.0.1 server certificate signed by it, valid for a day. */
export function throwawayCa(): ThrowawayCa {
  const dir = mkdtempSync(path.join(tmpdir(), 'bfl-cx-ca-'));
  const file = (name: string) => path.join(dir, name);
  const openssl = (...args: string[]) => execFileSync('openssl', args, { stdio: ['ignore', 'ignore', 'pipe'] });
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes'];
  openssl('req', '-x509', ...ec, '-keyout', file('ca.key'), '-out', file('ca.pem'), '-days', '1', '-subj', '/CN=black-friday-lab test CA');
  openssl('req', ...ec, '-keyout', file('server.key'), '-out', file('server.csr'), '-subj', '/CN=localhost');
  writeFileSync(
    file('server.ext'),
    'subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature\nextendedKeyUsage=serverAuth\n',
  );
  openssl(
    'x509',
    '-req',
    '-in',
    file('server.csr'),
    '-CA',
    file('ca.pem'),
    '-CAkey',
    file('ca.key'),
    '-CAcreateserial',
    '-days',
    '1',
    '-extfile',
    file('server.ext'),
    '-out',
    file('server.pem'),
  );
  return { dir, caFile: file('ca.pem'), certFile: file('server.pem'), keyFile: file('server.key') };
}

/** How the stand-in answers: normally, or as a failing ingress does. */
export type IngressMode = 'ok' | 'unavailable' | 'hang';

export interface IngressRequest {
  signal: OtlpSignal;
  /** gRPC metadata, lower-case keys (as gRPC carries them). */
  metadata: Record<string, string>;
  body: Record<string, unknown>;
  /** What it answered: `ok`, a gRPC status name, or `hang` (never). */
  answer: string;
  receivedAt: number;
  /** The request message's size, uncompressed (the protobuf the exporter encoded). */
  bytes: number;
}

type Unary = grpc.handleUnaryCall<Buffer, Buffer>;

export class StandInIngress {
  mode: IngressMode = 'ok';
  readonly requests: IngressRequest[] = [];
  private server?: grpc.Server;
  private port = 0;
  private readonly hanging = new Set<grpc.sendUnaryData<Buffer>>();

  /** `key`: the only Send-Your-Data key it accepts. */
  constructor(
    private readonly ca: ThrowawayCa,
    private readonly key: string,
  ) {}

  get endpoint(): string {
    return `localhost:${this.port}`;
  }

  /** Listens on 127.0.0.1 (`port` 0: any free port; again on the same port after `down`). */
  async start(port = this.port): Promise<void> {
    const server = new grpc.Server();
    for (const signal of Object.keys(OTLP_SIGNALS) as OtlpSignal[]) {
      const handler: Unary = (call, callback) => this.handle(signal, call, callback);
      server.register(
        OTLP_SIGNALS[signal].method,
        handler,
        (b: Buffer) => b,
        (b: Buffer) => b,
        'unary',
      );
    }
    const credentials = grpc.ServerCredentials.createSsl(
      null,
      [{ private_key: readFileSync(this.ca.keyFile), cert_chain: readFileSync(this.ca.certFile) }],
      false,
    );
    this.port = await new Promise<number>((resolve, reject) =>
      server.bindAsync(`127.0.0.1:${port}`, credentials, (error, bound) => (error ? reject(error) : resolve(bound))),
    );
    this.server = server;
  }

  /** Closes the port (and drops the requests left hanging): the ingress is down. */
  async down(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    this.hanging.clear();
    server?.forceShutdown();
  }

  /** Back up on the same port, answering normally. */
  async up(): Promise<void> {
    this.mode = 'ok';
    if (!this.server) await this.start(this.port);
  }

  async stop(): Promise<void> {
    await this.down();
  }

  private handle(signal: OtlpSignal, call: grpc.ServerUnaryCall<Buffer, Buffer>, callback: grpc.sendUnaryData<Buffer>): void {
    const metadata = Object.fromEntries(Object.entries(call.metadata.getMap()).map(([k, v]) => [k.toLowerCase(), String(v)]));
    const record = (answer: string, body: Record<string, unknown> = {}) =>
      this.requests.push({ signal, metadata, body, answer, receivedAt: Date.now(), bytes: call.request.length });
    if (metadata.authorization !== `Bearer ${this.key}`) {
      record('UNAUTHENTICATED');
      callback({ code: grpc.status.UNAUTHENTICATED, details: 'invalid or missing private key' });
      return;
    }
    let body: Record<string, unknown>;
    try {
      body = decodeOtlpRequest(signal, call.request);
    } catch (error) {
      record('INVALID_ARGUMENT');
      callback({ code: grpc.status.INVALID_ARGUMENT, details: `cannot decode the ${signal} request: ${(error as Error).message}` });
      return;
    }
    if (this.mode === 'unavailable') {
      record('UNAVAILABLE', body);
      callback({ code: grpc.status.UNAVAILABLE, details: 'stand-in ingress: unavailable' });
      return;
    }
    if (this.mode === 'hang') {
      record('hang', body);
      this.hanging.add(callback);
      return;
    }
    record('ok', body);
    callback(null, encodeOtlpResponse());
  }

  /** The requests it accepted (answered ok) of one signal. */
  accepted(signal: OtlpSignal): IngressRequest[] {
    return this.requests.filter((r) => r.signal === signal && r.answer === 'ok');
  }
}

// ---- reading what arrived ------------------------------------------------------------------

type AnyValue = { stringValue?: string; intValue?: string; doubleValue?: number; boolValue?: boolean };
type KeyValue = { key: string; value?: AnyValue };
export const attrs = (list: unknown): Record<string, string> =>
  Object.fromEntries(
    ((list ?? []) as KeyValue[]).map((kv) => [
      kv.key,
      String(kv.value?.stringValue ?? kv.value?.intValue ?? kv.value?.doubleValue ?? kv.value?.boolValue ?? ''),
    ]),
  );

export interface ReceivedSpan {
  resource: Record<string, string>;
  name: string;
  kind: number;
  traceId: string;
  attributes: Record<string, string>;
}
export function spansOf(requests: IngressRequest[]): ReceivedSpan[] {
  type Rs = { resource?: { attributes?: unknown }; scopeSpans?: { spans?: Record<string, unknown>[] }[] };
  return requests.flatMap((r) =>
    ((r.body.resourceSpans ?? []) as Rs[]).flatMap((rs) =>
      (rs.scopeSpans ?? []).flatMap((ss) =>
        (ss.spans ?? []).map((s) => ({
          resource: attrs(rs.resource?.attributes),
          name: String(s.name),
          kind: Number(s.kind),
          traceId: Buffer.from(String(s.traceId), 'base64').toString('hex'),
          attributes: attrs(s.attributes),
        })),
      ),
    ),
  );
}

export interface ReceivedPoint {
  resource: Record<string, string>;
  /** The OTLP metric name and unit, and its kind (sum, gauge, histogram, ...). */
  name: string;
  unit: string;
  kind: string;
  monotonic: boolean;
  attributes: Record<string, string>;
}
export function pointsOf(requests: IngressRequest[]): ReceivedPoint[] {
  type Metric = { name: string; unit?: string } & Record<string, { dataPoints?: { attributes?: unknown }[]; isMonotonic?: boolean }>;
  type Rm = { resource?: { attributes?: unknown }; scopeMetrics?: { metrics?: Metric[] }[] };
  const kinds = ['gauge', 'sum', 'histogram', 'exponentialHistogram', 'summary'];
  return requests.flatMap((r) =>
    ((r.body.resourceMetrics ?? []) as Rm[]).flatMap((rm) =>
      (rm.scopeMetrics ?? []).flatMap((sm) =>
        (sm.metrics ?? []).flatMap((m) => {
          const kind = kinds.find((k) => m[k]) ?? 'unknown';
          return (m[kind]?.dataPoints ?? []).map((p) => ({
            resource: attrs(rm.resource?.attributes),
            name: m.name,
            unit: m.unit ?? '',
            kind,
            monotonic: Boolean(m[kind]?.isMonotonic),
            attributes: attrs(p.attributes),
          }));
        }),
      ),
    ),
  );
}

export interface ReceivedLog {
  resource: Record<string, string>;
  body: string;
  attributes: Record<string, string>;
}
export function logsOf(requests: IngressRequest[]): ReceivedLog[] {
  type Rl = { resource?: { attributes?: unknown }; scopeLogs?: { logRecords?: { body?: AnyValue; attributes?: unknown }[] }[] };
  return requests.flatMap((r) =>
    ((r.body.resourceLogs ?? []) as Rl[]).flatMap((rl) =>
      (rl.scopeLogs ?? []).flatMap((sl) =>
        (sl.logRecords ?? []).map((l) => ({
          resource: attrs(rl.resource?.attributes),
          body: String(l.body?.stringValue ?? ''),
          attributes: attrs(l.attributes),
        })),
      ),
    ),
  );
}

/**
 * The name a metric has in Coralogix's PromQL, from its OTLP name, unit and kind: dots and
 * other characters outside [a-zA-Z0-9_:] become `_`, the unit is appended (`duration` in
 * `ms` -> `duration_ms`), a monotonic sum gets `_total`, and a histogram is queried as
 * `<name>_bucket`, `_count` and `_sum` (Coralogix's metric naming for OpenTelemetry data,
 * which its APM queries such as `duration_ms_bucket` and `calls_total` follow).
 */
export function coralogixNames(point: Pick<ReceivedPoint, 'name' | 'unit' | 'kind' | 'monotonic'>): string[] {
  const clean = (s: string) => s.replace(/[^a-zA-Z0-9_:]/g, '_');
  // UCUM annotations in braces ({request}) are not units.
  const unit = point.unit.replace(/\{[^}]*\}/g, '').trim();
  let base = clean(point.name);
  if (unit && unit !== '1' && !base.endsWith(`_${clean(unit)}`)) base += `_${clean(unit)}`;
  if (point.kind === 'histogram') return [`${base}_bucket`, `${base}_count`, `${base}_sum`];
  if (point.kind === 'sum' && point.monotonic) return [`${base}_total`];
  return [base];
}

/** A label as PromQL names it: the attribute key with `.` (and anything else) as `_`. */
export const coralogixLabel = (key: string) => key.replace(/[^a-zA-Z0-9_]/g, '_');
