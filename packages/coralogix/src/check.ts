/**
 * The check before a demo: one span, one metric point and one log record sent to
 * Coralogix's OTLP ingress with the lab's settings, and what the ingress answered for
 * each, in words a presenter can act on (the key was refused, the domain is wrong, ok).
 *
 * It sends what the collector's coralogix exporter sends: OTLP over gRPC with TLS to
 * `ingress.<CORALOGIX_DOMAIN>:443`, the Send-Your-Data key as `Authorization: Bearer`, the
 * application and subsystem as the resource attributes `cx.application.name` and
 * `cx.subsystem.name` (and as the `CX-Application-Name` / `CX-Subsystem-Name` metadata
 * Coralogix's direct OTLP route documents). The data is tagged `service.name =
 * black-friday-lab-check`, so it is easy to find (or to filter out) in the account.
 */
import { randomBytes } from 'node:crypto';
import { decodeOtlpResponse, encodeOtlpRequest, OTLP_SIGNALS, type OtlpSignal } from '@bfl/traces/otlp-proto';
import * as grpc from '@grpc/grpc-js';

export interface CheckSettings {
  domain: string;
  privateKey: string;
  application: string;
  subsystem: string;
  /** host:port instead of ingress.<domain>:443 (PrivateLink, a proxy, the tests' stand-in). */
  endpoint?: string;
  timeoutMs?: number;
}

export type Verdict = 'ok' | 'key refused' | 'wrong domain' | 'unreachable' | 'tls' | 'timeout' | 'rejected' | 'error';

export interface SignalResult {
  signal: OtlpSignal;
  verdict: Verdict;
  /** The gRPC status name, when there was one. */
  status?: string;
  detail: string;
  ms: number;
}

export const CHECK_SERVICE = 'black-friday-lab-check';

const nowNs = () => String(BigInt(Date.now()) * 1_000_000n);
const str = (key: string, value: string) => ({ key, value: { stringValue: value } });

/** The three requests, each with one item. */
function checkRequests(settings: CheckSettings): Record<OtlpSignal, Record<string, unknown>> {
  const resource = {
    attributes: [
      str('service.name', CHECK_SERVICE),
      str('cx.application.name', settings.application),
      str('cx.subsystem.name', settings.subsystem),
    ],
  };
  const scope = { name: 'black-friday-lab/coralogix-check', version: '1' };
  const traceId = randomBytes(16).toString('base64');
  const spanId = randomBytes(8).toString('base64');
  const now = nowNs();
  return {
    traces: {
      resourceSpans: [
        {
          resource,
          scopeSpans: [
            {
              scope,
              spans: [
                {
                  traceId,
                  spanId,
                  name: 'coralogix check',
                  kind: 1,
                  startTimeUnixNano: now,
                  endTimeUnixNano: now,
                  attributes: [str('check', 'span')],
                  status: { code: 1 },
                },
              ],
            },
          ],
        },
      ],
    },
    metrics: {
      resourceMetrics: [
        {
          resource,
          scopeMetrics: [
            {
              scope,
              metrics: [
                {
                  name: 'black_friday_lab.check',
                  unit: '1',
                  gauge: { dataPoints: [{ timeUnixNano: now, asInt: 1, attributes: [str('check', 'metric')] }] },
                },
              ],
            },
          ],
        },
      ],
    },
    logs: {
      resourceLogs: [
        {
          resource,
          scopeLogs: [
            {
              scope,
              logRecords: [
                {
                  timeUnixNano: now,
                  observedTimeUnixNano: now,
                  severityNumber: 9,
                  severityText: 'INFO',
                  body: { stringValue: 'black-friday-lab: Coralogix check' },
                  attributes: [str('check', 'log')],
                  traceId,
                  spanId,
                },
              ],
            },
          ],
        },
      ],
    },
  };
}

/** What a failed call means for the presenter. */
export function classify(error: grpc.ServiceError, endpoint: string, domain: string): Pick<SignalResult, 'verdict' | 'detail' | 'status'> {
  const status = grpc.status[error.code] ?? String(error.code);
  const details = error.details || error.message;
  if (error.code === grpc.status.UNAUTHENTICATED || error.code === grpc.status.PERMISSION_DENIED)
    return {
      verdict: 'key refused',
      status,
      detail: `the ingress refused the key (${status}: ${details}); CORALOGIX_PRIVATE_KEY must be a Send-Your-Data key of the account behind ${domain}`,
    };
  if (/ENOTFOUND|EAI_AGAIN|Name resolution failed|DNS resolution failed/i.test(details))
    return { verdict: 'wrong domain', status, detail: `${endpoint} does not resolve: is CORALOGIX_DOMAIN (${domain}) right?` };
  if (/certificate|self.signed|SSL|TLS|handshake/i.test(details))
    return { verdict: 'tls', status, detail: `the TLS handshake with ${endpoint} failed: ${details}` };
  if (error.code === grpc.status.DEADLINE_EXCEEDED) return { verdict: 'timeout', status, detail: `${endpoint} did not answer in time` };
  if (error.code === grpc.status.UNAVAILABLE) return { verdict: 'unreachable', status, detail: `${endpoint} is unavailable: ${details}` };
  return { verdict: 'error', status, detail: `${status}: ${details}` };
}

export const ingressEndpoint = (settings: Pick<CheckSettings, 'domain' | 'endpoint'>) =>
  settings.endpoint || `ingress.${settings.domain}:443`;

/** Sends the three items, one call per signal, and reports each answer. */
export async function checkIngress(settings: CheckSettings): Promise<SignalResult[]> {
  const endpoint = ingressEndpoint(settings);
  const timeoutMs = settings.timeoutMs ?? 10_000;
  // The system's trust store (and NODE_EXTRA_CA_CERTS), as for any TLS client.
  const client = new grpc.Client(endpoint, grpc.credentials.createSsl());
  const metadata = new grpc.Metadata();
  metadata.set('authorization', `Bearer ${settings.privateKey}`);
  metadata.set('cx-application-name', settings.application);
  metadata.set('cx-subsystem-name', settings.subsystem);
  const requests = checkRequests(settings);
  const results: SignalResult[] = [];
  try {
    for (const signal of Object.keys(OTLP_SIGNALS) as OtlpSignal[]) {
      const started = Date.now();
      const body = encodeOtlpRequest(signal, requests[signal]);
      const outcome = await new Promise<Pick<SignalResult, 'verdict' | 'detail' | 'status'>>((resolve) => {
        client.makeUnaryRequest(
          OTLP_SIGNALS[signal].method,
          (b: Buffer) => b,
          (b: Buffer) => b,
          body,
          metadata,
          { deadline: Date.now() + timeoutMs },
          (error, response) => {
            if (error) return resolve(classify(error, endpoint, settings.domain));
            // An OTLP partial success means the ingress took the call but rejected data.
            const partial = response ? decodeOtlpResponse(response).partialSuccess : undefined;
            if (partial && (Number(partial.rejected ?? 0) > 0 || partial.errorMessage))
              return resolve({
                verdict: 'rejected',
                status: 'OK',
                detail: `${partial.rejected ?? 0} rejected: ${partial.errorMessage || 'no reason given'}`,
              });
            resolve({ verdict: 'ok', status: 'OK', detail: 'accepted' });
          },
        );
      });
      results.push({ signal, ...outcome, ms: Date.now() - started });
    }
  } finally {
    client.close();
  }
  return results;
}
