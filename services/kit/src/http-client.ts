import { DEADLINE_HEADER, remainingBudget } from './deadline.js';
import type { ServiceName } from './services.js';

export type DownstreamFailure = 'timeout' | 'unavailable' | 'status';

/** A call to another service failed: it timed out, could not be reached, or answered an error. */
export class DownstreamError extends Error {
  constructor(
    readonly service: string,
    readonly kind: DownstreamFailure,
    message: string,
    readonly status?: number,
    readonly body?: Record<string, unknown>,
  ) {
    super(message);
    this.name = 'DownstreamError';
  }

  /** The `reason` the downstream itself gave, if it gave one. */
  get reason(): string | undefined {
    const reason = this.body?.reason;
    return typeof reason === 'string' ? reason : undefined;
  }
}

export interface RequestOptions {
  query?: Record<string, string | number | undefined>;
  body?: unknown;
  headers?: Record<string, string>;
  /** Overrides the client's default timeout for this call. */
  timeoutMs?: number;
}

/**
 * A JSON client for one downstream service. Each call has a timeout; the W3C trace
 * context and baggage of the current span travel with it (fetch is instrumented).
 */
export class ServiceClient {
  constructor(
    readonly service: ServiceName | string,
    readonly baseUrl: string,
    readonly timeoutMs = 2_000,
  ) {}

  get<T>(path: string, options?: RequestOptions) {
    return this.request<T>('GET', path, options);
  }

  post<T>(path: string, body: unknown, options?: RequestOptions) {
    return this.request<T>('POST', path, { ...options, body });
  }

  delete<T>(path: string, options?: RequestOptions) {
    return this.request<T>('DELETE', path, options);
  }

  async request<T>(method: string, path: string, options: RequestOptions = {}): Promise<T> {
    const url = new URL(path, this.baseUrl);
    for (const [key, value] of Object.entries(options.query ?? {})) {
      if (value !== undefined) url.searchParams.set(key, String(value));
    }
    // The call gets its own timeout, or what is left of the caller's deadline if that is sooner.
    const timeoutMs = Math.min(options.timeoutMs ?? this.timeoutMs, Math.floor(remainingBudget()));
    if (timeoutMs <= 0) {
      throw new DownstreamError(this.service, 'timeout', `${this.service} not called: the caller's deadline has passed`);
    }
    const headers: Record<string, string> = {
      accept: 'application/json',
      [DEADLINE_HEADER]: String(Date.now() + timeoutMs),
      ...options.headers,
    };
    if (options.body !== undefined) headers['content-type'] = 'application/json';
    let response: Response;
    try {
      response = await fetch(url, {
        method,
        headers,
        body: options.body === undefined ? undefined : JSON.stringify(options.body),
        signal: AbortSignal.timeout(timeoutMs),
      });
    } catch (error) {
      const name = (error as Error).name;
      if (name === 'TimeoutError' || name === 'AbortError') {
        throw new DownstreamError(this.service, 'timeout', `${this.service} did not answer within ${timeoutMs} ms`);
      }
      const cause = ((error as Error).cause as Error | undefined)?.message ?? (error as Error).message;
      throw new DownstreamError(this.service, 'unavailable', `${this.service} is unreachable: ${cause}`);
    }
    let text: string;
    try {
      text = await response.text();
    } catch (error) {
      const name = (error as Error).name;
      const kind = name === 'TimeoutError' || name === 'AbortError' ? 'timeout' : 'unavailable';
      throw new DownstreamError(this.service, kind, `${this.service} response was cut off: ${(error as Error).message}`);
    }
    let body: unknown;
    try {
      body = text ? JSON.parse(text) : undefined;
    } catch {
      body = { error: text.slice(0, 200) };
    }
    if (!response.ok) {
      const details = (body && typeof body === 'object' ? body : {}) as Record<string, unknown>;
      const said = typeof details.error === 'string' ? `: ${details.error}` : '';
      throw new DownstreamError(this.service, 'status', `${this.service} answered ${response.status}${said}`, response.status, details);
    }
    return body as T;
  }
}
