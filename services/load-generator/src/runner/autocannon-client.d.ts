/**
 * autocannon's HTTP engine: one keep-alive connection that sends requests and parses
 * responses. Used directly (one client per request) instead of the benchmark driver,
 * which adds histograms and timers per run that an open-model runner does not need.
 */
declare module 'autocannon/lib/httpClient' {
  import { EventEmitter } from 'node:events';

  interface ClientOptions {
    hostname: string;
    port: number;
    protocol?: 'http:' | 'https:';
    path: string;
    method: string;
    headers: Record<string, string>;
    body?: string;
    /** Seconds. */
    timeout: number;
    /** Stop after this many responses. */
    responseMax?: number;
  }

  class Client extends EventEmitter {
    constructor(options: ClientOptions);
    destroy(): void;
    on(event: 'response', listener: (statusCode: number, bytes: number, durationMs: number) => void): this;
    on(event: 'timeout', listener: () => void): this;
    on(event: 'body', listener: (chunk: Buffer) => void): this;
    on(event: 'connError', listener: (error: Error) => void): this;
  }

  export = Client;
}
