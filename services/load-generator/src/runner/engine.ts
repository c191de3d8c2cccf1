import Client from 'autocannon/lib/httpClient';

export type OutcomeKind = 'ok' | 'http4xx' | 'http5xx' | 'timeout' | 'connection';

export interface Outcome {
  kind: OutcomeKind;
  status?: number;
  /** The `reason` of an error answer's JSON body (recommendations-timeout, pool-exhausted, ...). */
  reason?: string;
  /** The `service` an error answer's JSON body names as the one that failed (cart, checkout, ...). */
  service?: string;
  /** When the request ended (performance.now() clock). */
  endedAt: number;
  error?: string;
}

export interface HttpRequest {
  url: string;
  method: string;
  headers: Record<string, string>;
  body?: string;
  timeoutMs: number;
}

/**
 * Sends exactly one request on its own connection with autocannon's HTTP client and
 * reports how it ended. Calls are independent of each other, so arrivals never wait
 * for responses (open model).
 */
export function sendOnce(request: HttpRequest): Promise<Outcome> {
  const url = new URL(request.url);
  return new Promise((resolve) => {
    let settled = false;
    const client = new Client({
      hostname: url.hostname,
      port: Number(url.port || (url.protocol === 'https:' ? 443 : 80)),
      protocol: url.protocol as 'http:' | 'https:',
      path: `${url.pathname}${url.search}`,
      method: request.method,
      headers: request.headers,
      body: request.body,
      timeout: request.timeoutMs / 1000,
      responseMax: 1,
    });
    const finish = (outcome: Omit<Outcome, 'endedAt'>) => {
      if (settled) return;
      settled = true;
      const endedAt = performance.now();
      // The client would otherwise reconnect and send again.
      client.destroy();
      resolve({ ...outcome, endedAt });
    };
    // The body is kept (up to 4 kB) only to read an error's reason and service.
    const chunks: Buffer[] = [];
    let size = 0;
    client.on('body', (chunk) => {
      size += chunk.length;
      if (size <= 4096) chunks.push(chunk);
    });
    client.on('response', (statusCode) => {
      if (statusCode < 400) return finish({ kind: 'ok', status: statusCode });
      finish({ kind: statusCode < 500 ? 'http4xx' : 'http5xx', status: statusCode, ...errorDetails(chunks) });
    });
    client.on('timeout', () => finish({ kind: 'timeout', error: `no response within ${request.timeoutMs} ms` }));
    client.on('connError', (error) => finish({ kind: 'connection', error: error.message }));
  });
}

/** The `reason` and `service` of an error answer's JSON body, where it has them. */
function errorDetails(chunks: Buffer[]): Pick<Outcome, 'reason' | 'service'> {
  try {
    const body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as { reason?: unknown; service?: unknown };
    return {
      ...(typeof body.reason === 'string' ? { reason: body.reason.slice(0, 64) } : {}),
      ...(typeof body.service === 'string' ? { service: body.service.slice(0, 64) } : {}),
    };
  } catch {
    return {};
  }
}
