import { once } from 'node:events';
import { type Server, STATUS_CODES } from 'node:http';
import type { Duplex } from 'node:stream';
import { shutdownTelemetry } from '@bfl/telemetry';
import type Koa from 'koa';
import { ConfigError } from './config.js';
import type { Logger } from './log.js';

export interface ServeOptions {
  name: string;
  port: number;
  host?: string;
  app: Koa;
  logger: Logger;
  /** Closes pools and clients after the last request has finished. */
  onShutdown?: () => Promise<void>;
  /** How long to wait for in-flight requests before cutting connections. */
  graceMs?: number;
}

export interface Running {
  server: Server;
  port: number;
  /** Stops accepting, drains in-flight requests, closes resources. Idempotent. */
  close: () => Promise<void>;
}

/** Node's own status for the parser errors that are not a plain 400. */
const PARSER_ERRORS: Record<string, [number, string]> = {
  HPE_HEADER_OVERFLOW: [431, 'request headers too large'],
  HPE_CHUNK_EXTENSIONS_OVERFLOW: [413, 'chunk extensions too large'],
  HPE_REQUEST_TIMEOUT: [408, 'request not received in time'],
};

/**
 * A request Node's HTTP parser refuses before Koa sees it (a raw non-ASCII byte or a
 * space in the path, a broken header line) gets the same JSON error as any other bad
 * request, instead of Node's bodiless 400; the connection is closed after it.
 */
function answerUnparsableRequest(service: string) {
  return (error: Error & { code?: string }, socket: Duplex): void => {
    if (error.code === 'ECONNRESET' || !socket.writable) {
      socket.destroy();
      return;
    }
    const [status, what] = PARSER_ERRORS[error.code ?? ''] ?? [400, 'malformed HTTP request'];
    const body = JSON.stringify({ error: `${what} (${error.code ?? error.message})`, service });
    socket.end(
      `HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\nContent-Type: application/json; charset=utf-8\r\n` +
        `Content-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
    );
  };
}

/** Listens and returns a handle that drains and closes in order. */
export async function listen(options: ServeOptions): Promise<Running> {
  const server = options.app.listen(options.port, options.host ?? '0.0.0.0');
  server.keepAliveTimeout = 5_000;
  server.on('clientError', answerUnparsableRequest(options.name));
  await once(server, 'listening');
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : options.port;
  let closing: Promise<void> | undefined;
  const close = () => {
    closing ??= (async () => {
      const drained = new Promise<void>((resolve) => server.close(() => resolve()));
      // Keep-alive connections go as soon as their last response is written.
      server.closeIdleConnections();
      const sweep = setInterval(() => server.closeIdleConnections(), 50);
      const grace = setTimeout(() => server.closeAllConnections(), options.graceMs ?? 10_000);
      await drained;
      clearInterval(sweep);
      clearTimeout(grace);
      await options.onShutdown?.();
    })();
    return closing;
  };
  return { server, port, close };
}

/**
 * Runs a service until SIGTERM or SIGINT: stop accepting, finish in-flight requests,
 * close pools, flush telemetry, exit 0.
 */
export async function serve(options: ServeOptions): Promise<Running> {
  const running = await listen(options);
  const { logger } = options;
  logger.info({ port: running.port }, `${options.name} listening on :${running.port}`);
  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, `${options.name} shutting down`);
    running
      .close()
      .then(() => shutdownTelemetry())
      .then(
        () => {
          logger.info(`${options.name} stopped`);
          logger.flush?.();
          process.exit(0);
        },
        (error: unknown) => {
          logger.error({ err: error }, 'shutdown failed');
          logger.flush?.();
          process.exit(1);
        },
      );
  };
  process.once('SIGTERM', () => stop('SIGTERM'));
  process.once('SIGINT', () => stop('SIGINT'));
  return running;
}

/** Runs a service's boot function; a bad environment variable or boot failure exits 1 with a clear line. */
export function main(name: string, boot: () => Promise<unknown>): void {
  boot().catch((error: unknown) => {
    const message = error instanceof ConfigError ? error.message : ((error as Error)?.stack ?? String(error));
    process.stderr.write(`${name}: ${message}\n`);
    process.exit(1);
  });
}
