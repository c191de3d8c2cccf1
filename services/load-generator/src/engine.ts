import Client from 'autocannon/lib/httpClient';

export type OutcomeKind = 'ok' | 'http4xx' | 'http5xx' | 'timeout' | 'connection';

export interface Outcome {
  kind: OutcomeKind;
  status?: number;
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
    client.on('response', (statusCode) => {
      finish({ kind: statusCode < 400 ? 'ok' : statusCode < 500 ? 'http4xx' : 'http5xx', status: statusCode });
    });
    client.on('timeout', () => finish({ kind: 'timeout', error: `no response within ${request.timeoutMs} ms` }));
    client.on('connError', (error) => finish({ kind: 'connection', error: error.message }));
  });
}
