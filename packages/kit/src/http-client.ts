import type { ServiceName } from '@bfl/contract';
import { Agent, type Dispatcher, request } from 'undici';
import { DEADLINE_HEADER, remainingBudget } from './deadline.js';
import { errorCause } from './errors.js';

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
 * One keep-alive connection pool per process for every downstream. undici's `request`
 * rather than `fetch`: the same HTTP client without the WHATWG streams and Response
 * objects, which cost the frontend a third of its CPU on a checkout (profiled). Both
 * publish undici's diagnostics channels, so the instrumentation sees the calls alike.
 */
const dispatcher: Dispatcher = new Agent({ keepAliveTimeout: 10_000, connect: { timeout: 2_000 } });

const isAbort = (error: unknown) => {
  const name = (error as Error | undefined)?.name;
  const code = (error as { code?: string } | undefined)?.code;
  return name === 'TimeoutError' || name === 'AbortError' || code === 'UND_ERR_ABORTED';
};

/**
 * A JSON client for one downstream service. Each call has a timeout; the W3C trace
 * context and baggage of the current span travel with it (undici is instrumented).
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
    let response: Dispatcher.ResponseData;
    const signal = AbortSignal.timeout(timeoutMs);
    try {
      response = await request(url, {
        method: method as Dispatcher.HttpMethod,
        headers,
        body: options.body === undefined ? undefined : JSON.stringify(options.body),
        signal,
        dispatcher,
      });
    } catch (error) {
      if (isAbort(error) || signal.aborted) {
        throw new DownstreamError(this.service, 'timeout', `${this.service} did not answer within ${timeoutMs} ms`);
      }
      const cause = errorCause(error);
      throw new DownstreamError(this.service, 'unavailable', `${this.service} is unreachable: ${cause}`);
    }
    let text: string;
    try {
      text = await response.body.text();
    } catch (error) {
      const kind = isAbort(error) || signal.aborted ? 'timeout' : 'unavailable';
      throw new DownstreamError(this.service, kind, `${this.service} response was cut off: ${(error as Error).message}`);
    }
    let body: unknown;
    try {
      body = text ? JSON.parse(text) : undefined;
    } catch {
      body = { error: text.slice(0, 200) };
    }
    const status = response.statusCode;
    if (status < 200 || status > 299) {
      const details = (body && typeof body === 'object' ? body : {}) as Record<string, unknown>;
      const said = typeof details.error === 'string' ? `: ${details.error}` : '';
      throw new DownstreamError(this.service, 'status', `${this.service} answered ${status}${said}`, status, details);
    }
    return body as T;
  }
}
