import Client from 'autocannon/lib/httpClient';

export type OutcomeKind = 'ok' | 'http4xx' | 'http5xx' | 'timeout' | 'connection';

export interface Outcome {
  kind: OutcomeKind;
  status?: number;
  /** The `reason` of an error answer's JSON body (recommendations-timeout, pool-exhausted, ...). */
  reason?: string;
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
    // The body is kept (up to 4 kB) only to read an error's reason.
    const chunks: Buffer[] = [];
    let size = 0;
    client.on('body', (chunk) => {
      size += chunk.length;
      if (size <= 4096) chunks.push(chunk);
    });
    client.on('response', (statusCode) => {
      if (statusCode < 400) return finish({ kind: 'ok', status: statusCode });
      finish({ kind: statusCode < 500 ? 'http4xx' : 'http5xx', status: statusCode, reason: reasonOf(chunks) });
    });
    client.on('timeout', () => finish({ kind: 'timeout', error: `no response within ${request.timeoutMs} ms` }));
    client.on('connError', (error) => finish({ kind: 'connection', error: error.message }));
  });
}

function reasonOf(chunks: Buffer[]): string | undefined {
  try {
    const body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as { reason?: unknown };
    return typeof body.reason === 'string' ? body.reason.slice(0, 64) : undefined;
  } catch {
    return undefined;
  }
}
